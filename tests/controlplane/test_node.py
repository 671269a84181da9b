"""What only a real kubelet shows: the node registered with its container runtime, the liveness probe restarting
a frozen container, Services and cluster DNS carrying web's calls to api, and the kubectl commands the README
tells users to run (logs, exec, port-forward)."""

from __future__ import annotations

import os
import signal
import subprocess
import time

import pytest
import requests

from scripts.controlplane import build
from scripts.controlplane.network import POD_RANGE, SERVICE_RANGE
from scripts.controlplane.node import NODE_NAME
from scripts.controlplane.release import NAMESPACE
from scripts.stack.process import free_port
from tests.support import buy_body, post_buys, wait_until


@pytest.fixture(scope="module")
def installed(kube_cluster):
    release = kube_cluster.release
    release.upgrade_install(kube_cluster.values(), "node")
    yield release
    release.uninstall(check=False)


def container_status(kube_cluster, pod_name: str) -> dict:
    pod = kube_cluster.control_plane.kube.get(f"/api/v1/namespaces/{NAMESPACE}/pods/{pod_name}")
    return pod["status"]["containerStatuses"][0]


def test_the_node_is_registered_ready_with_containerd_and_the_pinned_kubelet(kube_cluster):
    node = kube_cluster.control_plane.kube.get(f"/api/v1/nodes/{NODE_NAME}")
    info = node["status"]["nodeInfo"]
    assert info["containerRuntimeVersion"].startswith("containerd://1.")
    assert info["kubeletVersion"] == build.KUBERNETES_VERSION
    ready = next(c for c in node["status"]["conditions"] if c["type"] == "Ready")
    assert ready["status"] == "True", ready
    assert not node["spec"].get("taints"), "a real node, not a kwok one: nothing keeps pods off it"


def test_every_pod_is_a_container_of_our_images_with_an_address_on_the_bridge(kube_cluster, installed):
    pods = kube_cluster.pods()
    assert {pod["metadata"]["labels"]["app.kubernetes.io/component"] for pod in pods} == {"web", "api"}
    for pod in pods:
        [status] = pod["status"]["containerStatuses"]
        assert status["containerID"].startswith("containerd://")
        assert status["image"] in (kube_cluster.images["web"], kube_cluster.images["api"])
        assert status["imageID"].startswith(kube_cluster.registry.address), status["imageID"]
        assert status["ready"]
        assert pod["status"]["podIP"] in [str(a) for a in POD_RANGE]
    # As the chart says: user 10001, a read-only root filesystem, no capabilities.
    web = kube_cluster.pods(installed.object_name("web") + "-")[0]
    assert kube_cluster.exec(web, "id", "-u").strip() == "10001"
    capabilities = kube_cluster.exec(web, "grep", "CapEff", "/proc/1/status").split()[1]
    assert int(capabilities, 16) == 0
    refused = kube_cluster.control_plane.kube.kubectl("exec", "-n", NAMESPACE, web["metadata"]["name"], "--",
                                                      "touch", "/app/x", check=False)
    assert refused.returncode != 0 and "Read-only file system" in refused.stderr


def test_web_reaches_api_by_its_service_name_through_cluster_dns_and_the_cluster_ip(kube_cluster, installed):
    api = installed.object_name("api")
    service = kube_cluster.control_plane.kube.get(f"/api/v1/namespaces/{NAMESPACE}/services/{api}")
    cluster_ip = service["spec"]["clusterIP"]
    assert cluster_ip in [str(a) for a in SERVICE_RANGE]
    web = kube_cluster.pods(installed.object_name("web") + "-")[0]
    resolved = kube_cluster.exec(web, "python", "-c", f"import socket; print(socket.gethostbyname('{api}'))")
    assert resolved.strip() == cluster_ip
    # The history read goes web -> http://<api service>:8080 -> kube-proxy -> the api pod.
    web_url = kube_cluster.service_url(installed.object_name("web"))
    [(status, answer)] = post_buys(web_url, [buy_body("node-user-1")])
    assert status == 202, answer
    history = wait_until(lambda: requests.get(f"{web_url}/api/user/node-user-1/purchases", timeout=5).json(),
                         30, "the purchase in the history web reads from api")
    assert [p["id"] for p in history] == [answer["id"]]


def test_kubectl_logs_exec_and_port_forward_work_as_the_readme_says(kube_cluster, installed):
    kube = kube_cluster.control_plane.kube
    api = installed.object_name("api")
    logs = kube.kubectl("logs", "-n", NAMESPACE, f"deploy/{api}").stdout
    assert '"msg"' in logs or '"message"' in logs, logs[:500]
    assert kube.kubectl("exec", "-n", NAMESPACE, f"deploy/{api}", "--", "python", "-c", "print(6 * 7)").stdout == "42\n"
    port = free_port()
    forward = subprocess.Popen([str(kube.kubectl_binary), "--kubeconfig", str(kube.kubeconfig), "port-forward",
                                "-n", NAMESPACE, f"svc/{installed.object_name('web')}", f"{port}:8080"],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        answer = wait_until(lambda: _get(f"http://127.0.0.1:{port}/healthz"), 30, "the forwarded port")
        assert answer.status_code == 200
    finally:
        forward.terminate()
        forward.wait(10)


def _get(url: str):
    try:
        return requests.get(url, timeout=2)
    except requests.RequestException:
        return None


def test_the_liveness_probe_restarts_a_web_container_whose_process_is_frozen(kube_cluster, installed):
    """SIGSTOP to web's process in its container (sent from the host: a container's own PID 1 ignores a stop
    signal from inside): /healthz stops answering, the kubelet's liveness probe fails three times (10 s apart,
    3 s timeout), and the kubelet kills and restarts the container (after preStop and the grace period, which a
    stopped process cannot use)."""
    [web] = kube_cluster.pods(installed.object_name("web") + "-")
    name = web["metadata"]["name"]
    before = container_status(kube_cluster, name)["restartCount"]
    container = web["status"]["containerStatuses"][0]["containerID"].removeprefix("containerd://")
    pid = kube_cluster.node.containerd.pid(container)
    frozen = time.monotonic()
    os.kill(pid, signal.SIGSTOP)
    try:
        with pytest.raises(requests.RequestException):
            requests.get(f"{kube_cluster.pod_url(web)}/healthz", timeout=2)
        wait_until(lambda: container_status(kube_cluster, name)["restartCount"] > before, 180,
                   "the kubelet to restart the frozen container")
    finally:
        try:
            os.kill(pid, signal.SIGCONT)
        except ProcessLookupError:
            pass  # killed by the kubelet, as it should be
    restarted = time.monotonic() - frozen
    status = wait_until(lambda: (s := container_status(kube_cluster, name))["ready"] and s, 120,
                        "the restarted container ready")
    print(f"\nliveness: restartCount {before} -> {status['restartCount']}, {restarted:.0f} s after the SIGSTOP; "
          f"last state {status['lastState']}")
    assert status["restartCount"] == before + 1
    assert status["lastState"]["terminated"]["exitCode"] == 137  # SIGKILL: a stopped process cannot exit itself
    assert requests.get(f"{kube_cluster.pod_url(web)}/healthz", timeout=5).status_code == 200

