"""The chart's monitoring on the local cluster, for real: prometheus-operator's CRDs, the chart installed with its
ServiceMonitors, PrometheusRule and dashboard, kube-state-metrics, and a real Prometheus set up from those objects
(prometheus.py); then `make observability` fires the autoscaling burst and draws docs/observability.png from
Prometheus' own data with the dashboard's own queries.

    python -m scripts.controlplane.observability [--png docs/observability.png] [--dir DIR]

tests/controlplane/test_monitoring.py uses the same pieces (Monitoring, AlertWatch, panel_queries, draw).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from scripts.stack import gomodule
from scripts.stack.errors import say
from scripts.stack.paths import ROOT
from scripts.stack.waiting import until

from . import build
from .__main__ import on_a_cluster
from .autoscale import FAST_LOOP, Result, burst
from .demo import burst_arguments
from .keda import NAMESPACE as KEDA_NAMESPACE
from .kube_state_metrics import KubeStateMetrics
from .local import LocalCluster
from .prometheus import Prometheus, prometheus_version
from .release import NAMESPACE, merge

PROMETHEUS_OPERATOR = "github.com/prometheus-operator/prometheus-operator"
PROMETHEUS_OPERATOR_VERSION = "v0.85.0"  # its CRDs: the kinds the chart's monitoring objects are
MONITORING_NAMESPACE = "monitoring"
DASHBOARD = ROOT / "helm" / "purchase-system" / "dashboards" / "purchase-system.json"
LAG_ALERT = "PurchaseConsumerLagHigh"
# The chart's monitoring on, the lag read every 2 s and scraped every 2 s, and the lag alert made to act within a run
# of a few minutes: a lag of 500 for 15 s (the chart's defaults: 5,000 for 5 minutes; the lag is read every 5 s and
# scraped every 30 s).
LAG_ALERT_FOR_S = 15
VALUES = {
    "web": {"extraEnv": [{"name": "LAG_EXPORT_INTERVAL_S", "value": "2"}]},
    "metrics": {"serviceMonitor": {"enabled": True, "interval": "2s"},
                "keda": {"serviceMonitor": {"enabled": True, "interval": "2s"}},
                "prometheusRule": {"enabled": True, "alerts": {"consumerLagHigh": {"threshold": 500,
                                                                                   "for": f"{LAG_ALERT_FOR_S}s"}}},
                "dashboard": {"enabled": True}},
    "networkPolicy": {"metricsNamespaces": [MONITORING_NAMESPACE]},
}


def describe() -> str:
    return (f"Prometheus {prometheus_version()} and kube-state-metrics {build.KUBE_STATE_METRICS_VERSION}, with "
            f"prometheus-operator {PROMETHEUS_OPERATOR_VERSION}'s CRDs")


class Monitoring:
    """kube-state-metrics and a Prometheus on the local cluster; install_crds() before the chart, start() after."""

    def __init__(self, cluster: LocalCluster, workdir: Path) -> None:
        self.cluster = cluster
        kube = cluster.control_plane.kube
        self.kube_state_metrics = KubeStateMetrics(workdir / "kube-state-metrics", kube)
        self.prometheus = Prometheus(workdir / "prometheus", kube,
                                     {"kube-state-metrics": self.kube_state_metrics.target})

    def install_crds(self) -> None:
        """prometheus-operator's CRDs (from its Go module, pinned), and the namespace the scrapes come from."""
        source = gomodule.module_source(PROMETHEUS_OPERATOR, PROMETHEUS_OPERATOR_VERSION)
        crds = sorted((source / "example" / "prometheus-operator-crd").glob("monitoring.coreos.com_*.yaml"))
        kube = self.cluster.control_plane.kube
        kube.apply("\n---\n".join(path.read_text() for path in crds))
        kube.kubectl("wait", "--for=condition=Established", "--timeout=60s", "crd", "--all")
        kube.apply([{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": MONITORING_NAMESPACE}}])

    def start(self) -> Monitoring:
        self.kube_state_metrics.start()
        self.prometheus.configure(NAMESPACE, KEDA_NAMESPACE)  # the chart's ServiceMonitors, KEDA's in its namespace
        self.prometheus.start()
        return self

    def stop(self) -> None:
        self.prometheus.stop()
        self.kube_state_metrics.stop()

    def wait_for_targets(self, jobs: int, timeout: float = 90) -> list[dict]:
        """Until `jobs` scrape jobs each have a target, every one of them up."""
        seen: list[dict] = []

        def all_up() -> list[dict] | None:
            seen[:] = self.prometheus.targets()
            up = len({t["scrapePool"] for t in seen}) >= jobs and all(t["health"] == "up" for t in seen)
            return list(seen) if up else None

        return until(all_up, timeout, lambda: f"Prometheus' {jobs} jobs' targets all up; seen: "
                     f"{[(t['scrapeUrl'], t['health'], t['lastError']) for t in seen]}", self.prometheus, interval=1)


@dataclass
class AlertWatch:
    """An alert's state, sampled each second of a burst: (seconds into it, "inactive" | "pending" | "firing")."""

    prometheus: Prometheus
    alert: str = LAG_ALERT
    states: list[tuple[float, str]] = field(default_factory=list)

    def sample(self, t_s: float) -> None:
        found = [a["state"] for a in self.prometheus.alerts() if a["labels"].get("alertname") == self.alert]
        self.states.append((t_s, "firing" if "firing" in found else "pending" if found else "inactive"))

    def first(self, state: str, after: float = 0.0) -> float | None:
        return next((t for t, s in self.states if s == state and t >= after), None)


def panel_queries(namespace: str = NAMESPACE, rate_interval: str = "1m") -> list[tuple[str, str, str]]:
    """Every query of the dashboard, as Grafana would send it: (panel title, legend, PromQL)."""
    board = json.loads(DASHBOARD.read_text())
    return [(panel["title"], target.get("legendFormat", ""),
             target["expr"].replace("$namespace", namespace).replace("$__rate_interval", rate_interval))
            for panel in board["panels"] for target in panel["targets"]]


def draw(prometheus: Prometheus, start: float, end: float, watch: AlertWatch, path: Path, title: str,
         stalled_s: tuple[float, float] | None = None) -> None:
    """docs/observability.png: the dashboard's queries over [start, end], as Prometheus recorded them."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    queries = {(title_, legend): expr for title_, legend, expr in panel_queries(rate_interval="20s")}

    def series(panel: str, legend: str) -> list[tuple[list[float], list[float], dict]]:
        result = prometheus.query_range(queries[(panel, legend)], start, end, 2)
        return [([float(t) - start for t, _ in s["values"]], [float(v) for _, v in s["values"]], s["metric"])
                for s in result]

    figure, axes = plt.subplots(5, 1, figsize=(10, 12), sharex=True)
    lag, replicas, accepted, stored, alert = axes
    for t, v, metric in sorted(series("Consumer group lag per partition", "partition {{partition}}"),
                               key=lambda s: int(s[2].get("partition", 0))):
        lag.plot(t, v, linewidth=1, label=f"partition {metric.get('partition')}")
    lag.set_ylabel("lag (records)")
    lag.legend(loc="upper right", ncol=4, fontsize=7)
    for legend, style in (("desired (KEDA's HPA)", "-"), ("ready", "--")):
        for t, v, _ in series("api replicas: desired and ready", legend):
            replicas.step(t, v, where="post", linestyle=style, label=legend)
    replicas.set_ylabel("api replicas")
    replicas.legend(loc="upper right", fontsize=8)
    for t, v, _ in series("Buys accepted and refused", "accepted (202)"):
        accepted.plot(t, v, color="tab:green")
    accepted.set_ylabel("buys accepted / s")
    for t, v, _ in series("Purchase to stored (the SLO)", "p99"):
        stored.plot(t, v, color="tab:purple")
    stored.set_ylabel("purchase to stored\np99 (s)")
    levels = {"inactive": 0, "pending": 1, "firing": 2}
    alert.step([t for t, _ in watch.states], [levels[s] for _, s in watch.states], where="post", color="tab:red")
    alert.set_yticks([0, 1, 2], ["inactive", "pending", "firing"])
    alert.set_ylabel(watch.alert, fontsize=8)
    alert.set_xlabel("seconds since the burst started")
    for axis in axes:
        axis.grid(alpha=0.3)
        if stalled_s:
            axis.axvspan(*stalled_s, color="grey", alpha=0.15)
    figure.suptitle(title, fontsize=10)
    figure.tight_layout(rect=(0, 0, 1, 0.98))
    figure.savefig(path, dpi=100)
    plt.close(figure)


def values(cluster: LocalCluster, **extra: object) -> dict:
    """The chart's values for an observed autoscaling run: the cluster's, FAST_LOOP's, the monitoring's, `extra`'s."""
    return merge(merge(merge(cluster.values(), FAST_LOOP), VALUES), extra)


def install(cluster: LocalCluster, monitoring: Monitoring, label: str = "monitoring") -> None:
    monitoring.install_crds()
    cluster.release.upgrade_install(values(cluster), label)


def observed_burst(cluster: LocalCluster, monitoring: Monitoring, purchases: int, stall_s: float,
                   on_sample=None) -> tuple[Result, AlertWatch, float, float]:
    """The autoscaling burst with the database stalled, the lag alert sampled every second: (the burst's result,
    the alert's states, and when the burst began and ended, in Unix time)."""
    watch = AlertWatch(monitoring.prometheus)
    started = time.time()

    def sample(s) -> None:
        watch.sample(s.t_s)
        if on_sample is not None:
            on_sample(s)
    result = burst(cluster, purchases, stall_database_s=stall_s, on_sample=sample)
    time.sleep(10)  # a last scrape and evaluation past the drain
    watch.sample(time.time() - started)
    return result, watch, started, time.time()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    args = burst_arguments(parser, ROOT / "docs" / "observability.png").parse_args(argv)

    def observe(cluster: LocalCluster) -> int:
        monitoring = Monitoring(cluster, args.dir / "monitoring")
        try:
            install(cluster, monitoring)
            monitoring.start().wait_for_targets(3)
            say(f"Prometheus at {monitoring.prometheus.address}: {describe()}")
            result, watch, start, end = observed_burst(cluster, monitoring, args.purchases, args.stall)
            title = (f"{args.purchases:,} purchases, the database stalled {args.stall:.0f} s: what Prometheus saw "
                     f"(the dashboard's queries; KEDA {build.KEDA_VERSION}, Kubernetes {build.KUBERNETES_VERSION})")
            draw(monitoring.prometheus, start, end, watch, args.png, title, result.stalled_s)
        finally:
            monitoring.stop()
        firing = watch.first("firing")
        resolved = watch.first("inactive", after=firing) if firing is not None else None
        print(f"\n  {watch.alert}: pending at {watch.first('pending')} s, firing at {firing} s, resolved at "
              f"{resolved} s\n  picture: {args.png}")
        return 0
    return on_a_cluster(args.dir, observe)


if __name__ == "__main__":
    sys.exit(main())
