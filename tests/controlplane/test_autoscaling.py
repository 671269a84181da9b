"""KEDA scaling the api on real Kafka lag, closed loop, and a rolling update under traffic: the chart installed
on the real control plane, its pods containers of our images on the real node (scripts/controlplane).

Test values (scripts/controlplane/autoscale.py FAST_LOOP): KEDA polls every 2 s and the HPA scales down after
30 s of low lag, by any number of pods. The control plane's HPA controller syncs every 5 s (Kubernetes: 15 s).
"""

from __future__ import annotations

import time

import pymongo
import pytest

from scripts.controlplane.autoscale import FAST_LOOP, burst
from scripts.controlplane.release import NAMESPACE, merge
from tests.faults import KeyedTraffic, account
from tests.support import wait_until

BURST = 20_000
STEADY, STEADY_RATE = 6_000, 250
STALL_S = 20


@pytest.fixture(scope="module")
def installed(kube_cluster):
    release = kube_cluster.release
    release.uninstall(check=False)
    wait_until(lambda: not kube_cluster.pods(), 90, "the previous release's pods to stop")
    release.upgrade_install(merge(kube_cluster.values(), FAST_LOOP), "autoscaling")
    yield release
    release.uninstall(check=False)


def stored_ids(kube_cluster):
    client = pymongo.MongoClient(kube_cluster.ferretdb.uri)
    try:
        return [doc["_id"] for doc in client["purchases"]["purchases"].find({}, {"_id": 1})]
    finally:
        client.close()


def test_traffic_the_consumer_keeps_up_with_does_not_scale(kube_cluster, installed):
    """One api stores far more than STEADY_RATE purchases a second here: the lag stays well below a replica's
    worth (lagThreshold 200), and KEDA keeps one replica.

    The lag KEDA sees is the rate times the time from a purchase's produce to its commit (~0.1-0.2 s here: the
    fetch wait, the insert, the asynchronous commit). A flat-out burst (~800 a second on 2 shared cores) puts
    even a keeping-up consumer's lag near the threshold now and then: one scaled to 2
    (its lag sampled every second peaked at 126; a KEDA poll in between saw more than 220)."""
    api = installed.object_name("api")
    wait_until(lambda: len(kube_cluster.pods(api + "-")) == 1, 60, "one api consumer")
    result = burst(kube_cluster, STEADY, timeout_s=600, rate=STEADY_RATE)
    summary = result.summary()
    print(f"\n{STEADY} purchases at {STEADY_RATE}/s, which the consumer keeps up with:\n{result.timeline()}\n{summary}")
    assert summary["accepted"] == STEADY, result.load
    assert (summary["stored_missing"], summary["stored_duplicated"], summary["unreadable_users"]) == (0, 0, 0)
    assert summary["max_lag"] < 200 * 2 and summary["max_desired"] == 1 and summary["max_ready"] == 1


def test_a_burst_during_a_database_stall_scales_the_api_to_the_partitions_and_back_to_one_storing_each_once(
        kube_cluster, installed):
    api = installed.object_name("api")
    wait_until(lambda: len(kube_cluster.pods(api + "-")) == 1, 120, "one api consumer")
    result = burst(kube_cluster, BURST, timeout_s=900, stall_database_s=STALL_S)
    summary = result.summary()
    print(f"\nautoscaling, {BURST} purchases, the database stalled {STALL_S} s:\n{result.timeline()}\n{summary}")

    assert summary["accepted"] == BURST, result.load
    assert (summary["stored_missing"], summary["stored_duplicated"], summary["unreadable_users"]) == (0, 0, 0)
    assert summary["max_desired"] == result.partitions == 8, "KEDA's HPA should ask for one replica per partition"
    assert summary["max_ready"] == 8 and summary["max_consumers"] == 8
    assert max(s.replicas for s in result.samples) <= result.partitions
    assert summary["max_group_members"] > 1, "the new pods' consumers should join the group"
    assert result.samples[-1].lag == 0
    assert summary["back_to_one_s"] is not None, "the Deployment should scale back to 1"


def test_helm_upgrade_rolls_the_pods_under_traffic_and_loses_or_duplicates_nothing(kube_cluster, installed):
    release, kube = installed, kube_cluster.control_plane.kube
    api = release.object_name("api")
    wait_until(lambda: len(kube_cluster.pods(api + "-")) == 1, 180, "the api back to one pod")
    def names():
        return {pod["metadata"]["name"] for pod in kube_cluster.pods()}

    before = names()
    web = kube_cluster.service_url(release.object_name("web"))
    already = set(stored_ids(kube_cluster))
    with KeyedTraffic(web, rate=50, run=f"roll-{int(time.time())}") as traffic:
        time.sleep(3)
        release.upgrade_install(merge(merge(kube_cluster.values(), FAST_LOOP),
                                      {"config": {"consumerBatchSize": 500}}), "rolled")
        wait_until(lambda: names().isdisjoint(before) and len(names()) >= 2, 120, "every pod replaced")
        time.sleep(3)
    accounting = account(web, traffic.requests, lambda: [i for i in stored_ids(kube_cluster) if i not in already])
    print(f"\nrolling update under traffic: {accounting.line()}")
    after = kube_cluster.pods(api + "-")
    assert after and kube_cluster.exec(after[0], "printenv", "CONSUMER_BATCH_SIZE").strip() == "500"
    assert accounting.sent >= 200
    assert (accounting.lost, accounting.unexpected, accounting.duplicated) == ([], [], 0)
    assert accounting.stored == accounting.sent
    assert kube.get(f"/apis/apps/v1/namespaces/{NAMESPACE}/deployments/{api}")["status"].get("readyReplicas") >= 1
