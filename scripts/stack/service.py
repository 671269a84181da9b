"""Our services as local processes: the one place that says how a local api or web is wired to Kafka, MongoDB and
each other (the environment it is started with, the names it uses in them).

    wiring = Wiring(kafka_bootstrap, mongodb_uri, api_url="http://127.0.0.1:8081")
    PythonService("api", folder, 8081, wiring.environment()).start()
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from services.core.config import ApiConfig, KafkaConfig

from .process import Server, free_port


@dataclass(frozen=True)
class Names:
    """A system's topic, dead-letter topic, consumer group and database: the production names, or a run's own."""

    topic: str = KafkaConfig.topic
    group: str = KafkaConfig.consumer_group
    database: str = ApiConfig.mongodb_database
    dlq: str = ""  # the dead-letter topic; empty: <topic>.dlq

    def __post_init__(self) -> None:
        if not self.dlq:
            object.__setattr__(self, "dlq", f"{self.topic}.dlq")

    @classmethod
    def of(cls, run: str) -> Names:
        """Names of their own for a test or a benchmark run, beside others on the same servers."""
        return cls(topic=f"purchases-{run}", group=f"group-{run}", database=f"db_{run}")

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Names:
        """The names the services' own variables give (KAFKA_TOPIC, ...), read as api reads them."""
        config = ApiConfig.from_env(env)
        return cls(topic=config.kafka.topic, group=config.kafka.consumer_group, database=config.mongodb_database,
                   dlq=config.kafka.dead_letter_topic)

    @property
    def dead_letter_topic(self) -> str:
        return self.dlq


@dataclass(frozen=True)
class Wiring:
    kafka_bootstrap: str
    mongodb_uri: str
    names: Names = field(default_factory=Names)
    api_url: str = "http://127.0.0.1:8081"
    extra: Mapping[str, str] = field(default_factory=dict)  # LOG_LEVEL, fault-test settings, ...

    def environment(self) -> dict[str, str]:
        return {
            "KAFKA_BOOTSTRAP_SERVERS": self.kafka_bootstrap,
            "KAFKA_TOPIC": self.names.topic,
            "KAFKA_DLQ_TOPIC": self.names.dead_letter_topic,
            "KAFKA_CONSUMER_GROUP": self.names.group,
            "MONGODB_URI": self.mongodb_uri,
            "MONGODB_DATABASE": self.names.database,
            "API_URL": self.api_url,
            "HOST": "127.0.0.1",
            **self.extra,
        }


class PythonService(Server):
    """One of our services, `python -m services.<name>` (or `module`, a variant of it the benchmark measures), with its
    configuration in the environment."""

    def __init__(self, name: str, data_dir: Path, port: int, env: dict[str, str],
                 metrics_port: int | None = None, module: str | None = None) -> None:
        self.name = name
        self.module = module or f"services.{name}"
        super().__init__(data_dir, port)
        self.metrics_port = metrics_port or free_port()
        # As the Dockerfiles do: glibc's allocator, so memory freed after a burst can be handed back.
        self.env = {"PYTHONMALLOC": "malloc", **os.environ, **env, "PORT": str(port),
                    "METRICS_PORT": str(self.metrics_port)}

    def command(self) -> list[str]:
        return [sys.executable, "-m", self.module]

    @property
    def address(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def metrics_url(self) -> str:
        """Its /metrics, on the metrics port."""
        return f"http://{self.host}:{self.metrics_port}/metrics"
