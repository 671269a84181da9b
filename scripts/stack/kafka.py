"""Apache Kafka for the local stack: one KRaft node (broker and controller) from Maven Central's jars, on the
JDK, and the admin steps the stack needs (wait until it answers, create the topics).

    KafkaServer(folder, port=9092).start()      # its storage formatted on the first start

Three of them make the production-shaped cluster of kafka_cluster.py.
"""

from __future__ import annotations

import base64
import dataclasses
import shutil
import uuid
from pathlib import Path

from services.api.topics import ensure_topics
from services.core.config import KafkaConfig, TopicsConfig

from .kafka_security import KafkaSecurity
from .paths import CACHE, ROOT, require
from .process import Server, free_port, step
from .waiting import until

KAFKA_POM = ROOT / "scripts" / "kafka" / "pom.xml"
KAFKA_LOG4J = ROOT / "scripts" / "kafka" / "log4j2.xml"
KAFKA_VERSION = "4.1.1"
TOPIC_PARTITIONS = TopicsConfig.partitions  # as the topics Job makes it
# Kafka's internal topics, as named in its `<name>.replication.factor` and `<name>.min.isr` settings.
INTERNAL_TOPICS = ("offsets.topic", "transaction.state.log", "share.coordinator.state.topic")


def kafka_libs() -> Path:
    """The folder of jars a Kafka broker runs from; resolved with Maven on first use."""
    libs = CACHE / f"kafka-{KAFKA_VERSION}" / "libs"
    if (libs / ".complete").exists():
        return libs
    require("java")
    mvn = require("mvn")
    if libs.exists():
        shutil.rmtree(libs)
    step([mvn, "-B", "-q", "-f", str(KAFKA_POM), "dependency:copy-dependencies",
         "-DincludeScope=runtime", f"-DoutputDirectory={libs}"],
        f"fetching Apache Kafka {KAFKA_VERSION} jars from Maven Central")
    (libs / ".complete").touch()
    return libs


def new_cluster_id() -> str:
    """A KRaft cluster id: 16 random bytes, URL-safe base64 without padding (what `random-uuid` prints)."""
    return base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")


class KafkaServer(Server):
    name = "kafka"

    def __init__(self, data_dir: Path, port: int = 9092, controller_port: int | None = None,
                 heap: str = "512m", cluster_id: str | None = None, node_id: int = 1,
                 voters: str | None = None, host: str = "127.0.0.1", controller_host: str = "127.0.0.1",
                 security: KafkaSecurity | None = None) -> None:
        """One node, its own controller quorum; or, with `voters` ("1@host:port,2@..."), one node of a
        cluster with that static quorum (kafka_cluster.py), whose internal topics have 3 replicas.
        `host`: the address its clients reach it at; `controller_host`: its controller listener's (loopback,
        unless the nodes are hosts of their own). `security`: SASL/SCRAM and ACLs (kafka_security.py)."""
        super().__init__(data_dir, port, host)
        self.controller_port = controller_port or free_port()
        self.controller_host = controller_host
        self.heap = heap
        self.cluster_id = cluster_id or new_cluster_id()
        self.node_id = node_id
        self.voters = voters
        self.security = security
        self.libs = kafka_libs()

    def admin_config(self, **names: str) -> KafkaConfig:
        """How an admin connects (with SASL: as the admin principal); `names`: KAFKA_TOPIC and friends."""
        if self.security is None:
            return KafkaConfig.from_env({"KAFKA_BOOTSTRAP_SERVERS": self.address, **names})
        return self.security.config(self.address, **names)

    def _properties(self) -> Path:
        path = self.data_dir / "server.properties"
        logs = self.data_dir / "logs"
        client = "PLAINTEXT" if self.security is None else "SASL_PLAINTEXT"
        path.write_text("\n".join([
            "process.roles=broker,controller",
            f"node.id={self.node_id}",
            *self._quorum(),
            f"listeners={client}://{self.host}:{self.port},CONTROLLER://{self.controller_host}:{self.controller_port}",
            f"advertised.listeners={client}://{self.host}:{self.port}",
            "controller.listener.names=CONTROLLER",
            f"inter.broker.listener.name={client}",
            f"listener.security.protocol.map={client}:{client},CONTROLLER:PLAINTEXT",
            *(self.security.broker_properties(client) if self.security else []),
            f"log.dirs={logs}",
            "offsets.topic.num.partitions=8",
            # Topics are created by us, with their partitions; never by a client's typo.
            "auto.create.topics.enable=false",
            "group.initial.rebalance.delay.ms=0",
            "",
        ]))
        return path

    def _quorum(self) -> list[str]:
        if self.voters is None:
            # One node: internal topics cannot have more than one replica.
            return [f"controller.quorum.bootstrap.servers={self.controller_host}:{self.controller_port}",
                    *(f"{name}.replication.factor=1" for name in INTERNAL_TOPICS),
                    *(f"{name}.min.isr=1" for name in INTERNAL_TOPICS if name != "offsets.topic")]
        # The production shape: 3 replicas, acks=all needs 2 in sync, so one broker may fail.
        # A dead broker is fenced after 3 s without heartbeats (Kafka's default: 9 s), so its partitions' leaders
        # move sooner; until then writes to them wait (and web answers 503).
        return [f"controller.quorum.voters={self.voters}", "default.replication.factor=3", "min.insync.replicas=2",
                "broker.session.timeout.ms=3000", "broker.heartbeat.interval.ms=500",
                *(f"{name}.replication.factor=3" for name in INTERNAL_TOPICS),
                *(f"{name}.min.isr=2" for name in INTERNAL_TOPICS if name != "offsets.topic")]

    def _java(self, main: str, *args: str) -> list[str]:
        # TieredStopAtLevel=1: compile with C1 only. A broker that lives for a test session or a bench run spends
        # its first minutes compiling with C2 on the cores the services need: measured at 500 produce requests/s,
        # 44 % of a core for the broker over 30 s (21 % of it the C2 compiler) against 28 % with C1 alone, and
        # at ~2,000/s 73 % against 46 %. A long-lived production broker keeps the JVM's default.
        return [require("java"), "-XX:TieredStopAtLevel=1", f"-Xms{self.heap}", f"-Xmx{self.heap}", "-XX:+UseG1GC",
                "-XX:+ExitOnOutOfMemoryError", "-Djava.awt.headless=true",
                f"-Dlog4j2.configurationFile={KAFKA_LOG4J}", "-cp", f"{self.libs}/*", main, *args]

    def prepare(self) -> None:
        properties = self._properties()
        if (self.data_dir / "logs" / "meta.properties").exists():
            return
        # `--cluster-id=ID`, one argument: one id in 64 starts with '-', which as a separate argument the
        # storage tool's parser takes for an option ("expected one argument").
        standalone = ["--standalone"] if self.voters is None else []
        scram = self.security.format_arguments() if self.security else []
        step(self._java("kafka.tools.StorageTool", "format", *standalone, f"--cluster-id={self.cluster_id}", *scram,
                       "-c", str(properties)), f"formatting Kafka storage (node {self.node_id})")

    def command(self) -> list[str]:
        return self._java("kafka.Kafka", str(self.data_dir / "server.properties"))

    def start(self, timeout: float = 90.0, wait_ready: bool = True) -> None:
        """`wait_ready`: until it answers requests (a cluster's node cannot before a quorum is up)."""
        super().start(timeout)
        if wait_ready:
            wait_for_kafka(self.admin_config(), timeout)


def wait_for_kafka(kafka: KafkaConfig | str, timeout: float = 60.0) -> None:
    """Until Kafka answers (`kafka`: how to reach it, or a plaintext bootstrap address)."""
    from kafka.admin import KafkaAdminClient
    from kafka.errors import KafkaError

    if isinstance(kafka, str):
        kafka = KafkaConfig(bootstrap_servers=kafka)
    failure: list[KafkaError] = []

    def answers() -> bool:
        try:
            admin = KafkaAdminClient(**kafka.client_options(), request_timeout_ms=5000)
            admin.list_topics()
            admin.close()
            return True
        except KafkaError as exc:
            failure[:] = [exc]
            return False

    until(answers, timeout, lambda: f"Kafka at {kafka.bootstrap_servers} to answer (last: {failure[0]!r})",
          interval=0.5)


def create_topics(kafka: KafkaConfig | str, topic: str, dead_letter_topic: str | None = None,
                  partitions: int = TOPIC_PARTITIONS, replication_factor: int = 1) -> None:
    """The purchases topic with its partitions, and its dead-letter topic (the services' own code does it).
    `kafka`: how to reach Kafka (its security settings), or a plaintext bootstrap address."""
    base = KafkaConfig(bootstrap_servers=kafka) if isinstance(kafka, str) else kafka
    config = dataclasses.replace(base, topic=topic, dead_letter_topic=dead_letter_topic or f"{topic}.dlq")
    ensure_topics(config, partitions, replication_factor)
