"""The network-fault lab: web, api, three Kafka brokers and FerretDB each a host of its own (tests/netfaults/
network.py), started once for the module; each test gets its own topic, group and database, and its own web
and api on their hosts."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pytest

from scripts.stack.ferretdb import FerretDB
from scripts.stack.kafka_cluster import KafkaCluster
from scripts.stack.process import free_port

from ..conftest import REAL, _started
from ..support import System, sanitize
from .network import Host, TestNetwork


@dataclass
class Lab:
    network: TestNetwork
    hosts: dict[str, Host]
    kafka: KafkaCluster
    ferretdb: FerretDB

    @property
    def brokers(self) -> list[Host]:
        return [self.hosts[f"kafka{n}"] for n in (1, 2, 3)]


class PlacedSystem(System):
    """A test's system whose web and api run on their own hosts of the lab."""

    def __init__(self, name: str, lab: Lab, workdir: Path, extra_env: dict[str, str] | None = None) -> None:
        self.lab = lab
        super().__init__(name, lab.kafka, lab.ferretdb, workdir, extra_env)

    def place(self, service: str) -> tuple[str, str | None]:
        host = self.lab.hosts[service]
        return host.address, host.netns


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    assert os.geteuid() == 0, "the network-fault tests make network namespaces: run them as root"
    network = TestNetwork()
    try:
        hosts = {name: network.host(name) for name in ("web", "api", "kafka1", "kafka2", "kafka3", "ferretdb")}
        folder = tmp_path_factory.mktemp("netfaults")
        kafka = KafkaCluster(folder / "kafka", hosts=[hosts[f"kafka{n}"].address for n in (1, 2, 3)])
        for node, n in zip(kafka.nodes, (1, 2, 3), strict=True):
            node.netns = hosts[f"kafka{n}"].netns
        ferretdb = FerretDB(folder / "ferretdb", port=free_port(), host=hosts["ferretdb"].address)
        ferretdb.netns = hosts["ferretdb"].netns
        made = Lab(network, hosts, kafka, ferretdb)
        try:
            kafka.start()
            ferretdb.start()
            _started["lab"] = f"{REAL['lab']} at {network.address}/24"
            yield made
        finally:
            ferretdb.stop()
            kafka.stop()
    finally:
        network.close()


@pytest.fixture
def placed(request, lab, tmp_path):
    for host in lab.hosts.values():
        host.heal()  # whatever a failed test left
    marker = request.node.get_closest_marker("service_env")
    system = PlacedSystem(sanitize(request.node.name, 40), lab, tmp_path, dict(marker.kwargs) if marker else {})
    yield system
    for host in lab.hosts.values():
        host.heal()
    system.stop()
