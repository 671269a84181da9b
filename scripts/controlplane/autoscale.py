"""Autoscaling, closed loop: a burst from scripts/load.py through the chart's web, and what follows, second by
second: the consumer group's lag (Kafka), the replicas KEDA's HPA asks for, the api pods ready, the api
containers running and the members of the consumer group.

    from scripts.controlplane.autoscale import burst
    result = burst(cluster, purchases=20_000)   # a LocalCluster with the chart installed
"""

from __future__ import annotations

import json
import signal
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from kafka.admin import KafkaAdminClient

from scripts.stack.errors import say
from scripts.stack.paths import ROOT
from scripts.stack.process import spawn
from services.common.lag import LagReader

from .local import LocalCluster
from .release import NAMESPACE

# Values a test or the demo installs on top of the local ones: KEDA polls every 2 s (default 5) and the HPA
# scales down after 30 s of low lag, by any number of pods (default: 120 s, one pod a minute), so the whole
# loop, up and down, takes a couple of minutes instead of ten. Scaling up is the chart's own behaviour.
# 30 s, not less: on the real node an api container is ready 10-15 s after its pod is made (start, join the
# group, the readiness probe's 5-s period), and the lag of a burst may drain before the last ones are.
FAST_LOOP = {
    "keda": {
        "pollingInterval": 2,
        "behavior": {"scaleDown": {"stabilizationWindowSeconds": 30, "selectPolicy": "Max",
                                   "policies": [{"type": "Percent", "value": 100, "periodSeconds": 5}]}},
    },
}


@dataclass
class Sample:
    t_s: float
    lag: int
    desired: int  # the HPA's desiredReplicas (KEDA's metric / lagThreshold, within min..max)
    replicas: int  # the Deployment's spec.replicas (what the HPA set)
    ready: int  # the Deployment's readyReplicas (pods whose /readyz answered)
    consumers: int  # api containers running on the node
    members: int  # members of the consumer group in Kafka

    HEADER = "   t(s)    lag  desired  replicas  ready  consumers  members"

    def line(self) -> str:
        return (f"{self.t_s:7.1f} {self.lag:6d} {self.desired:8d} {self.replicas:9d} {self.ready:6d} "
                f"{self.consumers:10d} {self.members:8d}")


@dataclass
class Result:
    purchases: int
    load: dict  # scripts/load.py --json
    samples: list[Sample] = field(default_factory=list)
    partitions: int = 0
    stalled_s: tuple[float, float] | None = None  # when the database was frozen, seconds into the burst

    def first(self, predicate, after: float = 0.0) -> float | None:
        return next((s.t_s for s in self.samples if s.t_s >= after and predicate(s)), None)

    @property
    def peak(self) -> Sample:
        return max(self.samples, key=lambda s: (s.replicas, s.ready))

    def summary(self) -> dict:
        peak, max_lag = self.peak, max(s.lag for s in self.samples)
        peak_at = self.first(lambda s: s.ready == peak.ready) or 0.0
        drained = self.first(lambda s: s.lag == 0, after=self.first(lambda s: s.lag == max_lag))
        back_to_one = self.first(lambda s: s.replicas == 1 and s.ready == 1, after=peak_at)
        verify = self.load.get("verify", {})
        return {
            "purchases": self.purchases,
            "accepted": self.load.get("accepted"), "stored_missing": verify.get("missing"),
            "stored_duplicated": verify.get("duplicated"), "unreadable_users": verify.get("unreadable_users"),
            "max_lag": max_lag, "max_desired": max(s.desired for s in self.samples),
            "max_ready": peak.ready, "max_consumers": max(s.consumers for s in self.samples),
            "max_group_members": max(s.members for s in self.samples), "partitions": self.partitions,
            "first_scale_up_s": self.first(lambda s: s.replicas > 1), "max_ready_at_s": peak_at,
            "lag_drained_s": drained, "back_to_one_s": back_to_one, "database_stalled_s": self.stalled_s,
        }

    def timeline(self) -> str:
        return "\n".join([Sample.HEADER, *(s.line() for s in self.samples)])

    def to_json(self) -> str:
        return json.dumps({"summary": self.summary(), "load": self.load,
                           "samples": [asdict(s) for s in self.samples]}, indent=2)


class Sampler:
    def __init__(self, cluster: LocalCluster) -> None:
        release, kube = cluster.release, cluster.control_plane.kube
        self.cluster = cluster
        self.api = release.object_name("api")
        self.deployment = f"/apis/apps/v1/namespaces/{NAMESPACE}/deployments/{self.api}"
        self.hpa = f"/apis/autoscaling/v2/namespaces/{NAMESPACE}/horizontalpodautoscalers/keda-hpa-{self.api}"
        self.kube = kube
        kafka = cluster.kafka.admin_config()  # as the admin principal when the cluster's Kafka has SASL
        self.lag = LagReader(kafka, "purchase-group", "purchases")
        self.admin = KafkaAdminClient(**kafka.client_options())

    def members(self) -> int:
        return len(self.admin.describe_groups(["purchase-group"])["purchase-group"]["members"])

    def sample(self, t_s: float) -> Sample:
        deployment = self.kube.get(self.deployment) or {}
        hpa = self.kube.get(self.hpa) or {}
        return Sample(t_s=round(t_s, 1), lag=self.lag.read().total,
                      desired=hpa.get("status", {}).get("desiredReplicas", 0),
                      replicas=deployment.get("spec", {}).get("replicas", 0),
                      ready=deployment.get("status", {}).get("readyReplicas", 0),
                      consumers=len(self.cluster.pods(self.api + "-")),
                      members=self.members())

    def close(self) -> None:
        self.lag.close()
        self.admin.close()


def burst(cluster: LocalCluster, purchases: int = 20_000, concurrency: int = 64, timeout_s: float = 600,
          stall_database_s: float = 0.0, stall_after_s: float = 5.0, rate: float | None = None,
          on_sample=None) -> Result:
    """Fire `purchases` at the chart's web pod, sample every second until the burst is verified, the lag is 0,
    and the api Deployment is back to one ready replica with one consumer in the group (or `timeout_s` passes).

    `rate`: send them at this many a second (open loop) instead of as fast as `concurrency` allows.

    `stall_database_s`: freeze the database (SIGSTOP FerretDB) that long, `stall_after_s` into the burst. On
    this machine one api stores purchases faster than web accepts them, so a burst alone builds a lag of a few
    hundred at most (KEDA keeps one replica, or briefly asks for two); a stalled database is how a backlog
    really builds.

    Through web's Service (its ClusterIP, which kube-proxy carries to the web pod)."""
    web = cluster.service_url(cluster.release.object_name("web"))
    out = cluster.workdir / "load.json"
    pace = ["--rate", str(rate), "--duration", str(purchases / rate)] if rate else [
        "--burst", str(purchases), "--duration", str(timeout_s / 2)]
    command = [sys.executable, str(ROOT / "scripts" / "load.py"), "--url", web, *pace,
               "--concurrency", str(concurrency), "--users", "400",
               "--verify", "--verify-timeout", str(timeout_s / 2), "--json", "--quiet"]
    say(f"burst: {' '.join(command[1:])}")
    sampler = Sampler(cluster)
    result = Result(purchases=purchases, load={}, stalled_s=(stall_after_s, stall_after_s + stall_database_s)
                    if stall_database_s else None)
    database = cluster.ferretdb.process
    stalled = False
    started = time.monotonic()
    with open(out, "w") as stdout:
        load = spawn(command, stdout, errors_too=False, cwd=ROOT)
        try:
            while time.monotonic() - started < timeout_s:
                elapsed = time.monotonic() - started
                if stall_database_s and not stalled and stall_after_s <= elapsed < stall_after_s + stall_database_s:
                    say(f"stalling the database (SIGSTOP FerretDB) for {stall_database_s:.0f} s")
                    database.send_signal(signal.SIGSTOP)
                    stalled = True
                elif stalled and elapsed >= stall_after_s + stall_database_s:
                    database.send_signal(signal.SIGCONT)
                    stalled = False
                sample = sampler.sample(elapsed)
                result.samples.append(sample)
                if on_sample is not None:
                    on_sample(sample)
                scaled_up = any(s.replicas > 1 for s in result.samples)
                back_to_one = sample.replicas == 1 and sample.ready == 1 and sample.members == 1
                if load.poll() is not None and sample.lag == 0 and back_to_one and (
                        scaled_up or time.monotonic() - started > 60):
                    break
                time.sleep(max(0.0, 1.0 - (time.monotonic() - started) % 1.0))
        finally:
            if stalled:
                database.send_signal(signal.SIGCONT)
            if load.poll() is None:
                load.terminate()
            load.wait()
            result.partitions = len(sampler.lag.read().partitions)
            sampler.close()
    printed = Path(out).read_text().strip().splitlines()  # load.py --json: its summary, then one JSON line
    result.load = json.loads(printed[-1]) if printed and printed[-1].startswith("{") else {}
    return result


def plot(result: Result, path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t = [s.t_s for s in result.samples]
    figure, (top, bottom) = plt.subplots(2, 1, figsize=(10, 7), sharex=True)
    top.plot(t, [s.lag for s in result.samples], color="tab:red")
    top.set_ylabel("consumer group lag (records)")
    top.set_title(title, fontsize=9, wrap=True)  # long titles wrap instead of running off the right edge
    top.grid(alpha=0.3)
    bottom.step(t, [s.desired for s in result.samples], where="post", label="desired (KEDA's HPA)")
    bottom.step(t, [s.ready for s in result.samples], where="post", label="api pods ready")
    bottom.step(t, [s.members for s in result.samples], where="post", linestyle="--",
                label="consumers in the group (Kafka)")
    if result.stalled_s:
        for axis in (top, bottom):
            axis.axvspan(*result.stalled_s, color="grey", alpha=0.15, label="database stalled" if axis is top else None)
        top.legend(loc="upper right")
    bottom.axhline(result.partitions, color="grey", linewidth=0.8, linestyle=":", label="partitions (the cap)")
    bottom.set_ylabel("replicas")
    bottom.set_xlabel("seconds since the burst started")
    bottom.set_ylim(0, max(result.partitions, max(s.desired for s in result.samples)) + 1)
    bottom.legend(loc="upper right")
    bottom.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
