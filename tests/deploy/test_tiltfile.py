"""The Tiltfile, evaluated by the real tilt (`tilt alpha tiltfile-result`), built by scripts/tools.py.

Evaluation needs two things this machine cannot fetch, so the test provides stand-ins in a temporary copy:
- Tilt's `restart_process` extension lives on GitHub: a local extension repository (TILT_EXTENSIONS_REPO, which
  the Tiltfile honours for offline mirrors) supplies a `docker_build_with_restart` that records the call as the
  plain `docker_build` it wraps.
- The Bitnami subcharts: the chart copy has its dependencies stripped (see conftest.py), plus a Kafka
  StatefulSet and a MongoDB Deployment named as Bitnami names them, so the resource wiring can be checked.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess

import pytest

from scripts.stack import ROOT
from scripts.tools import tilt_binary

from .conftest import RELEASE

RESTART_PROCESS_STANDIN = '''
def docker_build_with_restart(ref, context, entrypoint, live_update=[], **kwargs):
    docker_build(ref, context, entrypoint=entrypoint, live_update=live_update, **kwargs)
'''

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
    (work / "helm" / "purchase-system" / "charts").mkdir()
    (work / "helm" / "purchase-system" / "templates" / "zz-bitnami-standins.yaml").write_text(BITNAMI_STANDINS)
    extension = work / "extensions" / "restart_process"
    extension.mkdir(parents=True)
    (extension / "Tiltfile").write_text(RESTART_PROCESS_STANDIN)

    env = {**os.environ, "PATH": f"{chart.helm.parent}{os.pathsep}{os.environ['PATH']}",
           "TILT_EXTENSIONS_REPO": f"file://{work / 'extensions'}", "HOME": str(work)}
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
    assert image["overrideCommand"]["command"] == ["python", "-m", f"services.{service}"]
    live = image["LiveUpdateSpec"]
    assert {"localPath": "services", "containerPath": "/app/services/"} in live["syncs"]
    assert {"localPath": "requirements.txt", "containerPath": "/app/requirements.txt"} in live["syncs"]
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
    command = burst["DeployTarget"]["UpdateCmdSpec"]["args"][-1]
    assert "scripts/load.py" in command and "--url http://localhost:8080" in command
    assert burst["TriggerMode"] != manifests["web"]["TriggerMode"]  # manual, not on file change
    assert burst["ResourceDependencies"] == ["web"]
