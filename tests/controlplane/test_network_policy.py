"""The chart's NetworkPolicies, enforced on the real node by a real controller (kube-network-policies,
scripts/controlplane/netpol.py): a pod in the listed monitoring namespace scrapes api's metrics port and cannot read a
history; a pod without web's labels reaches neither of api's ports; web still reads history from api. And without the
policy, the same stranger reads a history: the refusals come from the policy, nothing else."""

from __future__ import annotations

import subprocess

import pytest
import requests

from scripts.controlplane.netpol import TABLE
from scripts.controlplane.release import NAMESPACE, merge
from scripts.loadgen.keyed import post_buys
from scripts.stack.waiting import until
from tests.support import buy_body

MONITORING = "monitoring"
PROBE = ("import sys, urllib.error, urllib.request\n"
         "try:\n"
         "    print(urllib.request.urlopen(sys.argv[1], timeout=3).status)\n"
         "except urllib.error.HTTPError as e:\n"
         "    print(e.code)\n"
         "except urllib.error.URLError as e:\n"
         "    print(type(e.reason).__name__)\n"
         "except Exception as e:\n"
         "    print(type(e).__name__)\n")


@pytest.fixture(scope="module")
def installed(kube_cluster):
    release = kube_cluster.release
    kube = kube_cluster.control_plane.kube
    kube.apply([{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": MONITORING}}])
    release.upgrade_install(merge(kube_cluster.values(), {"networkPolicy": {"metricsNamespaces": [MONITORING]}}),
                            "network-policy")
    pods = [probe_pod("scraper", MONITORING, kube_cluster.images["api"]),
            probe_pod("stranger", NAMESPACE, kube_cluster.images["api"])]
    kube.apply(pods)
    for pod in pods:
        kube.kubectl("wait", "--for=condition=Ready", "--timeout=90s", "-n", pod["metadata"]["namespace"],
                     f"pod/{pod['metadata']['name']}")
    yield release
    kube.kubectl("delete", "pod", "-n", MONITORING, "scraper", "--grace-period=1", check=False)
    kube.kubectl("delete", "pod", "-n", NAMESPACE, "stranger", "--grace-period=1", check=False)
    release.uninstall(check=False)


def probe_pod(name: str, namespace: str, image: str) -> dict:
    """A pod that only waits, to be asked to make requests (kubectl exec), labelled as none of the chart's pods."""
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": namespace,
                                                           "labels": {"app.kubernetes.io/name": "probe"}},
            "spec": {"automountServiceAccountToken": False, "terminationGracePeriodSeconds": 1,
                     "containers": [{"name": "probe", "image": image,
                                     "command": ["python", "-c", "import time; time.sleep(86400)"],
                                     "securityContext": {"runAsNonRoot": True, "runAsUser": 10001,
                                                         "allowPrivilegeEscalation": False,
                                                         "capabilities": {"drop": ["ALL"]}}}]}}


def fetch(kube_cluster, pod: str, namespace: str, url: str) -> str:
    """What a GET of `url` from inside the pod ends in: the status, or the error's name (a dropped packet: a
    timeout)."""
    return kube_cluster.control_plane.kube.kubectl("exec", "-n", namespace, pod, "--", "python", "-c", PROBE,
                                                   url).stdout.strip()


def api_urls(kube_cluster, installed) -> tuple[str, str]:
    [api] = kube_cluster.pods(installed.object_name("api") + "-")
    ip = api["status"]["podIP"]
    return f"http://{ip}:9090/metrics", f"http://{ip}:8080/api/purchases/netpol-user"


def test_the_node_runs_the_controller_and_its_rules_are_in_the_hosts_nftables(kube_cluster, installed):
    controller = kube_cluster.node.network_policies
    assert controller.process.poll() is None
    listed = subprocess.run(["nft", "list", "table", *TABLE], capture_output=True, text=True)
    assert listed.returncode == 0 and "queue" in listed.stdout, listed.stdout + listed.stderr


def test_a_pod_in_the_monitoring_namespace_scrapes_api_metrics_and_cannot_read_a_history(kube_cluster, installed):
    metrics, history = api_urls(kube_cluster, installed)
    assert fetch(kube_cluster, "scraper", MONITORING, metrics) == "200"
    assert fetch(kube_cluster, "scraper", MONITORING, history) == "TimeoutError"
    [web] = kube_cluster.pods(installed.object_name("web") + "-")
    assert fetch(kube_cluster, "scraper", MONITORING, f"http://{web['status']['podIP']}:9090/metrics") == "200"


def test_a_pod_without_webs_labels_reaches_neither_of_apis_ports_and_web_still_reads_history(kube_cluster, installed):
    metrics, history = api_urls(kube_cluster, installed)
    assert fetch(kube_cluster, "stranger", NAMESPACE, history) == "TimeoutError"
    assert fetch(kube_cluster, "stranger", NAMESPACE, metrics) == "TimeoutError"
    [web] = kube_cluster.pods(installed.object_name("web") + "-")
    web_pod = f"http://{web['status']['podIP']}"
    assert fetch(kube_cluster, "stranger", NAMESPACE, f"{web_pod}:8080/healthz") == "200"  # web is public
    assert fetch(kube_cluster, "stranger", NAMESPACE, f"{web_pod}:9090/metrics") == "TimeoutError"
    # web itself is admitted: a buy, and its history read from api through api's Service.
    web_url = kube_cluster.service_url(installed.object_name("web"))
    [(status, answer)] = post_buys(web_url, [buy_body("netpol-user")])
    assert status == 202, answer
    until(lambda: requests.get(f"{web_url}/api/user/netpol-user/purchases", timeout=5).json(), 30,
          "web to read the purchase from api")


def test_without_the_policy_the_same_stranger_reads_the_history(kube_cluster, installed):
    _, history = api_urls(kube_cluster, installed)
    kube = kube_cluster.control_plane.kube
    policy = installed.object_name("api")
    saved = kube.get(f"/apis/networking.k8s.io/v1/namespaces/{NAMESPACE}/networkpolicies/{policy}")
    kube.kubectl("delete", "networkpolicy", "-n", NAMESPACE, policy)
    try:
        until(lambda: fetch(kube_cluster, "stranger", NAMESPACE, history) == "200", 30,
              "the stranger's read once api has no policy")
    finally:
        for key in ("resourceVersion", "uid", "creationTimestamp", "managedFields", "generation"):
            saved["metadata"].pop(key, None)
        saved.pop("status", None)
        kube.apply([saved])
    until(lambda: fetch(kube_cluster, "stranger", NAMESPACE, history) == "TimeoutError", 30,
          "the stranger refused again once the policy is back")
