"""KEDA scaling the api on real Kafka lag, closed loop, watched by a real Prometheus, through Kafka's own door: the
chart installed on the real control plane, its pods containers of our images on the real node, the local Kafka with
SASL/SCRAM and ACLs (each part of the system a principal of its own, KEDA's scaler too), and the chart's
ServiceMonitors, rules and dashboard served to Prometheus (scripts/controlplane/observability.py, as
`make observability` does).

Test values (scripts/controlplane/autoscale.py FAST_LOOP): KEDA polls every 2 s and the HPA scales down after
30 s of low lag, by any number of pods. The control plane's HPA controller syncs every 5 s (Kubernetes: 15 s).
The lag alert fires at 500 for 15 s (the chart's default: 5,000 for 5 minutes).
"""

from __future__ import annotations

import time

import pytest

from scripts.controlplane import observability
from scripts.controlplane.autoscale import burst
from scripts.controlplane.observability import LAG_ALERT, LAG_ALERT_FOR_S, Monitoring, draw, panel_queries
from scripts.controlplane.release import NAMESPACE
from scripts.loadgen.accounting import account
from scripts.loadgen.keyed import Traffic
from scripts.stack.waiting import until

KAFKA_SASL = True  # tests/conftest.py's kube_cluster: the local Kafka with SASL/SCRAM and ACLs
BURST, STALL_S = 20_000, 20
STEADY, STEADY_RATE = 6_000, 250


@pytest.fixture(scope="module")
def monitored(kube_cluster, tmp_path_factory):
    monitoring = Monitoring(kube_cluster, tmp_path_factory.mktemp("monitoring"))
    observability.install(kube_cluster, monitoring, "autoscaling")
    monitoring.start()
    yield monitoring
    monitoring.stop()
    kube_cluster.release.uninstall(check=False)


@pytest.fixture(scope="module")
def burst_seen(kube_cluster, monitored):
    """The burst with the database stalled, once for the module: (result, the lag alert's states, start, end)."""
    api = kube_cluster.release.object_name("api")
    until(lambda: len(kube_cluster.pods(api + "-")) == 1, 120, "one api consumer")
    return observability.observed_burst(kube_cluster, monitored, BURST, STALL_S)


def test_every_part_authenticates_to_kafka_as_its_own_principal(kube_cluster, monitored):
    release = kube_cluster.release
    for part in ("web", "api"):
        [pod] = kube_cluster.pods(release.object_name(part) + "-")[:1]
        assert kube_cluster.exec(pod, "printenv", "KAFKA_SASL_USERNAME").strip() == f"purchase-{part}"
        assert kube_cluster.exec(pod, "printenv", "KAFKA_SECURITY_PROTOCOL").strip() == "SASL_PLAINTEXT"
    auth = kube_cluster.control_plane.kube.get(
        f"/apis/keda.sh/v1alpha1/namespaces/{NAMESPACE}/triggerauthentications/{release.object_name('api')}-kafka")
    assert auth and auth["spec"]["secretTargetRef"][0]["key"] == "keda-password"


def test_prometheus_finds_web_api_and_kedas_operator_as_the_service_monitors_select_them(kube_cluster, monitored):
    targets = monitored.wait_for_targets(3)
    release = kube_cluster.release
    by_service = {}
    for target in targets:
        labels = target["labels"]
        by_service.setdefault(labels.get("service", labels["job"]), []).append(labels)
    web, api = release.object_name("web"), release.object_name("api")
    assert set(by_service) == {web, api, "keda-operator", "kube-state-metrics"}, by_service
    pods = {pod["metadata"]["name"] for pod in kube_cluster.pods()}
    for service in (web, api):
        for labels in by_service[service]:
            # The labels prometheus-operator gives: the pod, its namespace, the Service, the port's name.
            assert labels["namespace"] == NAMESPACE and labels["pod"] in pods and labels["endpoint"] == "metrics"
            assert labels["instance"].endswith(":9090"), labels
    # Only the metrics port: a selection that also took the http port would make a second target per pod.
    assert len(by_service[web]) == len(kube_cluster.pods(web + "-"))
    assert by_service["keda-operator"][0]["namespace"] == "keda"
    rules = monitored.prometheus._api("rules")["groups"]
    assert {group["name"] for group in rules} == {"purchase-system.records", "purchase-system.alerts"}


def test_traffic_the_consumer_keeps_up_with_does_not_scale(kube_cluster, monitored):
    """One api stores far more than STEADY_RATE purchases a second here: the lag stays well below a replica's
    worth (lagThreshold 200), and KEDA keeps one replica.

    The lag KEDA sees is the rate times the time from a purchase's produce to its commit (~0.1-0.2 s here: the
    fetch wait, the insert, the asynchronous commit). A flat-out burst (~800 a second on 2 shared cores) puts
    even a keeping-up consumer's lag near the threshold now and then: one scaled to 2
    (its lag sampled every second peaked at 126; a KEDA poll in between saw more than 220)."""
    api = kube_cluster.release.object_name("api")
    until(lambda: len(kube_cluster.pods(api + "-")) == 1, 60, "one api consumer")
    result = burst(kube_cluster, STEADY, timeout_s=600, rate=STEADY_RATE)
    summary = result.summary()
    print(f"\n{STEADY} purchases at {STEADY_RATE}/s, which the consumer keeps up with:\n{result.timeline()}\n{summary}")
    assert summary["accepted"] == STEADY, result.load
    assert (summary["stored_missing"], summary["stored_duplicated"], summary["unreadable_users"]) == (0, 0, 0)
    assert summary["max_lag"] < 200 * 2 and summary["max_desired"] == 1 and summary["max_ready"] == 1


def test_a_burst_during_a_database_stall_scales_the_api_to_the_partitions_and_back_to_one_storing_each_once(
        burst_seen):
    result, _, _, _ = burst_seen
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


def test_the_lag_alert_goes_pending_then_fires_while_the_database_is_stalled_and_resolves_after_the_drain(
        burst_seen):
    result, watch, _, _ = burst_seen
    summary = result.summary()
    pending, firing = watch.first("pending"), watch.first("firing")
    resolved = watch.first("inactive", after=firing or 0)
    stall_start, stall_end = result.stalled_s
    print(f"\n{LAG_ALERT} (lag > 500 for {LAG_ALERT_FOR_S} s): pending at {pending} s, firing at {firing} s, "
          f"resolved at {resolved} s; database stalled {stall_start:.0f}-{stall_end:.0f} s, "
          f"lag drained at {summary['lag_drained_s']} s, max lag {summary['max_lag']}")
    assert pending is not None and firing is not None and resolved is not None, watch.states
    assert stall_start < pending < firing, f"pending while the lag builds, firing {LAG_ALERT_FOR_S} s later"
    assert firing - pending >= LAG_ALERT_FOR_S - 2, "it waits its `for` before firing"
    assert resolved > summary["lag_drained_s"] - 10, "resolved once the backlog drained, not before"


def test_every_dashboard_panel_query_returns_data(monitored, burst_seen):
    empty = [(panel, legend, expr) for panel, legend, expr in panel_queries() if not monitored.prometheus.query(expr)]
    assert not empty, f"panel queries without data: {empty}"


def test_the_picture_is_drawn_from_prometheus_data(monitored, burst_seen, tmp_path):
    result, watch, start, end = burst_seen
    path = tmp_path / "observability.png"
    draw(monitored.prometheus, start, end, watch, path, "test", result.stalled_s)
    assert path.stat().st_size > 40_000  # five panels with lines, not an empty frame


def test_helm_upgrade_rolls_the_pods_under_traffic_and_loses_or_duplicates_nothing(kube_cluster, burst_seen):
    release, kube = kube_cluster.release, kube_cluster.control_plane.kube
    api = release.object_name("api")
    until(lambda: len(kube_cluster.pods(api + "-")) == 1, 180, "the api back to one pod")

    def names():
        return {pod["metadata"]["name"] for pod in kube_cluster.pods()}

    before = names()
    web = kube_cluster.service_url(release.object_name("web"))
    already = set(kube_cluster.stored_ids())
    with Traffic(web, rate=50, run=f"roll-{int(time.time())}") as traffic:
        time.sleep(3)
        release.upgrade_install(observability.values(kube_cluster, config={"consumerBatchSize": 500}), "rolled")
        until(lambda: names().isdisjoint(before) and len(names()) >= 2, 120, "every pod replaced")
        time.sleep(3)
    accounting = account(web, traffic.requests, lambda: [i for i in kube_cluster.stored_ids() if i not in already])
    print(f"\nrolling update under traffic: {accounting.line()}")
    after = kube_cluster.pods(api + "-")
    assert after and kube_cluster.exec(after[0], "printenv", "CONSUMER_BATCH_SIZE").strip() == "500"
    assert accounting.sent >= 200
    assert (accounting.lost, accounting.unexpected) == ([], [])
    assert accounting.stored == accounting.sent
    assert kube.get(f"/apis/apps/v1/namespaces/{NAMESPACE}/deployments/{api}")["status"].get("readyReplicas") >= 1
