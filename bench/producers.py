"""Phase `producers`: what producing one purchase costs through kafka-python (the design's client, web's) and through
aiokafka (asyncio-native, C-accelerated record batches), on the same broker, the same topic and the same events,
both with acks=all and idempotence, each in a process of its own pinned to one core. Alternately, twice each.

A run sends `count` real purchase events (web's wire format), keyed by user as web keys them, as fast as the client
takes them, then waits for every acknowledgement: records a second, and CPU µs a record (the process's user and
system time: its I/O thread and event loop alike). `python -m bench.producers CLIENT BOOTSTRAP TOPIC COUNT` is one
run, printing JSON.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time

from scripts.stack.service import Names
from scripts.stack.system import System
from services.core.purchase import Order, encode_event, new_purchase, purchase_id, utc_now

from .measure import python_json, say

CLIENTS = ("kafka_python", "aiokafka")


def events(count: int) -> list[tuple[bytes, bytes]]:
    made = []
    for i in range(count):
        user = f"user-{i % 1000}"
        made.append((user.encode(), encode_event(
            new_purchase(Order("bench", user, 9.99, None), purchase_id(user, f"k{i}"), utc_now()))))
    return made


def with_kafka_python(bootstrap: str, topic: str, records: list[tuple[bytes, bytes]]) -> None:
    from kafka import KafkaProducer

    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True, linger_ms=2)
    futures = [producer.send(topic, key=key, value=value) for key, value in records]
    producer.flush()
    assert all(f.succeeded() for f in futures)
    producer.close()


def with_aiokafka(bootstrap: str, topic: str, records: list[tuple[bytes, bytes]]) -> None:
    from aiokafka import AIOKafkaProducer

    async def produce() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True, linger_ms=2)
        await producer.start()
        try:
            futures = [await producer.send(topic, key=key, value=value) for key, value in records]
            await producer.flush()
            await asyncio.gather(*futures)
        finally:
            await producer.stop()
    asyncio.run(produce())


def one_run(client: str, bootstrap: str, topic: str, count: int) -> dict:
    os.sched_setaffinity(0, {0})  # one core
    records = events(count)
    produce = with_kafka_python if client == "kafka_python" else with_aiokafka
    produce(bootstrap, topic, records[:1000])  # connected, metadata fetched, warm
    cpu, wall = time.process_time(), time.monotonic()
    produce(bootstrap, topic, records)
    cpu, wall = time.process_time() - cpu, time.monotonic() - wall
    return {"client": client, "records": count, "records_per_s": round(count / wall),
            "cpu_us_per_record": round(cpu / count * 1e6, 1)}


def bench_producers(system: System, count: int) -> dict:
    part = system.beside(Names.of("bench_producers"), {})
    part.create_topics()
    runs: dict[str, list[dict]] = {client: [] for client in CLIENTS}
    for client in (*CLIENTS, *CLIENTS):
        say(f"producers: {count} purchases through {client} (acks=all, idempotent, one core)")
        runs[client].append(python_json("-m", "bench.producers", client, part.bootstrap, part.names.topic, str(count)))
    best = {client: max(results, key=lambda r: r["records_per_s"]) for client, results in runs.items()}
    return {"count": count, **{f"{client}_records_per_s": best[client]["records_per_s"] for client in CLIENTS},
            **{f"{client}_cpu_us_per_record": min(r["cpu_us_per_record"] for r in runs[client]) for client in CLIENTS},
            "runs": runs}


if __name__ == "__main__":
    print(json.dumps(one_run(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]))))
