"""Phase `drain`: the api storing 100,000 pre-produced events beside a raw bulk insert of the same documents into
a collection with the same index (the ceiling)."""

from __future__ import annotations

import time

import pymongo
from kafka import KafkaProducer

from scripts.lag import LagReader
from scripts.stack.service import Names
from scripts.stack.system import System
from services.api.store import INDEX
from services.core.config import ApiConfig
from services.core.purchase import Order, decode_event, encode_event, new_purchase, purchase_id, to_document, utc_now

from .measure import QUIET, say


def bench_drain(system: System, count: int) -> dict:
    part = system.beside(Names.of("bench_drain"), QUIET)
    part.create_topics()
    say(f"drain: producing {count} events")
    producer = KafkaProducer(bootstrap_servers=part.bootstrap, acks="all", linger_ms=20,
                             batch_size=256 * 1024)
    events = []
    for i in range(count):
        user = f"user-{i % 1000}"
        events.append((user.encode(), encode_event(
            new_purchase(Order("bench", user, 9.99, "lamp"), purchase_id(user, None), utc_now()))))
    for key, value in events:
        producer.send(part.names.topic, key=key, value=value)
    producer.flush()
    producer.close()

    say("drain: the api consuming and storing them")
    reader = LagReader(part.bootstrap, part.names.group, part.names.topic)
    part.start_api()
    # The clock starts at the first committed batch: the api's start-up and group join are not storage.
    while (first := reader.read().total) == count:
        time.sleep(0.02)
    started = time.monotonic()
    while reader.read().total > 0:
        time.sleep(0.05)
    drain_s = time.monotonic() - started
    drained = first
    reader.close()
    part.stop()

    say("drain: ceiling (raw bulk inserts of the same documents, in the api's batch size, same index)")
    client = pymongo.MongoClient(part.mongodb_uri)
    collection = client["bench_ceiling"]["purchases"]
    collection.create_index(INDEX, name="userId_timestamp")  # the storage contract's index, as the api has it
    documents = [to_document(decode_event(value)) for _, value in events]
    batch = ApiConfig.from_env().batch_size  # the api's own batch size (CONSUMER_BATCH_SIZE)
    started = time.monotonic()
    for i in range(0, len(documents), batch):
        collection.insert_many(documents[i:i + batch], ordered=False)
    raw_s = time.monotonic() - started
    client.close()
    docs_per_s, ceiling = drained / drain_s, count / raw_s
    return {"events": count, "docs_per_s": round(docs_per_s), "ceiling_docs_per_s": round(ceiling),
            "ratio": round(docs_per_s / ceiling, 3), "drain_s": round(drain_s, 2), "ceiling_s": round(raw_s, 2)}
