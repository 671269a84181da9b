"""The whole local cluster, started and stopped as one: the control plane with KEDA, a registry holding the
images built from our Dockerfiles, the real node that runs them, the local stack's Kafka and FerretDB on the
node's bridge address (where the pods reach them; the chart's external-server values point there), and a Docker
API (podman's) for Tilt to build with.

Used by `make cluster`, `make autoscale-demo` and the control-plane tests. The control plane and the registry
listen on free ports of 127.0.0.1; the node's addresses are on its bridge (network.py). Root only.
"""

from __future__ import annotations

from pathlib import Path

import pymongo

from scripts import images
from scripts.stack.ferretdb import FerretDB
from scripts.stack.kafka import KafkaServer
from scripts.stack.kafka_security import KafkaSecurity
from scripts.stack.process import Server, free_port
from scripts.stack.system import System
from scripts.tools import helm_binary

from .cluster import ControlPlane
from .network import GATEWAY
from .node import Node, Registry, require_root
from .release import NAMESPACE, Release, local_values
from .tilt import DockerAPI


class LocalCluster:
    """`kafka_security`: the local Kafka with SASL/SCRAM and ACLs (scripts/stack/kafka_security.py), and the chart
    installed to authenticate to it, each part as its own principal."""

    def __init__(self, workdir: Path, kafka_security: bool = False) -> None:
        self.workdir = Path(workdir)
        self.kafka_security = KafkaSecurity.made_in(self.workdir / "kafka") if kafka_security else None
        self.servers: list[Server] = []
        self.control_plane = ControlPlane(self.workdir / "cluster")
        self.registry = Registry(self.workdir / "registry", free_port())
        self.docker_api = DockerAPI(self.workdir / "docker-api")  # for Tilt's builds
        self.node: Node | None = None
        self.stack: System | None = None  # Kafka and FerretDB: the local stack's, on the node's address
        self.release: Release | None = None
        self.images: dict[str, str] = {}

    def _start(self, server: Server) -> None:
        self.servers.append(server)  # before start(): one interrupted while starting is stopped too
        server.start()

    def start(self) -> LocalCluster:
        require_root()
        self.control_plane.start(keda=False)
        kube = self.control_plane.kube
        self._start(self.registry)
        self.advertise_registry()
        self.images = images.push_all(images.build_all(images.base_image()), self.registry.address)
        self.node = Node(self.workdir / "node", kube, self.control_plane.pki / "ca.crt", self.images["pause"],
                         self.registry.address)
        self.node.start()
        self.control_plane.start_keda(metrics_host=GATEWAY)  # its metrics on the node's address, for a Prometheus
        self.stack = System(self.workdir, KafkaServer(self.workdir / "kafka", port=free_port(), host=GATEWAY,
                                                      security=self.kafka_security),
                            FerretDB(self.workdir / "ferretdb", port=free_port(), host=GATEWAY))
        self.stack.start_servers()
        if self.kafka_security is not None:  # the chart's names (Names()); the topics Job creates the topics
            names = self.stack.names
            self.kafka_security.provision(self.kafka.address, names.topic, names.dead_letter_topic, names.group)
        self._start(self.docker_api)
        self.release = Release(helm_binary(), kube, self.workdir / "release")
        self.release.prepare_namespace(self.ferretdb.address, self.kafka_security)
        return self

    def advertise_registry(self) -> None:
        """The `local-registry-hosting` ConfigMap (KEP 1755), where Tilt finds the registry to push to."""
        hosting = f'host: "{self.registry.address}"\nhelp: "the local cluster\'s registry (make cluster)"\n'
        self.control_plane.kube.apply([{"apiVersion": "v1", "kind": "ConfigMap",
                                        "metadata": {"name": "local-registry-hosting", "namespace": "kube-public"},
                                        "data": {"localRegistryHosting.v1": hosting}}])

    @property
    def kafka(self) -> KafkaServer:
        return self.stack.kafka

    @property
    def ferretdb(self) -> FerretDB:
        return self.stack.mongodb

    def values(self) -> dict:
        """The chart's values for this cluster: our Kafka (with its SASL settings) and FerretDB, the images from our
        registry."""
        return local_values(self.kafka.address, self.registry.address, sasl=self.kafka_security is not None)

    # -- what the tests and the demo look at -------------------------------------------------------------

    def pods(self, prefix: str = "", namespace: str = NAMESPACE) -> list[dict]:
        """Pods whose container is running (not being deleted), by name prefix."""
        return [pod for pod in self.control_plane.kube.pods(namespace)
                if pod["metadata"]["name"].startswith(prefix) and not pod["metadata"].get("deletionTimestamp")
                and any("running" in status.get("state", {})
                        for status in pod.get("status", {}).get("containerStatuses", []))]

    def service_url(self, service: str) -> str:
        """http://<ClusterIP>:<port> of one of the release's Services: kube-proxy carries it to a ready pod."""
        spec = self.control_plane.kube.get(f"/api/v1/namespaces/{NAMESPACE}/services/{service}")["spec"]
        return f"http://{spec['clusterIP']}:{spec['ports'][0]['port']}"

    @staticmethod
    def pod_url(pod: dict, port: int = 8080) -> str:
        return f"http://{pod['status']['podIP']}:{port}"

    def stored_ids(self, database: str = "purchases") -> list[str]:
        """The ids of the purchases in FerretDB (the chart's database), duplicates kept (the _id makes them
        impossible; the fault accounting checks it)."""
        client = pymongo.MongoClient(self.ferretdb.address)
        try:
            return [doc["_id"] for doc in client[database]["purchases"].find({}, {"_id": 1})]
        finally:
            client.close()

    def exec(self, pod: dict, *command: str) -> str:
        """`kubectl exec` in the pod's container: what it printed."""
        return self.control_plane.kube.kubectl("exec", "-n", NAMESPACE, pod["metadata"]["name"], "--",
                                               *command).stdout

    def stop(self) -> None:
        if self.node is not None:
            self.node.stop()
        self.control_plane.stop()
        if self.stack is not None:
            self.stack.stop()
        for server in reversed(self.servers):
            server.stop()

    def __enter__(self) -> LocalCluster:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc) -> None:
        self.stop()
