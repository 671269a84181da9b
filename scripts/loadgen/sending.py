"""Sending purchases: open loop at a rate, or as fast as a concurrency allows, bounded in count and time."""

from __future__ import annotations

import asyncio
import random
import time
from typing import Any

import aiohttp

from services.core.purchase import ITEMS

from .keyed import post_buy
from .outcomes import Outcome, Run

REQUEST_TIMEOUT_S = 10.0


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
        status, answer = await post_buy(session, self.url, body)
        run.outcomes.append(Outcome(user, started, (time.monotonic() - started) * 1000, status,
                                    answer.get("id") if status == 202 else None))


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
