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

from services.core.config import KafkaConfig

from .process import Server


@dataclass(frozen=True)
class Names:
    """A system's topic, dead-letter topic, consumer group and database: the production names, or a run's own."""

    topic: str = "purchases"
    group: str = "purchase-group"
    database: str = "purchases"
    dlq: str = ""  # the dead-letter topic; empty: <topic>.dlq

    @classmethod
    def of(cls, run: str) -> Names:
        """Names of their own for a test or a benchmark run, beside others on the same servers."""
        return cls(topic=f"purchases-{run}", group=f"group-{run}", database=f"db_{run}")

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Names:
        """The names the services' own variables give (KAFKA_TOPIC, ...), the production ones where unset."""
        return cls(topic=env.get("KAFKA_TOPIC") or cls.topic, group=env.get("KAFKA_CONSUMER_GROUP") or cls.group,
                   database=env.get("MONGODB_DATABASE") or cls.database, dlq=env.get("KAFKA_DLQ_TOPIC") or "")

    @property
    def dead_letter_topic(self) -> str:
        return self.dlq or f"{self.topic}.dlq"


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

    def kafka(self) -> KafkaConfig:
        return KafkaConfig(bootstrap_servers=self.kafka_bootstrap, topic=self.names.topic,
                           dead_letter_topic=self.names.dead_letter_topic, consumer_group=self.names.group)


class PythonService(Server):
    """One of our services, `python -m services.<name>`, with its configuration in the environment."""

    def __init__(self, name: str, data_dir: Path, port: int, env: dict[str, str]) -> None:
        self.name = name
        super().__init__(data_dir, port)
        # As the Dockerfiles do: glibc's allocator, so memory freed after a burst can be handed back.
        self.env = {"PYTHONMALLOC": "malloc", **os.environ, **env, "PORT": str(port)}

    def command(self) -> list[str]:
        return [sys.executable, "-m", f"services.{self.name}"]

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"
