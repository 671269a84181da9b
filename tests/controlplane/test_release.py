"""The chart installed, upgraded and uninstalled with the real helm on the real control plane (scripts/controlplane):
every object through the API server's validation, KEDA's CRDs and admission webhooks; every pod a container of
the images built from our Dockerfiles, run by the kubelet on the real node; the topics Job run in its container.
"""

from __future__ import annotations

import json
import time

import pymongo
import pytest
import requests
from kafka import KafkaConsumer

from scripts.controlplane.release import NAMESPACE, merge
from scripts.loadgen.keyed import post_buys
from scripts.stack.waiting import until
from tests.support import buy_body


def get(kube_cluster, path: str) -> dict:
    found = kube_cluster.control_plane.kube.get(path)
    assert found is not None, f"{path} does not exist"
    return found


def condition(obj: dict, kind: str) -> dict:
    return next((c for c in obj.get("status", {}).get("conditions", []) if c["type"] == kind), {})


@pytest.fixture(scope="module")
def installed(kube_cluster):
    release = kube_cluster.release
    release.uninstall(check=False)
    result = release.upgrade_install(kube_cluster.values(), "install")
    yield result
    release.uninstall(check=False)


def test_helm_install_waits_for_the_topics_job_which_runs_and_exits_0(kube_cluster, installed):
    assert "STATUS: deployed" in installed.stdout, installed.stdout
    jobs = get(kube_cluster, f"/apis/batch/v1/namespaces/{NAMESPACE}/jobs")["items"]
    assert [job["status"].get("succeeded") for job in jobs] == [1], [job["status"] for job in jobs]
    pods = [p for p in kube_cluster.control_plane.kube.pods(NAMESPACE) if "topics" in p["metadata"]["name"]]
    terminated = pods[0]["status"]["containerStatuses"][0]["state"]["terminated"]
    assert (pods[0]["status"]["phase"], terminated["exitCode"]) == ("Succeeded", 0)
    assert pods[0]["spec"]["containers"][0]["image"] == kube_cluster.images["api"]
    log = kube_cluster.control_plane.kube.kubectl("logs", "-n", NAMESPACE, pods[0]["metadata"]["name"]).stdout
    assert '"topics ready"' in log, log
    consumer = KafkaConsumer(bootstrap_servers=kube_cluster.kafka.address)
    try:
        assert len(consumer.partitions_for_topic("purchases")) == 8
        assert len(consumer.partitions_for_topic("purchases.dlq")) == 1
    finally:
        consumer.close()


def test_keda_takes_the_scaled_object_and_creates_its_hpa(kube_cluster, installed):
    api = kube_cluster.release.object_name("api")
    scaled = until(lambda: condition(kube_cluster.control_plane.kube.get(
        f"/apis/keda.sh/v1alpha1/namespaces/{NAMESPACE}/scaledobjects/{api}") or {}, "Ready").get("status") == "True"
        and kube_cluster.control_plane.kube.get(f"/apis/keda.sh/v1alpha1/namespaces/{NAMESPACE}/scaledobjects/{api}"),
        60, "the ScaledObject to be Ready")
    assert scaled["status"]["hpaName"] == f"keda-hpa-{api}"
    hpa = get(kube_cluster, f"/apis/autoscaling/v2/namespaces/{NAMESPACE}/horizontalpodautoscalers/keda-hpa-{api}")
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (1, 8)
    assert hpa["spec"]["metrics"][0]["type"] == "External"
    # The HPA reads KEDA's metric through the aggregation layer: the lag, from Kafka, as a number.
    metric = hpa["spec"]["metrics"][0]["external"]["metric"]["name"]
    answer = until(lambda: json.loads(kube_cluster.control_plane.kube.kubectl(
        "get", "--raw", f"/apis/external.metrics.k8s.io/v1beta1/namespaces/{NAMESPACE}/{metric}"
        f"?labelSelector=scaledobject.keda.sh%2Fname%3D{api}", check=False).stdout or "{}").get("items"),
        60, "KEDA's external metric")
    assert answer[0]["metricName"] == metric and "value" in answer[0]


def test_the_installed_services_take_a_purchase_and_store_it(kube_cluster, installed):
    web = kube_cluster.service_url(kube_cluster.release.object_name("web"))
    [(status, answer)] = post_buys(web, [buy_body("cluster-user-1")])
    assert status == 202, answer
    client = pymongo.MongoClient(kube_cluster.ferretdb.address)
    try:
        until(lambda: client["purchases"]["purchases"].find_one({"_id": answer["id"]}), 30, "the purchase stored")
    finally:
        client.close()
    history = until(lambda: requests.get(f"{web}/api/user/cluster-user-1/purchases").json(),
                    30, "the history through web and api")
    assert [p["id"] for p in history] == [answer["id"]]


def test_keda_admission_webhook_refuses_a_second_scaled_object_for_the_same_deployment(kube_cluster, installed):
    api = kube_cluster.release.object_name("api")
    second = {"apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject",
              "metadata": {"name": "second", "namespace": NAMESPACE},
              "spec": {"scaleTargetRef": {"name": api}, "triggers": [
                  {"type": "kafka", "metadata": {"bootstrapServers": kube_cluster.kafka.address,
                                                 "consumerGroup": "purchase-group", "topic": "purchases",
                                                 "lagThreshold": "10"}}]}}
    result = kube_cluster.control_plane.kube.kubectl("apply", "-f", "-", input=json.dumps(second), check=False)
    assert result.returncode != 0, result.stdout
    # KEDA's webhook names the ScaledObject or the HPA it made, whichever of its checks comes first.
    assert 'admission webhook "vscaledobject.kb.io" denied' in result.stderr, result.stderr
    assert f"'{api}' of type 'apps/v1.Deployment' is already managed by the" in result.stderr, result.stderr


def test_helm_upgrade_with_a_new_value_rolls_the_api_and_uninstall_removes_everything(kube_cluster, installed):
    release, kube = kube_cluster.release, kube_cluster.control_plane.kube
    api = release.object_name("api")
    before = {p["metadata"]["name"] for p in kube.pods(NAMESPACE) if p["metadata"]["name"].startswith(api + "-")}
    release.upgrade_install(merge(kube_cluster.values(), {"config": {"logLevel": "DEBUG"}}), "debug")
    after = until(lambda: {p["metadata"]["name"] for p in kube.pods(NAMESPACE)
                                if p["metadata"]["name"].startswith(api + "-")} - before, 60, "new api pods")
    assert after and not (after & before)
    [running] = until(lambda: len(kube_cluster.pods(api + "-")) == 1 and kube_cluster.pods(api + "-"), 120,
                      "the old api pod gone")
    assert running["metadata"]["name"] in after
    assert kube_cluster.exec(running, "printenv", "LOG_LEVEL").strip() == "DEBUG"
    jobs = get(kube_cluster, f"/apis/batch/v1/namespaces/{NAMESPACE}/jobs")["items"]
    # A Job per revision: helm removed revision 1's with the rest of that manifest; revision 2's ran.
    assert [(job["metadata"]["name"][-2:], job["status"].get("succeeded")) for job in jobs] == [("-2", 1)]

    release.uninstall()
    until(lambda: not kube.pods(NAMESPACE), 90, "every pod gone")
    until(lambda: not kube_cluster.node.containerd.tasks(), 60, "every container stopped")
    assert kube.get(f"/apis/keda.sh/v1alpha1/namespaces/{NAMESPACE}/scaledobjects/{api}") is None


def test_a_topics_job_that_cannot_reach_kafka_fails_helm_install(kube_cluster):
    """As on a cluster: the Job's pod fails, the Job controller tries again after its back-off (10 s) up to the
    backoffLimit, the Job fails, helm says so at once (not at its timeout)."""
    broken = merge(kube_cluster.values(), {"kafkaClient": {"bootstrapServers": "127.0.0.1:1"},
        "topics": {"waitSeconds": 1, "backoffLimit": 1}, "keda": {"enabled": False},
        "cpuAutoscaling": {"enabled": False},
        "api": {"replicaCount": 0}, "web": {"replicaCount": 0}})
    release = kube_cluster.release
    try:
        started = time.monotonic()
        result = release.upgrade_install(broken, "broken", timeout="4m", check=False)
        assert result.returncode != 0
        assert "job is failed" in result.stderr, result.stderr
        assert time.monotonic() - started < 120, "helm should fail when the Job does, not at its timeout"
        jobs = get(kube_cluster, f"/apis/batch/v1/namespaces/{NAMESPACE}/jobs")["items"]
        assert condition(jobs[0], "Failed").get("reason") == "BackoffLimitExceeded", jobs[0]["status"]
    finally:
        release.uninstall(check=False)
