"""The purchases web made for Idempotency-Keys, remembered so that a retry is answered with the very same one.

A 503 means "outcome unknown": the broker may have the purchase although its acknowledgement never came. The
client retries with the same key, which derives the same id. Remembering the purchase made for that id (with
its item and timestamp) lets web publish the identical event again, or, once acknowledged, answer it without
publishing: the retry's answer is exactly what is, or will be, stored. Bounded: the oldest are forgotten first;
once stored, the store answers for them (see HistoryClient.stored_purchase).
"""

from __future__ import annotations

import asyncio
import collections
from dataclasses import dataclass
from typing import TYPE_CHECKING

from services.core.purchase import (
    IdempotencyKeyReused,
    Order,
    Purchase,
    new_purchase,
    purchase_id,
    same_order,
    utc_now,
)

if TYPE_CHECKING:
    from .history import HistoryClient
    from .publisher import Publisher

DEFAULT_CAPACITY = 10_000
LOOKUP_S = 1.0


@dataclass
class Remembered:
    purchase: Purchase
    acknowledged: bool  # Kafka has it: a retry needs no publish


class KeyedPurchases:
    def __init__(self, capacity: int = DEFAULT_CAPACITY) -> None:
        self._capacity = capacity
        self._entries: collections.OrderedDict[str, Remembered] = collections.OrderedDict()

    def get(self, purchase_id: str) -> Remembered | None:
        return self._entries.get(purchase_id)

    def remember(self, purchase: Purchase, acknowledged: bool = False) -> Remembered:
        entry = self._entries.get(purchase.id)
        if entry is None:
            entry = self._entries[purchase.id] = Remembered(purchase, acknowledged)
            if len(self._entries) > self._capacity:
                self._entries.popitem(last=False)
        else:
            entry.acknowledged = entry.acknowledged or acknowledged
        return entry


class IdempotentPurchases:
    """Buys with an Idempotency-Key: the first request makes the purchase, every retry answers that one."""

    def __init__(self, publisher: Publisher, history: HistoryClient, capacity: int = DEFAULT_CAPACITY) -> None:
        self._publisher = publisher
        self._history = history
        self.memory = KeyedPurchases(capacity)

    async def buy(self, order: Order, key: str, deadline: float) -> tuple[Purchase, bool]:
        """(the purchase, whether it was made before). Published (again) unless Kafka already acknowledged it;
        raises IdempotencyKeyReused if the key made a different purchase, ServiceUnavailable if Kafka fails.
        Answered by `deadline` (the event loop's clock), the look-up in the store included."""
        pid = purchase_id(order.user_id, key)
        entry = self.memory.get(pid)
        if entry is None:
            # At most a quarter of the time left (1 s of the default 4): the rest is Kafka's.
            budget = min(LOOKUP_S, (deadline - asyncio.get_running_loop().time()) / 4)
            stored = await self._history.stored_purchase(order.user_id, pid, budget)
            # A request with the same key may have got here first while we asked.
            entry = self.memory.get(pid) or (self.memory.remember(stored, acknowledged=True) if stored else None)
        made_before = entry is not None
        if entry is None:
            entry = self.memory.remember(new_purchase(order, pid, utc_now(), keyed=True))
        elif not same_order(order, entry.purchase):
            raise IdempotencyKeyReused(key, pid)
        if not entry.acknowledged:
            await self._publisher.publish(entry.purchase, deadline)
            entry.acknowledged = True
        return entry.purchase, made_before
