"""The local stack (Kafka, FerretDB), the control plane with KEDA, and the pod runner, started and stopped as one.

Used by `make cluster`, `make autoscale-demo` and the control-plane tests. Everything listens on free ports
of 127.0.0.1 and lives in one folder, so it can run beside `make dev`.
"""

from __future__ import annotations

from pathlib import Path

from scripts.stack import FerretDB, KafkaServer, Server, free_port, say
from scripts.tools import helm_binary

from .cluster import ControlPlane
from .pods import PodRunner
from .release import NAMESPACE, Release


class LocalCluster:
    """`kafka` and `ferretdb`, when given, are running servers to use (and leave running); otherwise our own."""

    def __init__(self, workdir: Path, kafka: KafkaServer | None = None, ferretdb: FerretDB | None = None,
                 restart_backoff_s: tuple[int, ...] | None = None) -> None:
        self.workdir = Path(workdir)
        self.servers: list[Server] = []
        self.control_plane = ControlPlane(self.workdir / "cluster")
        self.runner: PodRunner | None = None
        self.release: Release | None = None
        self.kafka, self.ferretdb = kafka, ferretdb
        self.restart_backoff_s = restart_backoff_s

    def _start(self, server: Server) -> None:
        self.servers.append(server)  # before start(): one interrupted while starting is stopped too
        server.start()

    def start(self) -> "LocalCluster":
        if self.kafka is None:
            self.kafka = KafkaServer(self.workdir / "kafka", port=free_port())
            say(f"starting Kafka on {self.kafka.bootstrap}")
            self._start(self.kafka)
        if self.ferretdb is None:
            self.ferretdb = FerretDB(self.workdir / "ferretdb", port=free_port())
            say(f"starting FerretDB (on PostgreSQL) on {self.ferretdb.uri}")
            self._start(self.ferretdb)
        self.control_plane.start()
        kube = self.control_plane.kube
        self.runner = PodRunner(kube, [NAMESPACE], self.workdir / "pods", restart_backoff_s=self.restart_backoff_s)
        self.runner.start()
        self.release = Release(helm_binary(), kube, self.workdir / "release")
        self.release.prepare_namespace(self.ferretdb.uri)
        return self

    def stop(self) -> None:
        if self.runner is not None:
            self.runner.stop()
        self.control_plane.stop()
        for server in reversed(self.servers):
            server.stop()

    def __enter__(self) -> "LocalCluster":
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc) -> None:
        self.stop()
