"""`make soak`: the whole system at a steady rate for a long while (30 minutes by default), watched for drift.

    python -m bench.soak [--minutes 30] [--rate 200] [--reads 20]

Starts its own Kafka and FerretDB (like `make bench`), api and web, then sends `--rate` keyed buys a second,
open loop, and `--reads` history reads a second. Every 10 s it samples RSS and open descriptors of web and api,
the consumer group's lag, p50/p99 of the buys and reads answered in those 10 s, and their 503 rate. At the end:
every accepted purchase is looked up in the store (each must be there exactly once), each figure's drift from
the first five minutes to the last five, a plot (bench/results/soak.png) and bench/results/soak.json.

A benchmark, not a test: it prints figures; only a lost or duplicated purchase makes it exit 1.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

from scripts.lag import LagReader
from scripts.stack.ferretdb import FerretDB
from scripts.stack.kafka import KafkaServer
from scripts.stack.process import ROOT, free_port
from scripts.stack.system import System

from .measure import QUIET, rss_mib, say

RESULTS = ROOT / "bench" / "results"
SAMPLE_S = 10.0
EDGE_S = 300.0  # the first and last five minutes, compared


@dataclass
class Answer:
    at: float  # when it was sent (monotonic)
    ms: float
    status: int | None


@dataclass
class Soak:
    buys: list[Answer] = field(default_factory=list)
    reads: list[Answer] = field(default_factory=list)
    accepted: list[str] = field(default_factory=list)
    samples: list[dict] = field(default_factory=list)


def open_descriptors(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def quantiles(answers: list[Answer]) -> dict:
    ms = sorted(a.ms for a in answers if a.status == 200 or a.status == 202)
    if not ms:
        return {"p50_ms": None, "p99_ms": None}
    return {"p50_ms": round(ms[len(ms) // 2], 2), "p99_ms": round(ms[min(len(ms) - 1, int(len(ms) * 0.99))], 2)}


async def open_loop(rate: float, seconds: float, one) -> None:
    """`one()` `rate` times a second for `seconds`, each in its own task (a slow answer delays nothing)."""
    started, tasks, i = time.monotonic(), set(), 0
    while (now := time.monotonic()) < started + seconds:
        task = asyncio.ensure_future(one(i))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
        i += 1
        await asyncio.sleep(max(0.0, started + i / rate - now))
    if tasks:
        await asyncio.wait(tasks)


async def drive(system: System, soak: Soak, minutes: float, rate: float, reads: float, users: int) -> None:
    run = uuid.uuid4().hex[:8]
    url = system.web_url

    async def buy(i: int) -> None:
        body = {"username": "soak", "userId": f"soak-{run}-{i % users}", "price": 1 + i % 100}
        sent = time.monotonic()
        try:
            async with session.post(f"{url}/api/buy", json=body, headers={"Idempotency-Key": f"{run}-{i}"}) as r:
                answer = await r.json(content_type=None)
                status = r.status
        except (TimeoutError, aiohttp.ClientError, ValueError):
            status, answer = None, None
        soak.buys.append(Answer(sent, (time.monotonic() - sent) * 1000, status))
        if status == 202:
            soak.accepted.append(answer["id"])

    async def read(i: int) -> None:
        sent = time.monotonic()
        try:
            async with session.get(f"{url}/api/user/soak-{run}-{i % users}/purchases", params={"limit": "20"}) as r:
                await r.read()
                status = r.status
        except (TimeoutError, aiohttp.ClientError):
            status = None
        soak.reads.append(Answer(sent, (time.monotonic() - sent) * 1000, status))

    async def sample(reader: LagReader, origin: float, until: asyncio.Event) -> None:
        loop = asyncio.get_running_loop()
        while not until.is_set():
            try:
                await asyncio.wait_for(until.wait(), SAMPLE_S)
            except TimeoutError:
                pass
            now = time.monotonic()
            window = [a for a in soak.buys if now - SAMPLE_S <= a.at < now]
            read_window = [a for a in soak.reads if now - SAMPLE_S <= a.at < now]
            lag = await loop.run_in_executor(None, reader.read)
            sample = {
                "t_s": round(now - origin, 1),
                "web_rss_mib": round(rss_mib(system.web.process.pid), 1),
                "api_rss_mib": round(rss_mib(system.api.process.pid), 1),
                "web_fds": open_descriptors(system.web.process.pid),
                "api_fds": open_descriptors(system.api.process.pid),
                "lag": lag.total,
                "buys": len(window),
                "buy_503_rate": round(sum(a.status == 503 for a in window) / max(len(window), 1), 4),
                **{f"buy_{k}": v for k, v in quantiles(window).items()},
                **{f"read_{k}": v for k, v in quantiles(read_window).items()},
            }
            soak.samples.append(sample)
            say(f"soak {sample['t_s']:>6.0f}s  rss web {sample['web_rss_mib']} api {sample['api_rss_mib']} MiB  "
                f"fds {sample['web_fds']}/{sample['api_fds']}  lag {sample['lag']}  buy p50 "
                f"{sample['buy_p50_ms']} p99 {sample['buy_p99_ms']} ms  read p99 {sample['read_p99_ms']} ms  "
                f"503 {sample['buy_503_rate']:.2%}")

    reader = LagReader(system.bootstrap, system.names.group, system.names.topic)
    timeout = aiohttp.ClientTimeout(total=15)
    try:
        async with aiohttp.ClientSession(timeout=timeout, connector=aiohttp.TCPConnector(limit=0)) as session:
            done = asyncio.Event()
            sampler = asyncio.create_task(sample(reader, time.monotonic(), done))
            await asyncio.gather(open_loop(rate, minutes * 60, buy), open_loop(reads, minutes * 60, read))
            done.set()
            await sampler
    finally:
        reader.close()


def verify(system: System, accepted: list[str], settle_s: float = 120.0) -> dict:
    """Every accepted purchase in the store, exactly once (the store's _id is the purchase id)."""
    from pymongo import MongoClient

    client = MongoClient(system.mongodb_uri)
    try:
        collection = client[system.names.database]["purchases"]
        wanted = set(accepted)
        deadline = time.monotonic() + settle_s
        while True:
            stored = [doc["_id"] for doc in collection.find({}, {"_id": 1})]
            if wanted <= set(stored) or time.monotonic() > deadline:
                break
            time.sleep(2)
    finally:
        client.close()
    return {"accepted": len(accepted), "stored": len(stored), "missing": len(wanted - set(stored)),
            "duplicated": len(stored) - len(set(stored)), "accepted_twice": len(accepted) - len(wanted)}


def edge_s(minutes: float) -> float:
    """How much of the start and the end is compared: five minutes, or a third of a run shorter than 15."""
    return EDGE_S if minutes >= 15 else minutes * 60 / 3


def drift(samples: list[dict], minutes: float) -> dict:
    """Each figure's mean over the first and the last edge_s() of the run."""
    if not samples:
        return {}
    edge = edge_s(minutes)
    end = samples[-1]["t_s"]
    first = [s for s in samples if s["t_s"] <= edge]
    last = [s for s in samples if s["t_s"] > end - edge]
    figures = [k for k in samples[0] if k not in ("t_s", "buys")]

    def mean(rows, key):
        values = [r[key] for r in rows if r[key] is not None]
        return round(statistics.fmean(values), 2) if values else None
    return {key: {"first": mean(first, key), "last": mean(last, key)} for key in figures}


def plot(samples: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t = [s["t_s"] / 60 for s in samples]
    fig, axes = plt.subplots(4, 1, figsize=(10, 11), sharex=True)
    panels = [
        ("resident memory (MiB)", [("web_rss_mib", "web"), ("api_rss_mib", "api")]),
        ("open descriptors", [("web_fds", "web"), ("api_fds", "api")]),
        ("latency (ms)", [("buy_p50_ms", "buy p50"), ("buy_p99_ms", "buy p99"), ("read_p99_ms", "history read p99")]),
        ("consumer lag (records) and 503 rate (‰)", [("lag", "lag")]),
    ]
    for axis, (title, series) in zip(axes, panels, strict=True):
        for key, label in series:
            axis.plot(t, [s[key] if s[key] is not None else float("nan") for s in samples], label=label)
        axis.set_title(title)
        axis.grid(alpha=0.3)
    axes[3].plot(t, [s["buy_503_rate"] * 1000 for s in samples], label="503 ‰")
    for axis in axes:
        axis.legend(loc="upper right")
    axes[-1].set_xlabel("minutes")
    fig.tight_layout()
    fig.savefig(path, dpi=80)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--rate", type=float, default=200.0, help="keyed buys per second")
    parser.add_argument("--reads", type=float, default=20.0, help="history reads per second")
    parser.add_argument("--users", type=int, default=1000)
    parser.add_argument("--out", type=Path, default=RESULTS, help="folder for soak.json and soak.png")
    args = parser.parse_args()
    os.chdir(ROOT)
    soak = Soak()
    with tempfile.TemporaryDirectory(prefix="soak-") as tmp:
        workdir = Path(tmp)
        system = System(workdir, KafkaServer(workdir / "kafka", port=free_port(), heap="1g"),
                        FerretDB(workdir / "ferretdb", port=free_port()), extra_env=QUIET)
        try:
            system.start_servers()
            system.create_topics()
            system.start_api()
            system.start_web()
            say(f"soak: {args.rate:.0f} buys/s and {args.reads:.0f} reads/s for {args.minutes:g} min")
            asyncio.run(drive(system, soak, args.minutes, args.rate, args.reads, args.users))
            say("soak: verifying every accepted purchase is stored once")
            verdict = verify(system, soak.accepted)
        finally:
            system.stop()
    statuses: dict[str, int] = {}
    for answer in soak.buys:
        statuses[str(answer.status)] = statuses.get(str(answer.status), 0) + 1
    result = {"minutes": args.minutes, "rate": args.rate, "reads": args.reads, "buys": statuses,
              "verify": verdict, "drift": drift(soak.samples, args.minutes), "samples": soak.samples,
              "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "soak.json").write_text(json.dumps(result, indent=1) + "\n")
    plot(soak.samples, args.out / "soak.png")
    edge = f"{edge_s(args.minutes) / 60:g} min"
    print(f"\n| figure | first {edge} | last {edge} |\n| --- | --- | --- |")
    for key, pair in result["drift"].items():
        print(f"| {key} | {pair['first']} | {pair['last']} |")
    print(f"\nbuys by status: {statuses}; verify: {verdict}")
    say(f"wrote {args.out}/soak.json and soak.png")
    return 1 if verdict["missing"] or verdict["duplicated"] else 0


if __name__ == "__main__":
    sys.exit(main())
