"""The purchases web made for Idempotency-Keys, remembered so that a retry is answered with the very same one.

A 503 means "outcome unknown": the broker may have the purchase although its acknowledgement never came. The
client retries with the same key, which derives the same id. Remembering the purchase made for that id (with
its item and timestamp) lets web publish the identical event again, or, once acknowledged, answer it without
publishing: the retry's answer is exactly what is, or will be, stored. Bounded: the oldest are forgotten first;
once stored, the store answers for them (see HistoryClient.stored_purchase). purchases.py uses it.
"""

from __future__ import annotations

import collections
from dataclasses import dataclass

from services.core.purchase import Purchase

DEFAULT_CAPACITY = 10_000


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
