"""Fire purchases at web and measure what happened: rates, latencies, and (with --verify) that every accepted
purchase became visible exactly once. With --lag it samples the consumer group's lag, the signal KEDA scales on.

    python scripts/load.py --burst 5000 --concurrency 64 --verify
    python scripts/load.py --rate 200 --duration 10 --verify --json
    python scripts/load.py --url http://localhost:8080 --burst 20000 --lag --plot run.png   # through a port-forward

Bounded in count and time; stops by itself; Ctrl-C stops sending and prints what it has.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import sys
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

if __package__ in (None, ""):  # run as `python scripts/load.py`
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import aiohttp  # noqa: E402

from services.core.purchase import ITEMS  # noqa: E402

REQUEST_TIMEOUT_S = 10.0
FULL_LOOK_ATTEMPTS = 4  # tries at reading a whole history at the end of --verify, 1 s, 2 s, 3 s apart


@dataclass
class Outcome:
    user: str
    started: float  # monotonic seconds
    latency_ms: float
    status: int | None  # None: connection error or timeout
    purchase_id: str | None = None


@dataclass
class Run:
    outcomes: list[Outcome] = field(default_factory=list)
    started: float = 0.0
    finished: float = 0.0
    interrupted: bool = False
    lag: list[dict[str, Any]] = field(default_factory=list)
    visible_ms: dict[str, float] = field(default_factory=dict)  # purchase id -> ms from sending it to visible
    missing: list[str] = field(default_factory=list)  # accepted, but not in its user's history at the end
    unreadable: list[str] = field(default_factory=list)  # users whose history could not be read at the end
    duplicated: list[str] = field(default_factory=list)  # in a history more than once
    unexpected: int = 0  # in this run's users' histories, but never accepted by this run

    @property
    def accepted(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.status == 202 and o.purchase_id]


def percentile(values: list[float], p: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(p / 100 * len(ordered) + 0.5) - 1))
    return round(ordered[index], 2)


def latency_summary(values: list[float], points=(50, 90, 99)) -> dict[str, float | None]:
    summary = {f"p{p}": percentile(values, p) for p in points}
    summary["max"] = round(max(values), 2) if values else None
    return summary


# --- sending -------------------------------------------------------------------------------------------

class Sender:
    def __init__(self, url: str, users: list[str], seed: int | None = None) -> None:
        self.url = url.rstrip("/")
        self.users = users
        self.rng = random.Random(seed)

    def body(self) -> tuple[str, dict[str, Any]]:
        user = self.rng.choice(self.users)
        return user, {"username": f"shopper {user}", "userId": user,
                      "price": round(self.rng.uniform(1, 500), 2), "item": self.rng.choice(ITEMS)}

    async def one(self, session: aiohttp.ClientSession, run: Run) -> None:
        user, body = self.body()
        started = time.monotonic()
        try:
            async with session.post(f"{self.url}/api/buy", json=body) as response:
                answer = await response.json(content_type=None) if response.status == 202 else None
                status = response.status
        except (TimeoutError, aiohttp.ClientError, ValueError):
            status, answer = None, None
        run.outcomes.append(Outcome(user, started, (time.monotonic() - started) * 1000, status,
                                    answer.get("id") if answer else None))


async def send(sender: Sender, session: aiohttp.ClientSession, run: Run, count: int, concurrency: int,
               rate: float | None, duration: float, stop: asyncio.Event) -> None:
    """`count` requests: open loop at `rate` per second, or as fast as `concurrency` allows; at most `duration` s."""
    slots = asyncio.Semaphore(concurrency)
    tasks: set[asyncio.Task] = set()
    run.started = time.monotonic()
    deadline = run.started + duration
    for i in range(count):
        if stop.is_set() or time.monotonic() >= deadline:
            break
        if rate:
            delay = run.started + i / rate - time.monotonic()
            if delay > 0:
                try:
                    await asyncio.wait_for(stop.wait(), delay)
                    break
                except TimeoutError:
                    pass
        await slots.acquire()
        task = asyncio.create_task(sender.one(session, run))
        tasks.add(task)
        task.add_done_callback(lambda t: (tasks.discard(t), slots.release()))
    if tasks:
        await asyncio.wait(tasks, timeout=REQUEST_TIMEOUT_S + 1)
    run.finished = time.monotonic()


# --- verifying -----------------------------------------------------------------------------------------

async def history_ids(session: aiohttp.ClientSession, url: str, user: str,
                      newest: int | None = None) -> list[str] | None:
    """Purchase ids in a user's history: the `newest` few, or every page; None if web could not answer."""
    ids, before = [], None
    while True:
        params = {"limit": str(min(newest or 1000, 1000)), **({"before": before} if before else {})}
        try:
            async with session.get(f"{url}/api/user/{quote(user, safe='')}/purchases", params=params) as response:
                if response.status != 200:
                    return None
                ids.extend(p["id"] for p in await response.json())
                before = response.headers.get("X-Next-Before")
        except (TimeoutError, aiohttp.ClientError, ValueError):
            return None
        if not before or newest is not None:
            return ids


async def verify(session: aiohttp.ClientSession, url: str, run: Run, until: asyncio.Event, timeout: float,
                 poll_s: float = 0.05, pollers: int = 8) -> None:
    """Watch the histories of users with purchases not yet seen; record when each became visible.

    Runs while the load is sent (so visibility latency is measured, not the wait for the end), then until
    everything accepted is visible or `timeout` seconds after `until` is set. Each look asks only for a
    user's newest purchases (a user's purchases are stored in order: one partition per user), and at most
    `pollers` looks are in flight, so verifying adds little load of its own.
    """
    slots = asyncio.Semaphore(pollers)

    async def look(user: str, pending: set[str]) -> None:
        async with slots:
            ids = await history_ids(session, url, user, newest=len(pending) + 20)
        now = time.monotonic()
        for pid in set(ids or ()) & pending:
            run.visible_ms[pid] = (now - accepted[pid].started) * 1000

    deadline: float | None = None
    while True:
        accepted = {o.purchase_id: o for o in run.accepted}
        pending: dict[str, set[str]] = {}
        for pid, outcome in accepted.items():
            if pid not in run.visible_ms:
                pending.setdefault(outcome.user, set()).add(pid)
        if until.is_set():
            deadline = deadline or time.monotonic() + timeout
            if not pending or time.monotonic() > deadline:
                break
        await asyncio.gather(*(look(user, pids) for user, pids in pending.items()))
        await asyncio.sleep(poll_s)
    # A last full look at every user of the run: duplicates, and purchases nobody here accepted. As many
    # reads in flight as while polling (a burst of full reads can outrun a slow database), each retried: a
    # history that cannot be read is reported as unreadable, never as purchases missing from it.
    async def full_look(user: str) -> list[str] | None:
        for attempt in range(FULL_LOOK_ATTEMPTS):
            if attempt:
                await asyncio.sleep(attempt)
            async with slots:
                ids = await history_ids(session, url, user)
            if ids is not None:
                return ids
        return None

    users = sorted({o.user for o in run.outcomes})
    histories = dict(zip(users, await asyncio.gather(*(full_look(u) for u in users)), strict=True))
    run.unreadable = [user for user, ids in histories.items() if ids is None]
    seen: Counter = Counter(pid for ids in histories.values() for pid in ids or ())
    accepted_ids = {o.purchase_id for o in run.accepted if histories[o.user] is not None}
    run.duplicated = sorted(pid for pid, n in seen.items() if n > 1)
    run.unexpected = sum(1 for pid in seen if pid not in accepted_ids)
    run.missing = sorted(accepted_ids - seen.keys())


# --- lag -----------------------------------------------------------------------------------------------

async def sample_lag(bootstrap: str, group: str, topic: str, run: Run, until: asyncio.Event,
                     settle_s: float, every_s: float = 0.5) -> None:
    """Lag during the run and for up to `settle_s` after it, until it is back to zero."""
    from scripts.lag import LagReader

    loop = asyncio.get_running_loop()
    reader = await loop.run_in_executor(None, LagReader, bootstrap, group, topic)
    origin = time.monotonic()
    stop_at: float | None = None
    try:
        while True:
            lag = await loop.run_in_executor(None, reader.read)
            run.lag.append({"t_s": round(time.monotonic() - origin, 2), "total": lag.total,
                            "partitions": lag.partitions})
            if until.is_set():
                stop_at = stop_at or time.monotonic() + settle_s
                if lag.total == 0 or time.monotonic() > stop_at:
                    break
            await asyncio.sleep(every_s)
    finally:
        reader.close()


# --- progress and the report ---------------------------------------------------------------------------

async def progress(run: Run, total: int, until: asyncio.Event) -> None:
    while not until.is_set():
        done = len(run.outcomes)
        elapsed = max(time.monotonic() - run.started, 1e-6) if run.started else 1e-6
        width = 30
        filled = int(width * done / total) if total else width
        ok = sum(1 for o in run.outcomes if o.status == 202)
        lag = f" lag={run.lag[-1]['total']}" if run.lag else ""
        print(f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total} accepted={ok} "
              f"{done / elapsed:7.0f}/s{lag}   ", end="", file=sys.stderr, flush=True)
        try:
            await asyncio.wait_for(until.wait(), 0.25)
        except TimeoutError:
            pass
    print(file=sys.stderr)


def report(run: Run, verified: bool) -> dict[str, Any]:
    statuses = Counter(o.status for o in run.outcomes)
    classes = Counter("error" if s is None else f"{s // 100}xx" for s in statuses.elements())
    elapsed = max(run.finished - run.started, 1e-6)
    result: dict[str, Any] = {
        "sent": len(run.outcomes),
        "accepted": len(run.accepted),
        "status_counts": {"2xx": classes["2xx"], "4xx": classes["4xx"], "5xx": classes["5xx"],
                          "connection_errors": classes["error"]},
        "statuses": {str(k): v for k, v in sorted(statuses.items(), key=lambda kv: str(kv[0]))},
        "duration_s": round(elapsed, 2),
        "rate": round(len(run.outcomes) / elapsed, 1),
        "latency_ms": latency_summary([o.latency_ms for o in run.outcomes if o.status is not None]),
        "interrupted": run.interrupted,
    }
    if verified:
        result["verify"] = {
            "missing": len(run.missing), "missing_ids": run.missing[:20],
            "duplicated": len(run.duplicated), "duplicated_ids": run.duplicated[:20],
            "unexpected": run.unexpected,
            "unreadable_users": len(run.unreadable), "unreadable_user_ids": run.unreadable[:20],
            "visible_ms": latency_summary(list(run.visible_ms.values())),
        }
    if run.lag:
        result["lag"] = run.lag
        result["lag_max"] = max(sample["total"] for sample in run.lag)
    return result


def print_summary(result: dict[str, Any]) -> None:
    counts = result["status_counts"]
    lat = result["latency_ms"]
    lines = [
        f"sent        {result['sent']} in {result['duration_s']} s = {result['rate']}/s"
        + (" (interrupted)" if result["interrupted"] else ""),
        f"statuses    2xx={counts['2xx']} 4xx={counts['4xx']} 5xx={counts['5xx']} "
        f"connection errors={counts['connection_errors']}   {result['statuses']}",
        f"latency ms  p50={lat['p50']} p90={lat['p90']} p99={lat['p99']} max={lat['max']}",
    ]
    if "verify" in result:
        v = result["verify"]
        lines.append(f"verify      missing={v['missing']} duplicated={v['duplicated']} unexpected={v['unexpected']} "
                     f"unreadable users={v['unreadable_users']}"
                     f"  visible after ms p50={v['visible_ms']['p50']} p90={v['visible_ms']['p90']} "
                     f"p99={v['visible_ms']['p99']}")
        if v["missing_ids"]:
            lines.append(f"            missing ids (first 20): {', '.join(v['missing_ids'])}")
        if v["unreadable_user_ids"]:
            lines.append("            history unreadable (first 20), not verified: "
                         + ", ".join(v["unreadable_user_ids"]))
    if "lag" in result:
        lines.append(f"lag         max={result['lag_max']} last={result['lag'][-1]['total']} "
                     f"({len(result['lag'])} samples)")
    print("\n".join(lines), file=sys.stderr)


def plot(run: Run, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (top, bottom) = plt.subplots(2, 1, figsize=(10, 7), sharex=False)
    points = sorted((o.started - run.started, o.latency_ms) for o in run.outcomes if o.status is not None)
    top.scatter([t for t, _ in points], [ms for _, ms in points], s=3, alpha=0.5)
    top.set(title="POST /api/buy latency", xlabel="seconds into the run", ylabel="ms")
    if run.lag:
        bottom.plot([s["t_s"] for s in run.lag], [s["total"] for s in run.lag], marker=".")
    bottom.set(title="consumer group lag (records)", xlabel="seconds since sampling began", ylabel="records")
    figure.tight_layout()
    figure.savefig(path, dpi=110)


# --- command line --------------------------------------------------------------------------------------

def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default="http://localhost:8080", help="web's base URL")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--rate", type=float, help="open loop: this many purchases per second, for --duration")
    mode.add_argument("--burst", type=int, help="this many purchases as fast as --concurrency allows")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds: length of a --rate run, cap on a burst")
    parser.add_argument("--concurrency", type=int, default=64, help="most requests in flight")
    parser.add_argument("--users", type=int, default=50, help="size of the random user pool (ids unique to this run)")
    parser.add_argument("--seed", type=int, help="random seed for users, items and prices")
    parser.add_argument("--verify", action="store_true", help="check every accepted purchase becomes visible once")
    parser.add_argument("--verify-timeout", type=float, default=30.0, help="seconds to wait for visibility")
    parser.add_argument("--lag", action="store_true", help="sample the consumer group's lag from Kafka")
    parser.add_argument("--bootstrap", default=os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092"))
    parser.add_argument("--group", default=os.environ.get("KAFKA_CONSUMER_GROUP", "purchase-group"))
    parser.add_argument("--topic", default=os.environ.get("KAFKA_TOPIC", "purchases"))
    parser.add_argument("--lag-settle", type=float, default=30.0, help="seconds to keep sampling lag after the run")
    parser.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    parser.add_argument("--plot", metavar="FILE.png", help="latency and lag over time (needs matplotlib)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    if args.rate is None and args.burst is None:
        args.burst = 1000
    if (args.rate is not None and args.rate <= 0) or (args.burst is not None and args.burst <= 0):
        parser.error("--rate and --burst must be positive")
    if args.concurrency < 1 or args.users < 1 or args.duration <= 0:
        parser.error("--concurrency, --users and --duration must be positive")
    return args


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    run = Run()
    stop, sent = asyncio.Event(), asyncio.Event()
    loop = asyncio.get_running_loop()

    def interrupt() -> None:
        run.interrupted = True
        stop.set()

    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, interrupt)
    run_id = uuid.uuid4().hex[:8]
    sender = Sender(args.url, [f"load-{run_id}-{n}" for n in range(args.users)], args.seed)
    count = args.burst if args.burst is not None else int(args.rate * args.duration)
    connector = aiohttp.TCPConnector(limit=args.concurrency + 16)
    async with aiohttp.ClientSession(connector=connector,
                                     timeout=aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S)) as session:
        helpers = []
        if args.verify:
            helpers.append(asyncio.create_task(verify(session, sender.url, run, sent, args.verify_timeout)))
        if args.lag:
            helpers.append(asyncio.create_task(
                sample_lag(args.bootstrap, args.group, args.topic, run, sent, args.lag_settle)))
        bar = None if args.quiet else asyncio.create_task(progress(run, count, sent))
        await send(sender, session, run, count, args.concurrency, args.rate, args.duration, stop)
        sent.set()
        if bar:
            await bar
        if helpers:
            # Ctrl-C during verification ends it early, with what was seen so far.
            waiting = asyncio.gather(*helpers)
            stopped = asyncio.create_task(stop.wait())
            await asyncio.wait({waiting, stopped}, return_when=asyncio.FIRST_COMPLETED)
            if not waiting.done():
                waiting.cancel()
            stopped.cancel()
    result = report(run, args.verify)
    if args.plot:
        plot(run, args.plot)
    return result


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    result = asyncio.run(main_async(args))
    print_summary(result)
    if args.json:
        print(json.dumps(result))
    if args.verify and any(result["verify"][k] for k in ("missing", "duplicated", "unreadable_users")):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
