"""What tests look at: their slice of the system with its inspection helpers, keyed buys and traffic, waiting.

The system itself starts through scripts/stack/system.py, as `make dev` and `make bench` start it."""

from __future__ import annotations

import asyncio
import re
import threading
import time
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pymongo
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import KafkaAdminClient
from kafka.errors import KafkaError

from scripts.stack import system as stack
from scripts.stack.ferretdb import FerretDB
from scripts.stack.kafka import KafkaServer
from scripts.stack.kafka_cluster import KafkaCluster
from scripts.stack.service import Names


def wait_until(predicate: Callable[[], Any], timeout: float, what: str, interval: float = 0.1) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


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
        consumer = KafkaConsumer(bootstrap_servers=self.kafka.bootstrap)
        try:
            partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic)]
            return sum(consumer.end_offsets(partitions).values())
        finally:
            consumer.close()

    def committed_total(self) -> int:
        admin = KafkaAdminClient(bootstrap_servers=self.kafka.bootstrap)
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
        admin = KafkaAdminClient(bootstrap_servers=self.kafka.bootstrap)
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
        consumer = KafkaConsumer(self.dead_letter_topic, bootstrap_servers=self.kafka.bootstrap,
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
        producer = KafkaProducer(bootstrap_servers=self.kafka.bootstrap, acks="all")
        try:
            for future in [producer.send(self.topic, key=key, value=value) for key, value in records]:
                future.get(timeout=10)
        finally:
            producer.close()


def sanitize(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:60]


# -- HTTP traffic -------------------------------------------------------------------------------------

def buy_body(user_id: str, price: float = 9.99, username: str = "tester") -> dict[str, Any]:
    return {"username": username, "userId": user_id, "price": price}


async def _post_all(url: str, bodies: list[dict], concurrency: int, headers: list[dict] | None) -> list:
    semaphore = asyncio.Semaphore(concurrency)
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        async def one(i: int, body: dict):
            async with semaphore:
                try:
                    async with session.post(f"{url}/api/buy", json=body,
                                            headers=(headers[i] if headers else None)) as response:
                        return response.status, await response.json()
                except aiohttp.ClientError as exc:
                    return None, repr(exc)
        return await asyncio.gather(*(one(i, body) for i, body in enumerate(bodies)))


def post_buys(url: str, bodies: list[dict], concurrency: int = 50, headers: list[dict] | None = None) -> list:
    """POST every body to web's /api/buy; returns (status, JSON answer) per body, in order."""
    return asyncio.run(_post_all(url, bodies, concurrency, headers))


@contextmanager
def traffic(url: str, users: int, burst: int = 20, pause_s: float = 0.0):
    """Bursts of `burst` buys (20 at once) for `users` users, again and again until the block ends.
    Yields the list that collects (status, answer) for every buy."""
    results: list = []
    stop = threading.Event()

    def send() -> None:
        i = 0
        while not stop.is_set():
            results.extend(post_buys(url, [buy_body(f"user-{(i + k) % users}") for k in range(burst)], 20))
            i += burst
            time.sleep(pause_s)

    sender = threading.Thread(target=send)
    sender.start()
    try:
        yield results
    finally:
        stop.set()
        sender.join()


def accepted_ids(results: list) -> list[str]:
    return [answer["id"] for status, answer in results if status == 202]
