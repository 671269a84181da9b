"""Every buy, one path: a new purchase published to Kafka, or, with an Idempotency-Key, the one purchase that key
stands for (made and published on the first request, answered again on every retry).

A retry's answer is exactly what is, or will be, stored: the purchase is remembered (idempotency.py) and, once
forgotten, looked up in the store through the api before a new one is made.
"""

from __future__ import annotations

import asyncio

from services.core.purchase import IdempotencyKeyReused, Order, Purchase, new_purchase, purchase_id, same_order, utc_now

from .history import HistoryClient
from .idempotency import DEFAULT_CAPACITY, KeyedPurchases
from .publisher import Publisher

# A keyed buy spends at most this long (and a quarter of what its deadline leaves) asking the store about its id.
LOOKUP_S = 1.0


class Purchases:
    def __init__(self, publisher: Publisher, history: HistoryClient, capacity: int = DEFAULT_CAPACITY) -> None:
        self._publisher = publisher
        self._history = history
        self.memory = KeyedPurchases(capacity)

    async def buy(self, order: Order, key: str | None, deadline: float) -> tuple[Purchase, bool]:
        """(the purchase, whether an earlier request made it), once Kafka has acknowledged it, by `deadline` (the
        event loop's clock, the look-up in the store included). Raises IdempotencyKeyReused if the key made a
        different purchase, ServiceUnavailable if Kafka cannot take it (outcome unknown: retry with the key)."""
        if key is None:
            purchase = new_purchase(order, purchase_id(order.user_id, None), utc_now())
            await self._publisher.publish(purchase, deadline)
            return purchase, False
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
