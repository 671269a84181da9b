"""The Tiltfile, evaluated by the real tilt (`tilt alpha tiltfile-result`), built by scripts/tools.py.

The Tiltfile fetches nothing (no extension). The Bitnami subcharts cannot be downloaded here, so in a temporary
copy the chart has placeholders for its dependencies (see conftest.py), plus a Kafka StatefulSet and a MongoDB
Deployment named as Bitnami names them, so the resource wiring can be checked. tests/controlplane/test_tilt.py
runs the same Tiltfile for real (`tilt ci`, live update) with servers of our own instead.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess

import pytest

from scripts.stack.paths import ROOT
from scripts.tools import helm_binary, tilt_binary

from .conftest import RELEASE

BITNAMI_STANDINS = f'''
apiVersion: apps/v1
kind: StatefulSet
metadata: {{name: {RELEASE}-kafka-controller}}
spec:
  serviceName: {RELEASE}-kafka
  selector: {{matchLabels: {{app.kubernetes.io/name: kafka}}}}
  template:
    metadata: {{labels: {{app.kubernetes.io/name: kafka}}}}
    spec: {{containers: [{{name: kafka, image: "bitnamilegacy/kafka:4.0.0-debian-12-r10"}}]}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {{name: {RELEASE}-mongodb}}
spec:
  selector: {{matchLabels: {{app.kubernetes.io/name: mongodb}}}}
  template:
    metadata: {{labels: {{app.kubernetes.io/name: mongodb}}}}
    spec: {{containers: [{{name: mongodb, image: "bitnamilegacy/mongodb:8.0.13-debian-12-r0"}}]}}
'''


@pytest.fixture(scope="module")
def manifests(chart, tmp_path_factory) -> dict[str, dict]:
    tilt = tilt_binary()
    assert tilt is not None, "tilt could not be built; see build-failed beside it in the cache"
    work = tmp_path_factory.mktemp("tilt")
    shutil.copy(ROOT / "Tiltfile", work)
    shutil.copy(ROOT / "requirements.txt", work)
    shutil.copytree(ROOT / "services", work / "services", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(chart.path, work / "helm" / "purchase-system")
    (work / "helm" / "purchase-system" / "templates" / "zz-bitnami-standins.yaml").write_text(BITNAMI_STANDINS)

    env = {**os.environ, "PATH": f"{chart.helm.parent}{os.pathsep}{os.environ['PATH']}", "HOME": str(work)}
    result = subprocess.run([str(tilt), "alpha", "tiltfile-result", "-f", "Tiltfile"], cwd=work, env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    return {m["Name"]: m for m in json.loads(result.stdout)["Manifests"]}


def test_the_tiltfile_defines_the_services_the_infrastructure_and_the_load_button(manifests):
    assert {"web", "api", "kafka", "mongodb", "topics", "load-burst"} <= set(manifests)


@pytest.mark.parametrize("service", ["web", "api"])
def test_each_service_image_is_built_from_its_dockerfile_with_live_update(manifests, service):
    (image,) = manifests[service]["ImageTargets"]
    assert image["selector"] == f"purchase-{service}"
    assert image["BuildDetails"]["dockerfileContents"] == (ROOT / "services" / service / "Dockerfile").read_text()
    assert image["BuildDetails"]["target"] == "dev", "the dev target: watchfiles restarts the synced service"
    assert "overrideCommand" not in image, "the image's own entrypoint runs"
    live = image["LiveUpdateSpec"]
    # Only what the service runs: its own folder, core and common (an edit to the other service touches nothing).
    other = {"web": "api", "api": "web"}[service]
    synced = {(sync["localPath"], sync["containerPath"]) for sync in live["syncs"]}
    assert synced == {("requirements.txt", "/app/requirements.txt"),
                      ("services/__init__.py", "/app/services/__init__.py"), ("services/core", "/app/services/core/"),
                      ("services/common", "/app/services/common/"),
                      (f"services/{service}", f"/app/services/{service}/")}
    assert not any(path.startswith(f"services/{other}") for path, _ in synced)
    (install,) = live["execs"]
    assert "pip install" in install["args"][-1] and install["triggerPaths"] == ["requirements.txt"]


def test_ports_are_forwarded_web_8080_and_api_8081(manifests):
    forwards = {name: manifests[name]["DeployTarget"]["portForwardTemplateSpec"]["forwards"] for name in ("web", "api")}
    assert [(f["localPort"], f["containerPort"]) for f in forwards["web"]] == [(8080, 8080)]
    assert [(f["localPort"], f["containerPort"]) for f in forwards["api"]] == [(8081, 8080)]


def test_services_start_after_kafka_mongodb_and_the_topics(manifests):
    assert manifests["topics"]["ResourceDependencies"] == ["kafka"]
    assert {"kafka", "mongodb", "topics"} <= set(manifests["api"]["ResourceDependencies"])
    assert {"kafka", "topics", "api"} <= set(manifests["web"]["ResourceDependencies"])
    assert manifests["web"]["Labels"] == {"app": "app"} and manifests["kafka"]["Labels"] == {"infra": "infra"}


def test_the_load_burst_is_a_manual_button_against_the_forwarded_web_port(manifests):
    burst = manifests["load-burst"]
    command = burst["DeployTarget"]["UpdateCmdSpec"]["args"]
    assert command[:2] == ["make", "load-burst"] and "URL=http://localhost:8080" in command
    assert "TOKEN_COMMAND=" in command  # sign-in off: no token
    assert burst["TriggerMode"] != manifests["web"]["TriggerMode"]  # manual, not on file change
    assert burst["ResourceDependencies"] == ["web"]


def evaluate_with_servers_of_our_own(tmp_path, *args: str) -> dict[str, dict]:
    for name in ("Tiltfile", "requirements.txt"):
        shutil.copy(ROOT / name, tmp_path)
    shutil.copytree(ROOT / "services", tmp_path / "services", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(ROOT / "helm", tmp_path / "helm", ignore=shutil.ignore_patterns("charts", "Chart.lock"))
    env = {**os.environ, "PATH": f"{helm_binary().parent}{os.pathsep}{os.environ['PATH']}", "HOME": str(tmp_path)}
    result = subprocess.run([str(tilt_binary()), "alpha", "tiltfile-result", "-f", "Tiltfile", "--",
                             "--kafka", "10.244.0.1:9092", "--mongodb-uri", "mongodb://10.244.0.1:27017/", *args],
                            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    return {m["Name"]: m for m in json.loads(result.stdout)["Manifests"]}


def deployed_yaml(manifests: dict[str, dict]) -> str:
    return "\n".join(m["DeployTarget"].get("yaml", "") for m in manifests.values() if m.get("DeployTarget"))


def test_with_servers_of_our_own_no_bitnami_workload_is_deployed_and_nothing_is_downloaded(tmp_path):
    """`tilt up -- --kafka ... --mongodb-uri ...`: the real chart (its declared dependencies not downloaded) is
    rendered with placeholders for them, and pointed at the given servers through values and a Secret."""
    manifests = evaluate_with_servers_of_our_own(tmp_path)
    assert {"web", "api", "topics", "load-burst"} <= set(manifests) and not {"kafka", "mongodb"} & set(manifests)
    assert not manifests["topics"].get("ResourceDependencies")
    deployed = deployed_yaml(manifests)
    assert "KAFKA_BOOTSTRAP_SERVERS: 10.244.0.1:9092" in deployed
    assert "name: purchase-mongodb" in deployed and "kind: Secret" in deployed
    assert "OIDC_ISSUER" not in deployed
    assert not (tmp_path / "helm" / "purchase-system" / "charts").exists(), "the user's chart is left as it was"


def test_sign_in_options_turn_on_webs_sign_in_and_give_the_burst_button_a_token_command(tmp_path):
    command = "python -m scripts.stack.token http://10.244.0.1:8180/realms/shop shop-web alice 'pass word'"
    manifests = evaluate_with_servers_of_our_own(
        tmp_path, "--auth-issuer", "http://10.244.0.1:8180/realms/shop", "--auth-audience", "purchase-web",
        "--auth-client-id", "shop-web", "--token-command", command)
    web = next(doc for doc in manifests["web"]["DeployTarget"]["yaml"].split("\n---\n") if "kind: Deployment" in doc)
    for setting in ("name: AUTH_MODE\n", "value: oidc", "value: http://10.244.0.1:8180/realms/shop",
                    "value: purchase-web", "value: shop-web"):
        assert setting in web, setting
    assert f"TOKEN_COMMAND={command}" in manifests["load-burst"]["DeployTarget"]["UpdateCmdSpec"]["args"]
