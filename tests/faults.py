"""The fault harness: keyed open-loop traffic against web, and the accounting of every request it sent.

Every request carries its own Idempotency-Key, so the purchase id it stands for is known before any answer
(the core derives it from userId + key). After a fault, `account()` retries every request whose outcome was
unknown (503, a cut connection, a timeout) with the same key and body, then compares what is stored with
what was asked: each request must be stored exactly once, under its own id, and nothing else.
"""

from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import dataclass, field

import aiohttp

from services.core.purchase import purchase_id

from .support import wait_until


@dataclass
class Request:
    key: str
    body: dict
    sent_at: float
    status: int | None = None  # None: no HTTP answer (connection cut, client timeout)
    answer: dict | str | None = None
    answered_at: float | None = None

    @property
    def expected_id(self) -> str:
        return purchase_id(self.body["userId"], self.key)

    @property
    def unknown(self) -> bool:
        """503 or no answer: the broker may or may not have the purchase."""
        return self.status != 202


@dataclass
class KeyedTraffic:
    """`rate` buys a second, open loop (a slow answer does not slow the sending), until stop()."""

    url: str
    rate: float = 60.0
    users: int = 20
    run: str = "run"
    timeout_s: float = 15.0
    requests: list[Request] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._send_all()), daemon=True)

    def start(self) -> KeyedTraffic:
        self._thread.start()
        return self

    def stop(self) -> list[Request]:
        self._stop.set()
        self._thread.join(self.timeout_s + 30)
        assert not self._thread.is_alive(), "the traffic did not stop"
        return self.requests

    def __enter__(self) -> KeyedTraffic:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    async def _send_all(self) -> None:
        timeout = aiohttp.ClientTimeout(total=self.timeout_s)
        async with aiohttp.ClientSession(timeout=timeout, connector=aiohttp.TCPConnector(limit=0)) as session:
            pending = set()
            started = time.monotonic()
            i = 0
            while not self._stop.is_set():
                request = Request(f"{self.run}-{i}", {"username": "fault", "userId": f"u{i % self.users}",
                                                      "price": 1 + i % 50}, time.monotonic())
                self.requests.append(request)
                pending.add(asyncio.ensure_future(self._send(session, request)))
                i += 1
                await asyncio.sleep(max(0.0, started + i / self.rate - time.monotonic()))
            if pending:
                await asyncio.wait(pending)

    async def _send(self, session: aiohttp.ClientSession, request: Request) -> None:
        request.status, request.answer = await post_buy(session, self.url, request)
        request.answered_at = time.monotonic()


async def post_buy(session: aiohttp.ClientSession, url: str, request: Request) -> tuple[int | None, object]:
    try:
        async with session.post(f"{url}/api/buy", json=request.body,
                                headers={"Idempotency-Key": request.key}) as response:
            return response.status, await response.json(content_type=None)
    except (TimeoutError, aiohttp.ClientError) as exc:
        return None, repr(exc)


@dataclass
class Accounting:
    sent: int
    accepted: int  # 202 at the first try
    refused_503: int
    no_answer: int
    other: dict[int, int]
    phantoms: int  # answered 503 / unanswered, yet stored before any retry
    retried_same_id: int  # unknown outcomes retried with their key: 202 with the very id they stand for
    stored: int
    duplicated: int
    lost: list[str]
    unexpected: list[str]
    first_202_after_recovery_s: float | None
    slowest_refusal_s: float  # the longest a 503 took to come

    def line(self) -> str:
        first = "-" if self.first_202_after_recovery_s is None else f"{self.first_202_after_recovery_s:.2f}s"
        return (f"sent={self.sent} 202={self.accepted} 503={self.refused_503} no_answer={self.no_answer} "
                f"other={self.other} stored={self.stored} duplicated={self.duplicated} phantoms={self.phantoms} "
                f"retried_to_same_id={self.retried_same_id} lost={len(self.lost)} unexpected={len(self.unexpected)} "
                f"first_202_after_recovery={first} slowest_503={self.slowest_refusal_s:.2f}s")


def account(url: str, requests: list[Request], stored_ids, recovered_at: float | None = None,
            settle_s: float = 60.0) -> Accounting:
    """Retry the unknown outcomes with their keys, wait for storage to settle, and count.

    `stored_ids()` returns the ids in the store (a list, duplicates kept: the store's `_id` makes them impossible,
    and this checks it)."""
    expected = {r.expected_id for r in requests}
    assert len(expected) == len(requests), "two requests of the run share an id: the harness is broken"
    accepted = [r for r in requests if r.status == 202]
    wrong = [r.key for r in accepted if r.answer.get("id") != r.expected_id]
    assert not wrong, f"202 answers whose id is not the one their key derives: {wrong[:5]}"

    # Accepted ones first: they must all arrive. Then look at the unknown ones before retrying them.
    wait_until(lambda: {r.expected_id for r in accepted} <= set(stored_ids()), settle_s,
               "every accepted purchase to be stored", interval=0.5)
    time.sleep(2)  # let whatever the broker did take of the unknown ones reach the store too
    stored_before_retry = set(stored_ids())
    unknown = [r for r in requests if r.unknown]
    phantoms = sum(r.expected_id in stored_before_retry for r in unknown)
    retried = asyncio.run(_retry_until_accepted(url, unknown))
    not_same = [(r.key, answer_id) for r, answer_id in zip(unknown, retried, strict=True) if answer_id != r.expected_id]
    assert not not_same, f"retries with the same key answered another purchase (key, id): {not_same[:5]}"

    wait_until(lambda: expected <= set(stored_ids()), settle_s, "every request's purchase to be stored",
               interval=0.5)
    time.sleep(1)
    stored = stored_ids()
    first_after = None
    if recovered_at is not None:
        after = [r.answered_at - recovered_at for r in accepted if r.answered_at >= recovered_at]
        first_after = min(after) if after else None
    statuses: dict[int, int] = {}
    for r in requests:
        if r.status not in (202, 503, None):
            statuses[r.status] = statuses.get(r.status, 0) + 1
    return Accounting(
        sent=len(requests), accepted=len(accepted), refused_503=sum(r.status == 503 for r in requests),
        no_answer=sum(r.status is None for r in requests), other=statuses, phantoms=phantoms,
        retried_same_id=len(unknown), stored=len(stored), duplicated=len(stored) - len(set(stored)),
        lost=sorted(expected - set(stored)), unexpected=sorted(set(stored) - expected),
        first_202_after_recovery_s=first_after,
        slowest_refusal_s=max((r.answered_at - r.sent_at for r in requests if r.status == 503), default=0.0),
    )


async def _retry_until_accepted(url: str, requests: list[Request], deadline_s: float = 60) -> list[str | None]:
    """Each request again, same key and body, until 202, all within `deadline_s`: the id answered, or None."""
    deadline = time.monotonic() + deadline_s
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=15)) as session:
        async def one(request: Request) -> str | None:
            while time.monotonic() < deadline:
                status, answer = await post_buy(session, url, request)
                if status == 202:
                    return answer["id"]
                await asyncio.sleep(0.5)
            return None
        semaphore = asyncio.Semaphore(20)

        async def bounded(request: Request) -> str | None:
            async with semaphore:
                return await one(request)
        return await asyncio.gather(*(bounded(r) for r in requests))
