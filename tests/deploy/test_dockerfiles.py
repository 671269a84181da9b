"""The service images' Dockerfiles: hadolint, and the properties the chart relies on."""

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from scripts.stack.paths import ROOT

DOCKERFILES = [ROOT / "services" / name / "Dockerfile" for name in ("web", "api")]
HADOLINT = Path(sys.executable).parent / "hadolint"


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.parent.name)
def test_hadolint_finds_nothing(dockerfile):
    result = subprocess.run([str(HADOLINT), "--format", "json", str(dockerfile)], capture_output=True, text=True)
    assert result.returncode == 0 and json.loads(result.stdout) == [], result.stdout + result.stderr


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.parent.name)
def test_the_image_is_pinned_non_root_and_its_entrypoint_is_the_service_itself_in_exec_form(dockerfile):
    text = dockerfile.read_text()
    base = re.search(r"^ARG PYTHON_IMAGE=(\S+)$", text, re.M).group(1)
    assert re.fullmatch(r"python:3\.11\.\d+-slim-bookworm", base), base
    assert text.count("FROM ${PYTHON_IMAGE}") == 2, "multi-stage, both on the pinned base"
    assert "-r /tmp/requirements.txt" in text, "dependencies come from the pinned lock"
    user = re.findall(r"^USER (\S+)$", text, re.M)
    assert user == ["10001:10001"], "one numeric, non-root USER"
    runtime, dev = re.findall(r"^ENTRYPOINT (.+)$", text, re.M)
    # Exec form: the service is PID 1 and gets SIGTERM itself (test_images.py proves it answers it in time).
    assert json.loads(runtime) == ["python", "-m", f"services.{dockerfile.parent.name}"], "exec form"
    assert json.loads(dev)[0] == "watchfiles" and f"python -m services.{dockerfile.parent.name}" in json.loads(dev)
    assert text.rstrip().endswith("\nFROM runtime"), "the default target is the runtime image, not the dev one"
    assert "PYTHONDONTWRITEBYTECODE=1" in text, "no .pyc writes on a read-only root filesystem"


def test_the_build_context_holds_only_requirements_and_services():
    lines = [line for line in (ROOT / ".dockerignore").read_text().splitlines() if line and not line.startswith("#")]
    assert lines[0] == "*"
    assert {"!requirements.txt", "!services/"} <= set(lines)
