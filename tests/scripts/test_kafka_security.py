"""Kafka's own door locked, for real: a broker with SASL/SCRAM-SHA-512 and ACLs (scripts/stack/kafka_security.py), each
part of the system a principal allowed only what it does, and the whole pipeline working through it."""

from __future__ import annotations

import time

import pytest
from kafka import KafkaConsumer, KafkaProducer
from kafka.errors import (
    GroupAuthorizationFailedError,
    KafkaError,
    TopicAuthorizationFailedError,
)

from scripts.loadgen.accounting import account
from scripts.loadgen.keyed import Traffic
from services.api.topics import ensure_topics
from services.common.lag import LagReader
from services.core.config import KafkaConfig

from ..support import System, sanitize


@pytest.fixture
def secure_system(request, secure_kafka, ferretdb, tmp_path):
    made = System(sanitize(request.node.name), secure_kafka, ferretdb, tmp_path)  # topics, credentials, ACLs
    yield made
    made.stop()


def as_principal(system, principal: str) -> KafkaConfig:
    return system.kafka_security.config(system.bootstrap, principal, KAFKA_TOPIC=system.topic,
                                        KAFKA_CONSUMER_GROUP=system.group)


def produce(config: KafkaConfig, topic: str) -> None:
    """One record, acks=all. Not idempotent: a principal with no WRITE anywhere would be refused the producer id
    first (ClusterAuthorizationFailed); this way the answer is about the topic. (web's own producer is idempotent:
    its WRITE on the topic implies it, test_the_whole_pipeline shows.)"""
    producer = KafkaProducer(**config.client_options(), acks="all", enable_idempotence=False, max_block_ms=5000)
    try:
        producer.send(topic, key=b"u", value=b'{"not": "a purchase"}').get(timeout=10)
    finally:
        producer.close(1)


def consume(config: KafkaConfig) -> None:
    consumer = KafkaConsumer(config.topic, **config.client_options(), group_id=config.consumer_group,
                             auto_offset_reset="earliest", consumer_timeout_ms=5000)
    try:
        consumer.poll(timeout_ms=5000)
        list(consumer)
    finally:
        consumer.close()


def test_a_client_without_credentials_or_with_wrong_ones_is_refused(secure_system):
    anonymous = KafkaConfig(bootstrap_servers=secure_system.bootstrap, topic=secure_system.topic)
    with pytest.raises(KafkaError):
        ensure_topics(anonymous, connect_timeout_s=5)  # plaintext against a SASL listener: no answer it understands
    wrong = KafkaConfig.from_env({**secure_system.kafka_security.client_env("web"), "KAFKA_SASL_PASSWORD": "guess",
                                  "KAFKA_BOOTSTRAP_SERVERS": secure_system.bootstrap})
    with pytest.raises(KafkaError):  # kafka-python: the broker hangs up, so it cannot bootstrap
        produce(wrong, secure_system.topic)
    log = secure_system.kafka.log_path.read_text()
    assert "Failed authentication" in log and "invalid credentials" in log, "the broker says why it hung up"


def test_web_may_write_purchases_and_describe_the_group_but_not_read(secure_system):
    web = as_principal(secure_system, "web")
    produce(web, secure_system.topic)
    assert LagReader(web).read().total == 1  # the lag it exports: the group described, the topic's ends listed
    with pytest.raises((TopicAuthorizationFailedError, GroupAuthorizationFailedError)):
        consume(web)
    with pytest.raises(TopicAuthorizationFailedError):
        produce(web, secure_system.dead_letter_topic)


def test_api_may_read_commit_and_dead_letter_but_not_write_purchases(secure_system):
    api = as_principal(secure_system, "api")
    produce(as_principal(secure_system, "web"), secure_system.topic)
    consume(api)  # reads, joins its group
    produce(api, secure_system.dead_letter_topic)
    with pytest.raises(TopicAuthorizationFailedError):
        produce(api, secure_system.topic)


def test_the_topics_principal_creates_the_topics_and_keda_describes_and_neither_may_write(secure_system):
    topics = as_principal(secure_system, "topics")
    assert ensure_topics(topics) == []  # they exist: the answer says so, no error
    keda = as_principal(secure_system, "keda")
    assert LagReader(keda).read().partitions.keys() == set(range(8))
    for config in (topics, keda):
        with pytest.raises(TopicAuthorizationFailedError):
            produce(config, secure_system.topic)


def test_the_whole_pipeline_with_credentials_stores_every_purchase_once(secure_system):
    """web and api each as their own principal (System starts them with theirs), keyed traffic through web."""
    secure_system.start_api()
    secure_system.start_web()
    with Traffic(secure_system.web_url, rate=100, run=f"sasl-{int(time.time())}") as traffic:
        time.sleep(5)
    accounting = account(secure_system.web_url, traffic.requests, secure_system.stored_ids)
    print(f"\nthrough SASL and ACLs: {accounting.line()}")
    assert accounting.sent >= 400 and accounting.accepted == accounting.sent
    assert (accounting.lost, accounting.unexpected) == ([], [])
    assert "SASL_PLAINTEXT" in secure_system.api.env["KAFKA_SECURITY_PROTOCOL"]
    assert secure_system.api.env["KAFKA_SASL_USERNAME"] == "purchase-api"
    assert secure_system.web.env["KAFKA_SASL_USERNAME"] == "purchase-web"
