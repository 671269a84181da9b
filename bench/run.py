"""`make bench`: how fast each part of the system is, beside a ceiling measured in the same run.

Starts its own Kafka and FerretDB on free loopback ports (so `make dev` may keep running), then measures:

1. web    POST /api/buy peak throughput vs a bare aiohttp handler answering `{}`, with the same client
          (scripts/load.py in its own process); latency at half of web's peak, and at 500/s beside the bare
          handler's at the same rate.
2. drain  the api storing 100,000 pre-produced events vs a raw bulk insert of the same documents into a
          collection with the same index.
3. e2e    at a steady 1,000 purchases/s: the api's accepted-to-stored histogram (a stored purchase is what a
          history read returns), then, in a second run, visibility as load.py --verify observes it through
          history reads.
4. rss    resident memory of web and api under that load.
5. history  reads of one user's history (10 purchases each) with 100,000 stored, through the api, beside a raw pymongo
          find on the same server, and that find without the local stack's GIN index (scripts/postgres.py).

Prints a markdown table and writes bench/results/latest.json. Figures, not a pass/fail test: the machine
is shared and noisy; compare each figure with its ceiling from the same run.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import random
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pymongo
import requests
from kafka import KafkaProducer

from scripts.stack import ROOT, FerretDB, KafkaServer, PythonService, Server, free_port
from services.api.store import INDEX
from services.api.topics import ensure_topics
from services.core.config import ApiConfig, KafkaConfig
from services.core.purchase import Order, decode_event, encode_event, new_purchase, purchase_id, to_document, utc_now

RESULTS = ROOT / "bench" / "results" / "latest.json"
LOAD = [sys.executable, str(ROOT / "scripts" / "load.py"), "--json", "--quiet"]


class Bare(Server):
    name = "bare"

    def command(self) -> list[str]:
        return [sys.executable, "-m", "bench.bare"]

    def __init__(self, data_dir: Path, port: int) -> None:
        super().__init__(data_dir, port)
        self.env = {**os.environ, "PORT": str(port)}


def say(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def load(url: str, *args: str) -> dict:
    result = subprocess.run([*LOAD, "--url", url, *args], capture_output=True, text=True)
    if not result.stdout.strip():
        raise RuntimeError(f"load.py failed: {result.stderr}")
    return json.loads(result.stdout)


def wait_ready(url: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if requests.get(url, timeout=1).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} not ready")


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


class Stack:
    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.kafka = KafkaServer(workdir / "kafka", port=free_port(), heap="1g")
        self.ferretdb = FerretDB(workdir / "ferretdb", port=free_port())
        self.services: list[Server] = []

    def __enter__(self) -> Stack:
        say("starting Kafka and FerretDB")
        self.kafka.start()
        self.ferretdb.start()
        return self

    def __exit__(self, *exc) -> None:
        for server in [*reversed(self.services), self.ferretdb, self.kafka]:
            server.stop()

    def topic(self, name: str) -> dict[str, str]:
        env = {"KAFKA_BOOTSTRAP_SERVERS": self.kafka.bootstrap, "KAFKA_TOPIC": name,
               "KAFKA_CONSUMER_GROUP": f"{name}-group", "MONGODB_URI": self.ferretdb.uri,
               "MONGODB_DATABASE": name.replace("-", "_"), "HOST": "127.0.0.1", "LOG_LEVEL": "WARNING"}
        ensure_topics(KafkaConfig.from_env(env))
        return env

    def service(self, name: str, env: dict[str, str]) -> PythonService:
        service = PythonService(name, self.workdir, free_port(), env)
        service.start()
        self.services.append(service)
        wait_ready(f"http://127.0.0.1:{service.port}/readyz")
        return service

    def stop(self, server: Server) -> None:
        server.stop()
        self.services.remove(server)


# The original system answers a purchase at this rate with p50 0.9 ms: the latency a customer sees on a
# normal day, not at peak.
MODERATE_RPS = 500


def bench_web(stack: Stack, seconds: float) -> dict:
    burst = ["--burst", "1000000", "--duration", str(seconds), "--concurrency", "64", "--users", "200"]
    moderately = ["--rate", str(MODERATE_RPS), "--duration", str(seconds), "--concurrency", "256", "--users", "200"]
    bare = Bare(stack.workdir, free_port())
    bare.start()
    try:
        say("web: ceiling (bare aiohttp handler)")
        load(f"http://127.0.0.1:{bare.port}", "--burst", "2000", "--concurrency", "64")  # warm-up
        ceiling = load(f"http://127.0.0.1:{bare.port}", *burst)
        say(f"web: ceiling's latency at {MODERATE_RPS}/s")
        bare_moderate = load(f"http://127.0.0.1:{bare.port}", *moderately)
    finally:
        bare.stop()
    env = stack.topic("bench-web")
    web = stack.service("web", env)
    try:
        say("web: peak POST /api/buy")
        load(f"http://127.0.0.1:{web.port}", "--burst", "2000", "--concurrency", "64")
        peak = load(f"http://127.0.0.1:{web.port}", *burst)
        half = max(peak["rate"] / 2, 1)
        say(f"web: latency at half of peak ({half:.0f}/s)")
        steady = load(f"http://127.0.0.1:{web.port}", "--rate", str(half), "--duration", str(seconds),
                      "--concurrency", "256", "--users", "200")
        say(f"web: latency at a moderate {MODERATE_RPS}/s")
        moderate = load(f"http://127.0.0.1:{web.port}", *moderately)
    finally:
        stack.stop(web)
    return {
        "rps": peak["rate"], "ceiling_rps": ceiling["rate"], "ratio": round(peak["rate"] / ceiling["rate"], 3),
        "errors": peak["sent"] - peak["accepted"],
        "half_peak_rps": steady["rate"], "p50_ms": steady["latency_ms"]["p50"], "p99_ms": steady["latency_ms"]["p99"],
        "moderate_rps": moderate["rate"], "moderate_p50_ms": moderate["latency_ms"]["p50"],
        "moderate_p99_ms": moderate["latency_ms"]["p99"],
        "ceiling_moderate_p50_ms": bare_moderate["latency_ms"]["p50"],
        "ceiling_moderate_p99_ms": bare_moderate["latency_ms"]["p99"],
    }


def bench_drain(stack: Stack, count: int) -> dict:
    env = stack.topic("bench-drain")
    say(f"drain: producing {count} events")
    producer = KafkaProducer(bootstrap_servers=stack.kafka.bootstrap, acks="all", linger_ms=20,
                             batch_size=256 * 1024)
    events = []
    for i in range(count):
        user = f"user-{i % 1000}"
        events.append((user.encode(), encode_event(
            new_purchase(Order("bench", user, 9.99, "lamp"), purchase_id(user, None), utc_now()))))
    for key, value in events:
        producer.send(env["KAFKA_TOPIC"], key=key, value=value)
    producer.flush()
    producer.close()

    say("drain: the api consuming and storing them")
    from scripts.lag import LagReader

    reader = LagReader(stack.kafka.bootstrap, env["KAFKA_CONSUMER_GROUP"], env["KAFKA_TOPIC"])
    api = stack.service("api", env)
    # The clock starts at the first committed batch: the api's start-up and group join are not storage.
    while (first := reader.read().total) == count:
        time.sleep(0.02)
    started = time.monotonic()
    while reader.read().total > 0:
        time.sleep(0.05)
    drain_s = time.monotonic() - started
    drained = first
    reader.close()
    stack.stop(api)

    say("drain: ceiling (raw bulk inserts of the same documents, in the api's batch size, same index)")
    client = pymongo.MongoClient(stack.ferretdb.uri)
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


def bench_e2e(stack: Stack, rate: int, seconds: float) -> tuple[dict, dict]:
    """Two runs at `rate`/s: one measured by the api's own histogram (accepted -> stored, which is when a
    history read can see it), one verified by load.py polling the history, as a client sees it."""
    peaks = {"web": 0.0, "api": 0.0}
    e2e = {}
    for verified in (False, True):
        env = stack.topic("bench-e2e-verified" if verified else "bench-e2e")
        api = stack.service("api", env)
        web = stack.service("web", {**env, "API_URL": f"http://127.0.0.1:{api.port}"})
        sampling = threading.Event()

        def sample(sampling=sampling, services=(("web", web), ("api", api))) -> None:
            while not sampling.is_set():
                for name, service in services:
                    peaks[name] = max(peaks[name], rss_mib(service.process.pid))
                time.sleep(0.25)

        sampler = threading.Thread(target=sample)
        sampler.start()
        try:
            verifying = ", verifying through history reads" if verified else ""
            say(f"e2e: {rate} purchases/s for {seconds:.0f} s{verifying}")
            args = ["--rate", str(rate), "--duration", str(seconds), "--concurrency", "256", "--users", "20"]
            result = load(f"http://127.0.0.1:{web.port}", *args, *(["--verify"] if verified else []))
            time.sleep(1)
            metrics = requests.get(f"http://127.0.0.1:{api.port}/metrics", timeout=5).text
        finally:
            sampling.set()
            sampler.join()
            stack.stop(web)
            stack.stop(api)
        if verified:
            e2e.update({"missing": result["verify"]["missing"], "duplicated": result["verify"]["duplicated"],
                        "visible_p50_ms": result["verify"]["visible_ms"]["p50"],
                        "visible_p99_ms": result["verify"]["visible_ms"]["p99"]})
        else:
            stored = histogram_quantiles(metrics, "purchase_accepted_to_stored_seconds")
            e2e.update({"rate": result["rate"], "accepted": result["accepted"],
                        "stored_p50_ms": stored.get(0.5), "stored_p99_ms": stored.get(0.99),
                        "post_p50_ms": result["latency_ms"]["p50"], "post_p99_ms": result["latency_ms"]["p99"]})
    return e2e, {"web": round(peaks["web"], 1), "api": round(peaks["api"], 1)}


def bench_history(stack: Stack, count: int, per_user: int = 10, reads: int = 400) -> dict:
    """History reads with `count` stored purchases, `per_user` each: the api's GET /api/purchases/{userId}, beside
    the same query as a raw pymongo find on the same server (the ceiling), and that find without the local
    stack's GIN index (scripts/postgres.py), to show what the index is worth."""
    env = stack.topic("bench-history")
    users = [f"user-{i}" for i in range(max(count // per_user, 1))]
    client = pymongo.MongoClient(stack.ferretdb.uri)
    collection = client[env["MONGODB_DATABASE"]]["purchases"]
    collection.create_index(INDEX, name="userId_timestamp")
    say(f"history: storing {count} purchases for {len(users)} users")
    base = utc_now()
    documents = [to_document(new_purchase(Order("bench", users[i % len(users)], 9.99, "lamp"),
                                          purchase_id(users[i % len(users)], None),
                                          base - datetime.timedelta(seconds=i))) for i in range(count)]
    for i in range(0, count, 5000):
        collection.insert_many(documents[i:i + 5000], ordered=False)
    api = stack.service("api", env)
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
        stack.ferretdb.postgres.sql(f"DROP INDEX {env['MONGODB_DATABASE']}.purchases_userid_gin;")
        say(f"history: {reads} raw finds without the GIN index")
        without = timed(raw)
    finally:
        stack.stop(api)
        client.close()
    return {"stored": count, "users": len(users), "per_user": per_user, "api_p50_ms": api_reads["p50_ms"],
            "api_p99_ms": api_reads["p99_ms"], "ceiling_p50_ms": ceiling["p50_ms"],
            "ceiling_p99_ms": ceiling["p99_ms"], "no_gin_p50_ms": without["p50_ms"], "no_gin_p99_ms": without["p99_ms"]}


def histogram_quantiles(metrics: str, name: str) -> dict[float, float]:
    """Upper bucket bounds (ms) holding the 50th and 99th percentiles of a Prometheus histogram."""
    buckets = []
    for line in metrics.splitlines():
        if line.startswith(f"{name}_bucket"):
            bound = line.split('le="')[1].split('"')[0]
            buckets.append((float("inf") if bound == "+Inf" else float(bound), float(line.rsplit(" ", 1)[1])))
    if not buckets or buckets[-1][1] == 0:
        return {}
    total = buckets[-1][1]
    return {q: next(round(bound * 1000, 1) for bound, n in buckets if n >= q * total) for q in (0.5, 0.99)}


def machine() -> dict:
    model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), platform.processor())
    return {"cores": os.cpu_count(), "cpu": model, "python": platform.python_version(),
            "kafka": "4.1.1 (one KRaft node)", "database": "FerretDB 1.24.2 on PostgreSQL"}


def table(results: dict) -> str:
    w, d, e, r, h = results["web"], results["drain"], results["e2e"], results["rss_mib"], results["history"]
    rows = [
        ("web POST /api/buy", f"{w['rps']:.0f} req/s", f"{w['ceiling_rps']:.0f} req/s (bare aiohttp)",
         f"{w['ratio']:.0%}", ">= 50%"),
        (f"web latency at {w['half_peak_rps']:.0f} req/s", f"p50 {w['p50_ms']} ms, p99 {w['p99_ms']} ms", "", "",
         "p99 <= 20 ms"),
        (f"web latency at {w['moderate_rps']:.0f} req/s", f"p50 {w['moderate_p50_ms']} ms, "
         f"p99 {w['moderate_p99_ms']} ms",
         f"p50 {w['ceiling_moderate_p50_ms']} ms, p99 {w['ceiling_moderate_p99_ms']} ms (bare aiohttp)", "",
         "p50 <= 1.5 ms"),
        ("api drain of 100k events", f"{d['docs_per_s']} docs/s", f"{d['ceiling_docs_per_s']} docs/s (raw insert)",
         f"{d['ratio']:.0%}", ">= 70%"),
        (f"purchase to stored (= readable) at {e['rate']:.0f}/s, api histogram",
         f"p50 <= {e['stored_p50_ms']} ms, p99 <= {e['stored_p99_ms']} ms", "", "", "p99 <= 250 ms"),
        (f"purchase to visible in history reads at {e['rate']:.0f}/s, load.py --verify",
         f"p50 {e['visible_p50_ms']} ms, p99 {e['visible_p99_ms']} ms; missing {e['missing']}, "
         f"duplicated {e['duplicated']}", "", "", "p99 <= 250 ms"),
        (f"history read, {h['stored'] // 1000}k stored ({h['per_user']} per user), api GET /api/purchases/{{userId}}",
         f"p50 {h['api_p50_ms']} ms, p99 {h['api_p99_ms']} ms",
         f"p50 {h['ceiling_p50_ms']} ms, p99 {h['ceiling_p99_ms']} ms (raw find)", "", "p99 <= 20 ms"),
        ("the same raw find without the GIN index", f"p50 {h['no_gin_p50_ms']} ms, p99 {h['no_gin_p99_ms']} ms",
         "", "", ""),
        ("resident memory under load", f"web {r['web']} MiB, api {r['api']} MiB", "", "",
         "web <= 60, api <= 80 MiB"),
    ]
    lines = ["| measure | figure | ceiling, same run | ratio | target |", "| --- | --- | --- | --- | --- |"]
    lines += [f"| {' | '.join(row)} |" for row in rows]
    m = results["machine"]
    lines.append(f"\n{m['cores']} cores, {m['cpu']}, Python {m['python']}; Kafka {m['kafka']}, {m['database']}.")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=10, help="length of each timed phase")
    parser.add_argument("--events", type=int, default=100_000, help="events for the drain phase")
    parser.add_argument("--rate", type=int, default=1000, help="purchases/s for the e2e phase")
    parser.add_argument("--stored", type=int, default=100_000, help="purchases stored for the history-read phase")
    parser.add_argument("--per-user", type=int, default=10, help="of those, purchases per user (PostgreSQL orders a "
                        "user's whole history for each read: the cost grows with it, not with the collection)")
    parser.add_argument("--only", choices=["web", "drain", "e2e", "history"],
                        help="one phase (prints JSON, keeps latest.json)")
    args = parser.parse_args()
    os.chdir(ROOT)
    phases = {
        "web": lambda stack: {"web": bench_web(stack, args.seconds)},
        "drain": lambda stack: {"drain": bench_drain(stack, args.events)},
        "e2e": lambda stack: dict(zip(("e2e", "rss_mib"), bench_e2e(stack, args.rate, args.seconds), strict=True)),
        "history": lambda stack: {"history": bench_history(stack, args.stored, args.per_user)},
    }
    results: dict = {}
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp, Stack(Path(tmp)) as stack:
        for name, phase in phases.items():
            if args.only in (None, name):
                results.update(phase(stack))
    if args.only:
        print(json.dumps(results, indent=2))
        return 0
    results["machine"] = machine()
    results["when"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(table(results))
    say(f"wrote {RESULTS.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
