"""kube-state-metrics, a process of the local cluster (built in build.py): the cluster's objects as Prometheus
metrics, the dashboard's desired replicas of KEDA's HPA and the api Deployment's ready ones. Only the kinds the
dashboard reads are exported."""

from __future__ import annotations

from pathlib import Path

from scripts.stack.process import Server, free_port

from . import build
from .kube import Kube

RESOURCES = ("deployments", "horizontalpodautoscalers", "pods")


class KubeStateMetrics(Server):
    name = "kube-state-metrics"

    def __init__(self, data_dir: Path, kube: Kube) -> None:
        super().__init__(data_dir, free_port())
        self.kube = kube

    @property
    def target(self) -> str:
        return f"{self.host}:{self.port}"

    def command(self) -> list[str]:
        return [str(build.binary("kube-state-metrics")), f"--kubeconfig={self.kube.kubeconfig}",
                f"--host={self.host}", f"--port={self.port}", f"--telemetry-host={self.host}",
                f"--telemetry-port={free_port()}", f"--resources={','.join(RESOURCES)}"]

    @staticmethod
    def version() -> str:
        return f"kube-state-metrics {build.KUBE_STATE_METRICS_VERSION}"
