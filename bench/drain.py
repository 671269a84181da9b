"""Phase `drain`: the api storing 100,000 pre-produced events beside a raw bulk insert of the same documents into
a collection with the same index (the ceiling)."""

from __future__ import annotations

import time

import pymongo
from kafka import KafkaProducer

from scripts.stack.service import Names
from scripts.stack.system import System
from services.api.store import INDEX
from services.common.lag import LagReader
from services.core.config import ApiConfig
from services.core.purchase import Order, decode_event, encode_event, new_purchase, purchase_id, to_document, utc_now

from .measure import QUIET, say


def produce(part: System, count: int) -> list[tuple[bytes, bytes]]:
    """`count` purchases' events on the part's topic (1,000 users); the (key, value) of each."""
    producer = KafkaProducer(bootstrap_servers=part.bootstrap, acks="all", linger_ms=20, batch_size=256 * 1024)
    events = []
    for i in range(count):
        user = f"user-{i % 1000}"
        events.append((user.encode(), encode_event(
            new_purchase(Order("bench", user, 9.99, "lamp"), purchase_id(user, None), utc_now()))))
    for key, value in events:
        producer.send(part.names.topic, key=key, value=value)
    producer.flush()
    producer.close()
    return events


def api_drain_rate(part: System, count: int, module: str | None = None) -> tuple[float, float]:
    """(documents stored a second, seconds) for an api (or a variant `module`) draining the part's `count` events.
    The clock starts at the first committed batch: the api's start-up and group join are not storage."""
    reader = LagReader.at(part.bootstrap, part.names.group, part.names.topic)
    part.start_api(module=module)
    try:
        while (first := reader.read().total) == count:
            time.sleep(0.02)
        started = time.monotonic()
        while reader.read().total > 0:
            time.sleep(0.05)
        drain_s = time.monotonic() - started
    finally:
        reader.close()
        part.stop()
    return first / drain_s, drain_s


def raw_insert_rate(part: System, events: list[tuple[bytes, bytes]]) -> tuple[float, float]:
    """(documents a second, seconds) for raw bulk inserts of the same documents, in the api's batch size, into a
    collection with the storage contract's index."""
    client = pymongo.MongoClient(part.mongodb_uri)
    collection = client[f"{part.names.database}_ceiling"]["purchases"]
    collection.create_index(INDEX, name="userId_timestamp")
    documents = [to_document(decode_event(value)) for _, value in events]
    batch = ApiConfig.from_env().batch_size  # the api's own batch size (CONSUMER_BATCH_SIZE)
    started = time.monotonic()
    for i in range(0, len(documents), batch):
        collection.insert_many(documents[i:i + batch], ordered=False)
    raw_s = time.monotonic() - started
    client.close()
    return len(documents) / raw_s, raw_s


def bench_drain(system: System, count: int) -> dict:
    part = system.beside(Names.of("bench_drain"), QUIET)
    part.create_topics()
    say(f"drain: producing {count} events")
    events = produce(part, count)
    say("drain: the api consuming and storing them")
    docs_per_s, drain_s = api_drain_rate(part, count)
    say("drain: ceiling (raw bulk inserts of the same documents, in the api's batch size, same index)")
    ceiling, raw_s = raw_insert_rate(part, events)
    return {"events": count, "docs_per_s": round(docs_per_s), "ceiling_docs_per_s": round(ceiling),
            "ratio": round(docs_per_s / ceiling, 3), "drain_s": round(drain_s, 2), "ceiling_s": round(raw_s, 2)}
