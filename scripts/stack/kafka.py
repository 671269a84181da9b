"""Apache Kafka for the local stack: one KRaft node (broker and controller) from Maven Central's jars, on the
JDK, and the admin steps the stack needs (wait until it answers, create the topics).

    KafkaServer(folder, port=9092).start()      # its storage formatted on the first start

Three of them make the production-shaped cluster of kafka_cluster.py.
"""

from __future__ import annotations

import base64
import shutil
import time
import uuid
from pathlib import Path

from services.api.topics import ensure_topics
from services.core.config import KafkaConfig

from .process import CACHE, ROOT, Server, StackError, free_port, require, run

KAFKA_POM = ROOT / "scripts" / "kafka" / "pom.xml"
KAFKA_LOG4J = ROOT / "scripts" / "kafka" / "log4j2.xml"
KAFKA_VERSION = "4.1.1"
TOPIC_PARTITIONS = 8
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
    run([mvn, "-B", "-q", "-f", str(KAFKA_POM), "dependency:copy-dependencies",
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
                 voters: str | None = None, host: str = "127.0.0.1", controller_host: str = "127.0.0.1") -> None:
        """One node, its own controller quorum; or, with `voters` ("1@host:port,2@..."), one node of a
        cluster with that static quorum (kafka_cluster.py), whose internal topics have 3 replicas.
        `host`: the address its clients reach it at; `controller_host`: its controller listener's (loopback,
        unless the nodes are hosts of their own)."""
        super().__init__(data_dir, port, host)
        self.controller_port = controller_port or free_port()
        self.controller_host = controller_host
        self.heap = heap
        self.cluster_id = cluster_id or new_cluster_id()
        self.node_id = node_id
        self.voters = voters
        self.libs = kafka_libs()

    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.port}"

    def _properties(self) -> Path:
        path = self.data_dir / "server.properties"
        logs = self.data_dir / "logs"
        path.write_text("\n".join([
            "process.roles=broker,controller",
            f"node.id={self.node_id}",
            *self._quorum(),
            f"listeners=PLAINTEXT://{self.host}:{self.port},CONTROLLER://{self.controller_host}:{self.controller_port}",
            f"advertised.listeners=PLAINTEXT://{self.host}:{self.port}",
            "controller.listener.names=CONTROLLER",
            "inter.broker.listener.name=PLAINTEXT",
            "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
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
        run(self._java("kafka.tools.StorageTool", "format", *standalone, f"--cluster-id={self.cluster_id}",
                       "-c", str(properties)), f"formatting Kafka storage (node {self.node_id})")

    def command(self) -> list[str]:
        return self._java("kafka.Kafka", str(self.data_dir / "server.properties"))

    def start(self, timeout: float = 90.0, wait_ready: bool = True) -> None:
        """`wait_ready`: until it answers requests (a cluster's node cannot before a quorum is up)."""
        super().start(timeout)
        if wait_ready:
            wait_for_kafka(self.bootstrap, timeout)


def wait_for_kafka(bootstrap: str, timeout: float = 60.0) -> None:
    from kafka.admin import KafkaAdminClient
    from kafka.errors import KafkaError

    deadline = time.monotonic() + timeout
    while True:
        try:
            admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=5000)
            admin.list_topics()
            admin.close()
            return
        except KafkaError as exc:
            if time.monotonic() > deadline:
                raise StackError(f"Kafka at {bootstrap} not ready after {timeout:.0f}s: {exc!r}") from exc
            time.sleep(0.5)


def create_topics(bootstrap: str, topic: str, dead_letter_topic: str | None = None,
                  partitions: int = TOPIC_PARTITIONS, replication_factor: int = 1) -> None:
    """The purchases topic with its partitions, and its dead-letter topic (the services' own code does it)."""
    config = KafkaConfig(bootstrap_servers=bootstrap, topic=topic,
                         dead_letter_topic=dead_letter_topic or f"{topic}.dlq")
    ensure_topics(config, partitions, replication_factor)
