"""--verify: reading every user's history while the run goes on and at its end, to find when each accepted
purchase became visible, and whether any is missing or there twice.

Its reads are paced (`--read-rate`, default READ_RATE a second, all of them together) so that the verifier does not
load the machine it measures: on 2 cores, reading as fast as it could took CPU from the writes it timed. The run
reports the rate it read at and the CPU the load generator used (reporting.py)."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from urllib.parse import quote

import aiohttp

from .outcomes import Run

FULL_LOOK_ATTEMPTS = 4  # tries at reading a whole history at the end of --verify, 1 s, 2 s, 3 s apart
READ_RATE = 200.0  # history reads a second while verifying


class Pace:
    """At most `rate` reads a second, however many pollers ask: each waits for its slot."""

    def __init__(self, rate: float) -> None:
        self.interval = 1.0 / rate
        self.next = 0.0
        self.reads = 0

    async def slot(self) -> None:
        loop = asyncio.get_running_loop()
        now = loop.time()
        at = max(self.next, now)
        self.next = at + self.interval
        self.reads += 1
        if at > now:
            await asyncio.sleep(at - now)


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
                 read_rate: float = READ_RATE, poll_s: float = 0.05, pollers: int = 8) -> None:
    """Watch the histories of users with purchases not yet seen; record when each became visible.

    Runs while the load is sent (so visibility latency is measured, not the wait for the end), then until
    everything accepted is visible or `timeout` seconds after `until` is set. Each look asks only for a
    user's newest purchases (a user's purchases are stored in order: one partition per user), and at most
    `pollers` looks are in flight, at most `read_rate` a second, so verifying adds little load of its own.
    """
    slots = asyncio.Semaphore(pollers)
    pace = Pace(read_rate)
    started = asyncio.get_running_loop().time()

    async def look(user: str, pending: set[str]) -> None:
        async with slots:
            await pace.slot()
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
                await pace.slot()
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
    run.reads, run.read_rate = pace.reads, pace.reads / max(asyncio.get_running_loop().time() - started, 1e-6)
