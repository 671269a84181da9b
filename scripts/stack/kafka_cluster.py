"""A three-node Apache Kafka cluster on loopback ports (KRaft, combined broker+controller nodes): the chart's
production shape, for tests that kill one broker and expect nothing to notice.

Replication factor 3 and `min.insync.replicas` 2 for every topic, internal ones included: with acks=all a
write needs two in-sync replicas, so any one node may fail. A static controller quorum of all three.
"""

from __future__ import annotations

from pathlib import Path

from .kafka import KafkaServer, new_cluster_id, wait_for_kafka
from .process import free_port
from .waiting import until

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
    def address(self) -> str:
        return ",".join(node.address for node in self.nodes)

    def start(self, timeout: float = 120.0) -> None:
        """Every node, then until the cluster answers with all of its brokers registered."""
        # All at once: a node opens its broker port only once the controller quorum has formed.
        for node in self.nodes:
            node.spawn()
        for node in self.nodes:
            node.wait_open(timeout)
        wait_for_kafka(self.address, timeout)
        self.wait_for_brokers(len(self.nodes), timeout)

    def wait_for_brokers(self, count: int, timeout: float = 60.0) -> None:
        from kafka.admin import KafkaAdminClient
        from kafka.errors import KafkaError

        def registered() -> bool:
            try:
                admin = KafkaAdminClient(bootstrap_servers=self.address, request_timeout_ms=5000)
                try:
                    return len(admin.describe_cluster()["brokers"]) >= count
                finally:
                    admin.close()
            except KafkaError:
                return False

        until(registered, timeout, f"the Kafka cluster to register {count} brokers", interval=0.5)

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()
