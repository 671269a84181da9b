"""web lingers to fill Kafka batches only while purchases crowd (services/web/linger.py), on the real broker:
the pinned kafka-python must read its linger each time it picks batches to send, or this policy does nothing."""

import time

from kafka import KafkaProducer

from scripts.stack.kafka import create_topics
from services.web.linger import Linger

LONG_LINGER_MS = 800


def acknowledged_after_s(producer: KafkaProducer, topic: str) -> float:
    started = time.monotonic()
    producer.send(topic, key=b"u1", value=b"{}").get(timeout=10)
    return time.monotonic() - started


def test_a_lone_purchase_is_sent_at_once_and_a_crowded_one_lingers(kafka):
    create_topics(kafka.address, "linger-check")
    producer = KafkaProducer(bootstrap_servers=kafka.address, acks="all", linger_ms=LONG_LINGER_MS)
    try:
        producer.partitions_for("linger-check")
        linger = Linger(producer, LONG_LINGER_MS, crowd=3)
        linger.before_send(awaiting=0)
        alone = acknowledged_after_s(producer, "linger-check")
        linger.before_send(awaiting=3)
        crowded = acknowledged_after_s(producer, "linger-check")
    finally:
        producer.close(5)
    print(f"\nacknowledged after: alone {alone * 1000:.1f} ms, in a crowd {crowded * 1000:.1f} ms")
    assert alone < LONG_LINGER_MS / 2000
    assert crowded >= LONG_LINGER_MS / 1000 * 0.9
