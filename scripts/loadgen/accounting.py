"""The verdict on keyed traffic (keyed.py) after a fault: every request accounted for.

`account()` retries every request whose outcome was unknown (503, a cut connection, a timeout) with the same key
and body, waits for the store to settle, and compares what is stored with what was asked. Each request's verdict:
accepted or refused at first, then stored or lost; and anything stored that no request stands for is unexpected.
No duplicate is counted: the purchase id is the document's `_id`, so the store makes one impossible.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

import aiohttp

from scripts.stack.waiting import until

from .keyed import Request, post_buy

RETRY_CONCURRENCY = 20


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
    lost: list[str]
    unexpected: list[str]
    first_202_after_recovery_s: float | None
    slowest_refusal_s: float  # the longest a 503 took to come
    verdicts: Counter  # ("accepted" | "refused" | "no answer", "stored" | "lost") -> how many requests

    def line(self) -> str:
        first = "-" if self.first_202_after_recovery_s is None else f"{self.first_202_after_recovery_s:.2f}s"
        return (f"sent={self.sent} 202={self.accepted} 503={self.refused_503} no_answer={self.no_answer} "
                f"other={self.other} stored={self.stored} phantoms={self.phantoms} "
                f"retried_to_same_id={self.retried_same_id} lost={len(self.lost)} unexpected={len(self.unexpected)} "
                f"first_202_after_recovery={first} slowest_503={self.slowest_refusal_s:.2f}s")


def first_verdict(request: Request) -> str:
    return "accepted" if request.status == 202 else "no answer" if request.status is None else "refused"


def account(url: str, requests: list[Request], stored_ids: Callable[[], list[str]], recovered_at: float | None = None,
            settle_s: float = 60.0, retry_s: float = 60.0) -> Accounting:
    """Retry the unknown outcomes with their keys, wait for storage to settle, and count."""
    expected = {r.expected_id for r in requests}
    assert len(expected) == len(requests), "two requests of the run share an id: the harness is broken"
    accepted = [r for r in requests if r.status == 202]
    wrong = [r.key for r in accepted if r.answer.get("id") != r.expected_id]
    assert not wrong, f"202 answers whose id is not the one their key derives: {wrong[:5]}"

    # Accepted ones first: they must all arrive. Then look at the unknown ones before retrying them.
    until(lambda: {r.expected_id for r in accepted} <= set(stored_ids()), settle_s,
          "every accepted purchase to be stored", interval=0.5)
    time.sleep(2)  # let whatever the broker did take of the unknown ones reach the store too
    stored_before_retry = set(stored_ids())
    unknown = [r for r in requests if r.unknown]
    phantoms = sum(r.expected_id in stored_before_retry for r in unknown)
    retried = asyncio.run(retry_until_accepted(url, unknown, retry_s))
    not_same = [(r.key, answer_id) for r, answer_id in zip(unknown, retried, strict=True) if answer_id != r.expected_id]
    assert not not_same, f"retries with the same key answered another purchase (key, id): {not_same[:5]}"

    until(lambda: expected <= set(stored_ids()), settle_s, "every request's purchase to be stored", interval=0.5)
    time.sleep(1)
    stored = set(stored_ids())
    first_after = None
    if recovered_at is not None:
        after = [r.answered_at - recovered_at for r in accepted if r.answered_at >= recovered_at]
        first_after = min(after) if after else None
    others = Counter(r.status for r in requests if r.status not in (202, 503, None))
    return Accounting(
        sent=len(requests), accepted=len(accepted), refused_503=sum(r.status == 503 for r in requests),
        no_answer=sum(r.status is None for r in requests), other=dict(others), phantoms=phantoms,
        retried_same_id=len(unknown), stored=len(stored),
        lost=sorted(expected - stored), unexpected=sorted(stored - expected),
        first_202_after_recovery_s=first_after,
        slowest_refusal_s=max((r.latency_ms / 1000 for r in requests if r.status == 503), default=0.0),
        verdicts=Counter((first_verdict(r), "stored" if r.expected_id in stored else "lost") for r in requests),
    )


async def retry_until_accepted(url: str, requests: list[Request], deadline_s: float = 60) -> list[str | None]:
    """Each request again, same key and body, until 202, all within `deadline_s`: the id answered, or None."""
    deadline = time.monotonic() + deadline_s
    slots = asyncio.Semaphore(RETRY_CONCURRENCY)
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=15)) as session:
        async def one(request: Request) -> str | None:
            async with slots:
                while time.monotonic() < deadline:
                    status, answer = await post_buy(session, url, request.body, request.key, request.headers)
                    if status == 202:
                        return answer["id"]
                    await asyncio.sleep(0.5)
            return None
        return await asyncio.gather(*(one(r) for r in requests))
