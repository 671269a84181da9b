"""A three-node Apache Kafka cluster on loopback ports (KRaft, combined broker+controller nodes): the chart's
production shape, for tests that kill one broker and expect nothing to notice.

Replication factor 3 and `min.insync.replicas` 2 for every topic, internal ones included: with acks=all a
write needs two in-sync replicas, so any one node may fail. A static controller quorum of all three.
"""

from __future__ import annotations

import time
from pathlib import Path

from .kafka import KafkaServer, new_cluster_id, wait_for_kafka
from .process import StackError, free_port

REPLICATION_FACTOR = 3


class KafkaCluster:
    replication_factor = REPLICATION_FACTOR

    def __init__(self, data_dir: Path, size: int = 3, heap: str = "384m", hosts: list[str] | None = None) -> None:
        """`hosts`: an address per node (each a host of its own, tests/netfaults/); default: all on loopback."""
        hosts = hosts or ["127.0.0.1"] * size
        ports = [(free_port(), free_port()) for _ in range(size)]
        voters = ",".join(f"{node}@{host}:{controller}"
                          for node, (host, (_, controller)) in enumerate(zip(hosts, ports, strict=True), 1))
        cluster_id = new_cluster_id()
        self.nodes = [KafkaServer(Path(data_dir) / f"node-{node}", port=port, controller_port=controller,
                                  heap=heap, cluster_id=cluster_id, node_id=node, voters=voters, host=host,
                                  controller_host=host)
                      for node, (host, (port, controller)) in enumerate(zip(hosts, ports, strict=True), 1)]

    @property
    def bootstrap(self) -> str:
        return ",".join(node.bootstrap for node in self.nodes)

    def start(self, timeout: float = 120.0) -> None:
        """Every node, then until the cluster answers with all of its brokers registered."""
        # All at once: a node opens its broker port only once the controller quorum has formed.
        for node in self.nodes:
            node.spawn()
        for node in self.nodes:
            node.wait_open(timeout)
        wait_for_kafka(self.bootstrap, timeout)
        self.wait_for_brokers(len(self.nodes), timeout)

    def wait_for_brokers(self, count: int, timeout: float = 60.0) -> None:
        from kafka.admin import KafkaAdminClient
        from kafka.errors import KafkaError

        deadline = time.monotonic() + timeout
        while True:
            try:
                admin = KafkaAdminClient(bootstrap_servers=self.bootstrap, request_timeout_ms=5000)
                try:
                    if len(admin.describe_cluster()["brokers"]) >= count:
                        return
                finally:
                    admin.close()
            except KafkaError:
                pass
            if time.monotonic() > deadline:
                raise StackError(f"the Kafka cluster did not register {count} brokers in {timeout:.0f}s")
            time.sleep(0.5)

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()
