"""Create the purchases topic with its partitions, and its dead-letter topic. Existing topics are kept.

    python -m services.api.topics      # KAFKA_* variables as for the services, plus
                                       # TOPIC_PARTITIONS (default 8), TOPIC_REPLICATION_FACTOR (default 1)

The local stack calls it at start; on Kubernetes the chart runs it as a Job. Topics are never auto-created:
a topic made by a client's first request would have one partition, and KEDA could never scale past one.
"""

from __future__ import annotations

import logging
import os
import sys
import time

from kafka.admin import KafkaAdminClient, NewTopic
from kafka.errors import KafkaError, TopicAlreadyExistsError

from services.core.config import KafkaConfig

log = logging.getLogger(__name__)

DEFAULT_PARTITIONS = 8


def ensure_topics(kafka: KafkaConfig, partitions: int = DEFAULT_PARTITIONS, replication_factor: int = 1,
                  connect_timeout_s: float = 30.0) -> list[str]:
    """Returns the names of the topics it created. Gives up on reaching Kafka after `connect_timeout_s`."""
    created = []
    admin = KafkaAdminClient(**kafka.client_options(), bootstrap_timeout_ms=max(int(connect_timeout_s * 1000), 1000))
    try:
        for name, count in ((kafka.topic, partitions), (kafka.dead_letter_topic, 1)):
            try:
                admin.create_topics([NewTopic(name, count, replication_factor)])
                created.append(name)
            except TopicAlreadyExistsError:
                pass
    finally:
        admin.close()
    return created


def main() -> int:
    from services.common.logs import setup_logging

    setup_logging("topics", os.environ.get("LOG_LEVEL", "INFO").upper())
    kafka = KafkaConfig.from_env(os.environ)
    partitions = int(os.environ.get("TOPIC_PARTITIONS", DEFAULT_PARTITIONS))
    replication = int(os.environ.get("TOPIC_REPLICATION_FACTOR", 1))
    deadline = time.monotonic() + float(os.environ.get("TOPIC_WAIT_S", 300))
    while True:
        try:
            # Each attempt within what is left of TOPIC_WAIT_S: kafka-python alone would wait 30 s to bootstrap.
            created = ensure_topics(kafka, partitions, replication, connect_timeout_s=deadline - time.monotonic())
            log.info("topics ready", extra={"created_topics": created, "topic": kafka.topic, "partitions": partitions,
                                            "dead_letter_topic": kafka.dead_letter_topic})
            return 0
        except KafkaError as exc:
            if time.monotonic() > deadline:
                log.error("kafka not reachable; topics not created", extra={"error": repr(exc)})
                return 1
            log.warning("kafka not reachable yet, retrying", extra={"error": repr(exc)})
            time.sleep(3)


if __name__ == "__main__":
    sys.exit(main())
