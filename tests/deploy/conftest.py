"""Render the chart with the real helm binary.

Bitnami's kafka and mongodb charts cannot be downloaded here, and `helm template` refuses a chart whose
declared dependencies are missing from charts/. So the tests render a temporary copy of the chart whose charts/
holds empty placeholders with the declared names and versions, the one stand-in for the subcharts that the
local cluster's releases use too (scripts/controlplane/release.py): our templates render exactly as they would
beside the subcharts (kafka.enabled and mongodb.enabled still pick the in-cluster addresses), only the
subcharts' own objects are absent.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from scripts.controlplane.release import chart_with_placeholders
from scripts.stack.paths import ROOT
from scripts.tools import helm_binary

CHART = ROOT / "helm" / "purchase-system"
RELEASE = "shop"
NAMESPACE = "store"


class Chart:
    def __init__(self, helm: Path, path: Path) -> None:
        self.helm = helm
        self.path = path

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        result = subprocess.run([str(self.helm), *args], capture_output=True, text=True)
        if check and result.returncode != 0:
            raise AssertionError(f"helm {' '.join(args)} failed:\n{result.stdout}{result.stderr}")
        return result

    def value_args(self, values: dict | None, files: list[str] = ()) -> list[str]:
        args = []
        for name in files:
            args += ["-f", str(self.path / name)]
        if values:
            override = self.path.parent / f"override-{abs(hash(json.dumps(values, sort_keys=True)))}.yaml"
            override.write_text(yaml.safe_dump(values))
            args += ["-f", str(override)]
        return args

    def template(self, values: dict | None = None, files: list[str] = (), check: bool = True):
        """The rendered objects, or the failed CompletedProcess when check is False and helm refused."""
        result = self.run("template", RELEASE, str(self.path), "--namespace", NAMESPACE,
                          *self.value_args(values, files), check=check)
        if result.returncode != 0:
            return result
        return [doc for doc in yaml.safe_load_all(result.stdout) if doc]

    def notes(self, values: dict | None = None) -> str:
        """NOTES.txt as an install would print it. `helm install --dry-run` wants a cluster, so the copy renders
        NOTES.txt through a ConfigMap template with the same engine and values."""
        probe = self.path / "templates" / "zz-notes-probe.yaml"
        shutil.copy(self.path / "templates" / "NOTES.txt", self.path / "notes-probe.txt")
        probe.write_text('apiVersion: v1\nkind: ConfigMap\nmetadata: {name: notes-probe}\n'
                         'data:\n  notes: {{ tpl (.Files.Get "notes-probe.txt") . | quote }}\n')
        try:
            result = self.run("template", RELEASE, str(self.path), "--namespace", NAMESPACE,
                              "--show-only", "templates/zz-notes-probe.yaml", *self.value_args(values))
        finally:
            probe.unlink()
            (self.path / "notes-probe.txt").unlink()
        return yaml.safe_load(result.stdout)["data"]["notes"]

    def lint(self, values: dict | None = None, files: list[str] = ()) -> subprocess.CompletedProcess:
        return self.run("lint", "--strict", str(self.path), *self.value_args(values, files), check=False)


@pytest.fixture(scope="session")
def chart(tmp_path_factory) -> Chart:
    return Chart(helm_binary(), chart_with_placeholders(tmp_path_factory.mktemp("chart")))


def find(objects: list[dict], kind: str, name_suffix: str = "") -> dict:
    matches = [o for o in objects if o["kind"] == kind and o["metadata"]["name"].endswith(name_suffix)]
    assert len(matches) == 1, f"expected one {kind} *{name_suffix}, found {[o['metadata']['name'] for o in matches]}"
    return matches[0]
