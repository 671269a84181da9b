"""What tests look at: their slice of the system with its inspection helpers, and a test's names in it.

The system itself starts through scripts/stack/system.py, as `make dev` and `make bench` start it; traffic and its
accounting come from scripts/loadgen (keyed.py, accounting.py)."""

from __future__ import annotations

import hashlib
import re
import time
from pathlib import Path
from typing import Any

import pymongo
import requests
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import KafkaAdminClient
from kafka.errors import KafkaError
from prometheus_client.parser import text_string_to_metric_families

from scripts.stack import system as stack
from scripts.stack.ferretdb import FerretDB
from scripts.stack.kafka import KafkaServer
from scripts.stack.kafka_cluster import KafkaCluster
from scripts.stack.service import Names


def samples(metrics_url: str, name: str) -> list[tuple[dict[str, str], float]]:
    """The samples of one metric a service exports now: (labels, value) each, parsed by prometheus-client."""
    text = requests.get(metrics_url, timeout=5).text
    return [(sample.labels, sample.value) for family in text_string_to_metric_families(text)
            for sample in family.samples if sample.name == name]



class System(stack.System):
    """One test's private slice of the stack (its own topic, group and database, on the session's Kafka and
    FerretDB; scripts/stack/system.py starts its services), and what a test looks at afterwards."""

    def __init__(self, name: str, kafka: KafkaServer | KafkaCluster, ferretdb: FerretDB, workdir: Path,
                 extra_env: dict[str, str] | None = None) -> None:
        super().__init__(workdir, kafka, ferretdb, Names.of(name), extra_env)
        self.create_topics()
        self.mongo = pymongo.MongoClient(self.mongodb_uri, serverSelectionTimeoutMS=3000)

    @property
    def ferretdb(self) -> FerretDB:
        return self.mongodb

    @property
    def topic(self) -> str:
        return self.names.topic

    @property
    def dead_letter_topic(self) -> str:
        return self.names.dead_letter_topic

    @property
    def group(self) -> str:
        return self.names.group

    @property
    def database(self) -> str:
        return self.names.database

    def stop(self) -> None:
        super().stop()
        self.mongo.close()

    # -- looking at what happened --------------------------------------------------------------------

    @property
    def collection(self):
        return self.mongo[self.database]["purchases"]

    def stored_ids(self) -> list[str]:
        return [doc["_id"] for doc in self.collection.find({}, {"_id": 1})]

    def stored_ids_for(self, user_id: str) -> list[str]:
        return [doc["_id"] for doc in self.collection.find({"userId": user_id}, {"_id": 1})]

    def log(self, service: str) -> str:
        return (self.workdir / f"{service}.log").read_text()

    def end_offset_total(self, topic: str | None = None) -> int:
        topic = topic or self.topic
        consumer = KafkaConsumer(bootstrap_servers=self.kafka.address)
        try:
            partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic)]
            return sum(consumer.end_offsets(partitions).values())
        finally:
            consumer.close()

    def committed_total(self) -> int:
        admin = KafkaAdminClient(bootstrap_servers=self.kafka.address)
        try:
            offsets = admin.list_group_offsets(self.group)[self.group]
            return sum(meta.offset for tp, meta in offsets.items() if tp.topic == self.topic and meta.offset > 0)
        except KafkaError as exc:
            if exc.retriable:  # e.g. the group coordinator of a fresh broker is still being created
                return -1
            raise
        finally:
            admin.close()

    def _group(self) -> dict:
        admin = KafkaAdminClient(bootstrap_servers=self.kafka.address)
        try:
            return admin.describe_groups([self.group])[self.group]
        finally:
            admin.close()

    def group_members(self) -> list[str]:
        return sorted(member["member_id"] for member in self._group()["members"])

    def group_settled(self, members: int) -> bool:
        """The group has `members` members and its rebalance is over: each holds its partitions."""
        description = self._group()
        return description["group_state"] == "Stable" and len(description["members"]) == members

    def dead_letters(self, expected: int, timeout: float = 20) -> list:
        consumer = KafkaConsumer(self.dead_letter_topic, bootstrap_servers=self.kafka.address,
                                 auto_offset_reset="earliest", group_id=None, consumer_timeout_ms=1000)
        found: list = []
        deadline = time.monotonic() + timeout
        try:
            while len(found) < expected and time.monotonic() < deadline:
                for records in consumer.poll(timeout_ms=500).values():
                    found.extend(records)
            return found
        finally:
            consumer.close()

    def produce_raw(self, records: list[tuple[bytes | None, bytes | None]]) -> None:
        producer = KafkaProducer(bootstrap_servers=self.kafka.address, acks="all")
        try:
            for future in [producer.send(self.topic, key=key, value=value) for key, value in records]:
                future.get(timeout=10)
        finally:
            producer.close()


def sanitize(name: str, most: int = 60) -> str:
    """A test's name as a topic, group and database name: at most `most` characters, and two names never the same
    (a long one is cut and given its hash: a parametrized test's cases differ only at the end)."""
    cleaned = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
    if len(cleaned) <= most:
        return cleaned
    return f"{cleaned[:most - 9]}-{hashlib.sha1(name.encode()).hexdigest()[:8]}"


# -- HTTP traffic -------------------------------------------------------------------------------------

def buy_body(user_id: str, price: float = 9.99, username: str = "tester") -> dict[str, Any]:
    return {"username": username, "userId": user_id, "price": price}
