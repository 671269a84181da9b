"""Phase `history`: reads of one user's history with 100,000 stored, through the api, beside a raw pymongo find on
the same server (the ceiling), and that find without the local stack's GIN index."""

from __future__ import annotations

import datetime
import random
import time

import pymongo
import requests

from scripts.stack.service import Names
from scripts.stack.system import System
from services.api.store import INDEX
from services.core.purchase import Order, new_purchase, purchase_id, to_document, utc_now

from .measure import QUIET, say


def bench_history(system: System, count: int, per_user: int = 10, reads: int = 400) -> dict:
    """History reads with `count` stored purchases, `per_user` each: the api's GET /api/purchases/{userId}, beside
    the same query as a raw pymongo find on the same server (the ceiling), and that find without the local
    stack's GIN index (scripts/stack/postgres.py), to show what the index is worth."""
    part = system.beside(Names.of("bench_history"), QUIET)
    part.create_topics()
    database = part.names.database
    users = [f"user-{i}" for i in range(max(count // per_user, 1))]
    client = pymongo.MongoClient(part.mongodb_uri)
    collection = client[database]["purchases"]
    collection.create_index(INDEX, name="userId_timestamp")
    say(f"history: storing {count} purchases for {len(users)} users")
    base = utc_now()
    documents = [to_document(new_purchase(Order("bench", users[i % len(users)], 9.99, "lamp"),
                                          purchase_id(users[i % len(users)], None),
                                          base - datetime.timedelta(seconds=i))) for i in range(count)]
    for i in range(0, count, 5000):
        collection.insert_many(documents[i:i + 5000], ordered=False)
    api = part.start_api()
    picks = random.Random(7)
    session = requests.Session()

    def timed(read) -> dict:
        times = []
        for _ in range(reads):
            user = picks.choice(users)
            started = time.perf_counter()
            assert len(read(user)) == min(per_user, 50)
            times.append((time.perf_counter() - started) * 1000)
        times.sort()
        return {"p50_ms": round(times[len(times) // 2], 2), "p99_ms": round(times[int(len(times) * 0.99)], 2)}

    def through_api(user: str) -> list:
        return session.get(f"http://127.0.0.1:{api.port}/api/purchases/{user}?limit=50").json()

    def raw(user: str) -> list:
        return list(collection.find({"userId": user}).sort([("timestamp", -1), ("_id", -1)]).limit(50))

    try:
        say(f"history: {reads} reads through the api, then {reads} raw finds")
        timed(through_api)  # warm-up: connections, FerretDB's prepared statements
        api_reads = timed(through_api)
        ceiling = timed(raw)
        part.mongodb.postgres.sql(f"DROP INDEX {database}.purchases_userid_gin;")
        say(f"history: {reads} raw finds without the GIN index")
        without = timed(raw)
    finally:
        part.stop()
        client.close()
    return {"stored": count, "users": len(users), "per_user": per_user, "api_p50_ms": api_reads["p50_ms"],
            "api_p99_ms": api_reads["p99_ms"], "ceiling_p50_ms": ceiling["p50_ms"],
            "ceiling_p99_ms": ceiling["p99_ms"], "no_gin_p50_ms": without["p50_ms"], "no_gin_p99_ms": without["p99_ms"]}
