"""Keyed traffic: every buy carries an Idempotency-Key of its own, so the purchase it stands for is known before any
answer (the core derives the id from userId + key), and an unknown outcome can be retried with the same key.

One harness for the tests of faults (process, network, Kafka, the node), the sign-in tests, the soak and the
images' tests: an open loop at a rate, or bursts again and again, from a thread of its own (`with Traffic(...)`)
or inside a running event loop (`await traffic.send(session, seconds)`). accounting.py gives the verdict.
"""

from __future__ import annotations

import asyncio
import functools
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from services.core.purchase import purchase_id

Answer = tuple[int | None, Any]  # (status, JSON answer); (None, the error's repr) when no HTTP answer came


async def post_buy(session: aiohttp.ClientSession, url: str, body: dict, key: str | None = None,
                   headers: dict[str, str] | None = None) -> Answer:
    """One POST /api/buy: its status and JSON answer, or (None, what went wrong) for a cut connection or a timeout."""
    headers = {**(headers or {}), **({"Idempotency-Key": key} if key else {})}
    try:
        async with session.post(f"{url}/api/buy", json=body, headers=headers or None) as response:
            return response.status, await response.json(content_type=None)
    except (TimeoutError, aiohttp.ClientError, ValueError) as exc:
        return None, repr(exc)


async def post_all(url: str, bodies: list[dict], concurrency: int = 50, headers: list[dict] | None = None,
                   timeout_s: float = 30) -> list[Answer]:
    """Every body POSTed, at most `concurrency` at a time; the answers in the bodies' order."""
    slots = asyncio.Semaphore(concurrency)
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout_s)) as session:
        async def one(i: int, body: dict) -> Answer:
            async with slots:
                return await post_buy(session, url, body, headers=headers[i] if headers else None)
        return await asyncio.gather(*(one(i, body) for i, body in enumerate(bodies)))


def post_buys(url: str, bodies: list[dict], concurrency: int = 50, headers: list[dict] | None = None) -> list[Answer]:
    """post_all() from synchronous code."""
    return asyncio.run(post_all(url, bodies, concurrency, headers))


def accepted_ids(answers: list[Answer]) -> list[str]:
    return [answer["id"] for status, answer in answers if status == 202]


async def open_loop(rate: float, one: Callable[[int], Awaitable[None]], seconds: float | None = None,
                    stop: threading.Event | None = None) -> None:
    """`one(i)` `rate` times a second, each in a task of its own (a slow answer delays nothing), until `stop` is
    set or `seconds` have passed; then wait for those still running."""
    started, pending, i = time.monotonic(), set(), 0
    while not (stop is not None and stop.is_set()) and (seconds is None or time.monotonic() - started < seconds):
        pending.add(asyncio.ensure_future(one(i)))
        pending = {task for task in pending if not task.done()}
        i += 1
        await asyncio.sleep(max(0.0, started + i / rate - time.monotonic()))
    if pending:
        await asyncio.wait(pending)


@dataclass
class Request:
    key: str
    body: dict
    sent_at: float
    headers: dict[str, str] = field(default_factory=dict)  # as sent (a bearer token, say)
    status: int | None = None  # None: no HTTP answer (connection cut, client timeout)
    answer: Any = None
    answered_at: float | None = None

    @property
    def expected_id(self) -> str:
        return purchase_id(self.body["userId"], self.key)

    @property
    def unknown(self) -> bool:
        """503 or no answer: the broker may or may not have the purchase."""
        return self.status != 202

    @property
    def cut(self) -> bool:
        """Over, with no HTTP answer (a cut connection, a timeout)."""
        return self.answered_at is not None and self.status is None

    @property
    def latency_ms(self) -> float | None:
        return None if self.answered_at is None else (self.answered_at - self.sent_at) * 1000


def fault_order(i: int, users: int) -> dict:
    return {"username": "fault", "userId": f"u{i % users}", "price": 1 + i % 50}


@dataclass
class Traffic:
    """Keyed buys until stop(): `rate` a second, open loop (a slow answer does not slow the sending), or, with
    `burst`, that many at once, again and again, `pause_s` apart. `headers` go with every buy sent from then on
    (change them mid-run: a new token); `order(i, users)` makes the i-th body."""

    url: str
    rate: float = 60.0
    burst: int | None = None
    pause_s: float = 0.0
    users: int = 20
    run: str = "run"
    timeout_s: float = 15.0
    headers: dict[str, str] = field(default_factory=dict)
    order: Callable[[int, int], dict] = fault_order
    requests: list[Request] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- from a thread of its own ------------------------------------------------------------------------

    def start(self) -> Traffic:
        self._thread = threading.Thread(target=lambda: asyncio.run(self._session()), daemon=True)
        self._thread.start()
        return self

    def stop(self) -> list[Request]:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(self.timeout_s + 30)
            assert not self._thread.is_alive(), "the traffic did not stop"
        return self.requests

    def __enter__(self) -> Traffic:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    async def _session(self) -> None:
        timeout = aiohttp.ClientTimeout(total=self.timeout_s)
        async with aiohttp.ClientSession(timeout=timeout, connector=aiohttp.TCPConnector(limit=0)) as session:
            await self.send(session)

    # -- inside a running event loop -----------------------------------------------------------------------

    async def send(self, session: aiohttp.ClientSession, seconds: float | None = None) -> None:
        """Send until stop() (or for `seconds`), then wait for the answers still due."""
        one = functools.partial(self._one, session)
        if self.burst is None:
            await open_loop(self.rate, one, seconds, self._stop)
            return
        started, i = time.monotonic(), 0
        while not self._stop.is_set() and (seconds is None or time.monotonic() - started < seconds):
            await asyncio.gather(*(one(i + k) for k in range(self.burst)))
            i += self.burst
            await asyncio.sleep(self.pause_s)

    async def _one(self, session: aiohttp.ClientSession, i: int) -> None:
        request = Request(f"{self.run}-{i}", self.order(i, self.users), time.monotonic(), dict(self.headers))
        self.requests.append(request)
        request.status, request.answer = await post_buy(session, self.url, request.body, request.key,
                                                        request.headers)
        request.answered_at = time.monotonic()

    # -- what came back ------------------------------------------------------------------------------------

    def accepted_ids(self) -> list[str]:
        return [r.answer["id"] for r in self.requests if r.status == 202]

    def statuses(self, **headers: str) -> dict[int | None, int]:
        """How many answers of each status, of the buys sent with these headers (all of them without any)."""
        counts: dict[int | None, int] = {}
        for r in self.requests:
            if r.answered_at is not None and all(r.headers.get(k) == v for k, v in headers.items()):
                counts[r.status] = counts.get(r.status, 0) + 1
        return counts
