"""The project's Tiltfile run by the real tilt against the real node: `tilt ci`, then `tilt up` with a handler
edited while it runs (live_update, no image rebuild), and the load-burst button.

Tilt builds through podman's Docker API (scripts/controlplane/tilt.py), pushes to the cluster's registry (the
local-registry-hosting ConfigMap), and deploys the chart against the cluster's Kafka and FerretDB (Bitnami's
images cannot be pulled here). It runs in a copy of the repository, so the edit never touches the real one.
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import time

import pytest
import requests

from scripts.controlplane.tilt import tilt_command, tilt_env
from scripts.stack.paths import ROOT
from scripts.stack.process import free_port
from scripts.stack.waiting import until

NAMESPACE = "default"  # Tilt applies the chart's objects in the kubeconfig's namespace
WEB, API = "shop-purchase-system-web", "shop-purchase-system-api"
HANDLER = 'return json_response({"status": "ok"})'


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    """What the Tiltfile uses, copied (the project's venv linked, for the load-burst button's make)."""
    work = tmp_path_factory.mktemp("tilt-workspace")
    for name in ("Tiltfile", "Makefile", "requirements.txt", "requirements-dev.txt", ".dockerignore"):
        shutil.copy2(ROOT / name, work)
    for folder in ("services", "helm", "scripts"):
        shutil.copytree(ROOT / folder, work / folder, ignore=shutil.ignore_patterns("__pycache__", "charts", "go"))
    (work / ".venv").symlink_to(ROOT / ".venv")
    return work


@pytest.fixture(scope="module")
def tilt(kube_cluster, workspace):
    """Runs tilt commands in the workspace against the cluster; `tilt down` at the end."""
    env = tilt_env(kube_cluster.control_plane.kubeconfig, kube_cluster.docker_api, workspace)
    subprocess.run(tilt_command("analytics", "opt", "out"), env=env, cwd=workspace, capture_output=True)
    args = ["--", "--kafka", kube_cluster.kafka.address, "--mongodb-uri", kube_cluster.ferretdb.address,
            "--burst", "300"]

    def run(*command: str, timeout: float = 1200) -> subprocess.CompletedProcess:
        return subprocess.run(tilt_command(*command), env=env, cwd=workspace, capture_output=True, text=True,
                              timeout=timeout)

    run.env, run.args = env, args
    yield run
    run("down", "--file", "Tiltfile", *args, timeout=300)


def running(kube_cluster, name: str) -> list[dict]:
    return kube_cluster.pods(name + "-", namespace=NAMESPACE)


def test_tilt_ci_builds_the_images_deploys_the_chart_and_every_resource_becomes_ready(kube_cluster, tilt):
    started = time.monotonic()
    result = tilt("ci", "--file", "Tiltfile", "--port", str(free_port()), *tilt.args)
    took = time.monotonic() - started
    print(f"\ntilt ci: exit {result.returncode} in {took:.0f} s\n{result.stdout[-3000:]}")
    assert result.returncode == 0, result.stdout[-5000:] + result.stderr[-3000:]
    for name, image in ((WEB, "purchase-web"), (API, "purchase-api")):
        [pod] = running(kube_cluster, name)
        status = pod["status"]["containerStatuses"][0]
        assert status["ready"], status
        # Built by Tilt (its content-hash tag), pushed to the cluster's registry, pulled by the node.
        assert status["image"].startswith(f"{kube_cluster.registry.address}/{image}:tilt-"), status["image"]


def test_tilt_up_syncs_an_edited_handler_into_the_running_pod_without_rebuilding(kube_cluster, tilt, workspace):
    port = free_port()
    log = open(workspace / "tilt-up.log", "w")
    up = subprocess.Popen(tilt_command("up", "--file", "Tiltfile", "--port", str(port), "--stream", *tilt.args),
                          env=tilt.env, cwd=workspace, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    source = workspace / "services" / "web" / "app.py"
    try:
        until(lambda: _resource_ready(tilt, port, "web") and _resource_ready(tilt, port, "api"), 600,
              "tilt up: web and api ready")
        [pod] = running(kube_cluster, WEB)
        url = kube_cluster.pod_url(pod)
        assert requests.get(f"{url}/healthz", timeout=5).json() == {"status": "ok"}
        container = pod["status"]["containerStatuses"][0]
        [api_pod] = running(kube_cluster, API)
        builds = {name: _builds(tilt, port, name) for name in ("web", "api", "topics")}

        source.write_text(source.read_text().replace(HANDLER, 'return json_response({"status": "ok, live"})'))
        edited = time.monotonic()
        until(lambda: _status(f"{url}/healthz") == "ok, live", 120, "the edited handler answering")
        took = time.monotonic() - edited
        print(f"\nlive update: edit to new answer in {took:.1f} s")

        [after] = running(kube_cluster, WEB)
        now = after["status"]["containerStatuses"][0]
        assert after["metadata"]["name"] == pod["metadata"]["name"], "the pod was replaced: not a live update"
        assert (now["containerID"], now["image"], now["restartCount"]) == (
            container["containerID"], container["image"], container["restartCount"]), "the container changed"
        # The edit touched web alone: one update of web (a live one: same image), none of api or the topics Job.
        until(lambda: _builds(tilt, port, "web") == builds["web"] + 1, 60, "web's update recorded")
        assert (_builds(tilt, port, "api"), _builds(tilt, port, "topics")) == (builds["api"], builds["topics"])
        [api_after] = running(kube_cluster, API)
        api_before = api_pod["status"]["containerStatuses"][0]
        assert (api_after["metadata"]["name"], api_after["status"]["containerStatuses"][0]["containerID"]) == (
            api_pod["metadata"]["name"], api_before["containerID"]), "api was redeployed"
        api_code = kube_cluster.control_plane.kube.kubectl("exec", "-n", NAMESPACE, api_after["metadata"]["name"],
                                                           "--", "ls", "/app/services").stdout.split()
        assert "api" in api_code and "web" not in api_code, "web's code synced into api's container"

        # The load-burst button: `make load-burst` through the forwarded port, in the project's venv.
        assert tilt("trigger", "load-burst", "--port", str(port), timeout=60).returncode == 0
        until(lambda: _resource_done(tilt, port, "load-burst"), 300, "the load-burst button's run")
        output = (workspace / "tilt-up.log").read_text()
        assert "scripts/load.py --url http://localhost:8080 --burst 300" in output
        assert _resource_status(tilt, port, "load-burst").get("updateStatus") == "ok", output[-3000:]
    finally:
        up.send_signal(signal.SIGINT)
        try:
            up.wait(60)
        except subprocess.TimeoutExpired:
            up.kill()
        log.close()


def _status(url: str) -> str | None:
    try:
        return requests.get(url, timeout=2).json().get("status")
    except (requests.RequestException, ValueError):
        return None


def _resource_status(tilt, port: int, name: str) -> dict:
    result = tilt("get", "uiresource", name, "--port", str(port), "-o", "json", timeout=30)
    return json.loads(result.stdout).get("status", {}) if result.returncode == 0 else {}


def _builds(tilt, port: int, name: str) -> int:
    """How many builds (image builds and live updates) a resource has had."""
    return len(_resource_status(tilt, port, name).get("buildHistory") or [])


def _resource_ready(tilt, port: int, name: str) -> bool:
    status = _resource_status(tilt, port, name)
    return status.get("runtimeStatus") == "ok" and status.get("updateStatus") == "ok"


def _resource_done(tilt, port: int, name: str) -> bool:
    history = _resource_status(tilt, port, name).get("buildHistory") or []
    return bool(history) and bool(history[0].get("finishTime"))
