"""`python -m services.api.topics`, run as the chart's topics Job and Tilt's `topics` resource run it."""

import os
import subprocess
import sys
import time

from kafka import KafkaConsumer

from scripts.stack.paths import ROOT


def run_topics_job(kafka, topic: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": kafka.address, "KAFKA_TOPIC": topic,
           "TOPIC_PARTITIONS": "8", "TOPIC_REPLICATION_FACTOR": "1", "TOPIC_WAIT_S": "60", "LOG_LEVEL": "INFO"}
    return subprocess.run([sys.executable, "-m", "services.api.topics"], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=120)


def test_the_topics_job_creates_both_topics_and_exits_0_and_again_0_when_they_exist(kafka):
    first = run_topics_job(kafka, "purchases-topics-job")
    assert first.returncode == 0, first.stdout + first.stderr
    assert '"topics ready"' in first.stdout and "purchases-topics-job.dlq" in first.stdout
    consumer = KafkaConsumer(bootstrap_servers=kafka.address)
    try:
        assert len(consumer.partitions_for_topic("purchases-topics-job")) == 8
        assert len(consumer.partitions_for_topic("purchases-topics-job.dlq")) == 1
    finally:
        consumer.close()

    again = run_topics_job(kafka, "purchases-topics-job")  # a new Job per chart revision
    assert again.returncode == 0, again.stdout + again.stderr
    assert '"created_topics": []' in again.stdout


def test_the_topics_job_gives_up_after_topic_wait_s_and_exits_1_when_kafka_is_unreachable():
    env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1", "TOPIC_WAIT_S": "2"}
    started = time.monotonic()
    result = subprocess.run([sys.executable, "-m", "services.api.topics"], env=env, cwd=ROOT,
                            capture_output=True, text=True, timeout=60)
    took = time.monotonic() - started
    assert result.returncode == 1 and "kafka not reachable; topics not created" in result.stdout
    assert took < 12, f"took {took:.1f}s: kafka-python's own 30 s bootstrap wait should be bounded by TOPIC_WAIT_S"
