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

from services.core.config import ConfigError, KafkaConfig, TopicsConfig

log = logging.getLogger(__name__)


def ensure_topics(kafka: KafkaConfig, partitions: int = TopicsConfig.partitions, replication_factor: int = 1,
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
    try:
        config = TopicsConfig.from_env()
    except ConfigError as exc:
        log.error("configuration refused", extra={"error": str(exc)})
        return 2
    kafka = config.kafka
    deadline = time.monotonic() + config.wait_s
    while True:
        try:
            # Each attempt within what is left of TOPIC_WAIT_S: kafka-python alone would wait 30 s to bootstrap.
            created = ensure_topics(kafka, config.partitions, config.replication_factor,
                                    connect_timeout_s=deadline - time.monotonic())
            log.info("topics ready", extra={"created_topics": created, "topic": kafka.topic,
                                            "partitions": config.partitions,
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
