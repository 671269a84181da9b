"""The one buy path (services/web/purchases.py) with a publisher and a store that are plain objects: a key's purchase
is made once, published until Kafka takes it, answered the same on every retry, and found in the store once
forgotten; a key reused for another order is refused. Nothing here claims to test Kafka (tests/web/test_kafka_*)."""

from __future__ import annotations

import asyncio

import pytest

from services.common.http import ServiceUnavailable
from services.core.purchase import IdempotencyKeyReused, Order, purchase_id
from services.web.purchases import Purchases

pytestmark = pytest.mark.unit

ORDER = Order("ann", "u1", 2.5, None)


class Publisher:
    """Takes every purchase, or refuses the next `refusals` of them as Kafka does when it cannot take one."""

    def __init__(self, refusals: int = 0) -> None:
        self.attempts, self.published, self.refusals = [], [], refusals

    async def publish(self, purchase, deadline) -> None:
        self.attempts.append(purchase)
        if self.refusals:
            self.refusals -= 1
            raise ServiceUnavailable("Kafka did not acknowledge the purchase in time")
        self.published.append(purchase)


class Store:
    """The api's answer to "is this id stored": what it holds, and how often it was asked."""

    def __init__(self, *stored) -> None:
        self.stored = {p.id: p for p in stored}
        self.asked = 0

    async def stored_purchase(self, user_id, pid, timeout_s):
        self.asked += 1
        assert 0 < timeout_s <= 1.0, "the look-up gets at most a second and a quarter of the deadline"
        return self.stored.get(pid)


def buy(purchases: Purchases, order: Order, key: str | None):
    async def run():
        return await purchases.buy(order, key, asyncio.get_running_loop().time() + 4)
    return asyncio.run(run())


def test_an_unkeyed_buy_is_a_new_purchase_each_time_and_asks_the_store_nothing():
    publisher, store = Publisher(), Store()
    purchases = Purchases(publisher, store)
    (first, before), (second, _) = buy(purchases, ORDER, None), buy(purchases, ORDER, None)
    assert first.id != second.id and not before
    assert publisher.published == [first, second] and store.asked == 0


def test_a_keyed_buy_is_made_once_and_every_retry_answers_the_same_purchase_without_publishing_again():
    publisher, store = Publisher(), Store()
    purchases = Purchases(publisher, store)
    first, made_before = buy(purchases, ORDER, "key-1")
    assert first.id == purchase_id("u1", "key-1") and not made_before
    retried, made_before = buy(purchases, ORDER, "key-1")
    assert retried == first and made_before
    assert publisher.published == [first] and store.asked == 1


def test_a_purchase_kafka_refused_is_published_again_identical_on_the_retry():
    publisher, store = Publisher(refusals=1), Store()
    purchases = Purchases(publisher, store)
    with pytest.raises(ServiceUnavailable):
        buy(purchases, ORDER, "key-2")
    retried, made_before = buy(purchases, ORDER, "key-2")
    assert made_before, "the retry answers the purchase the first request made"
    assert publisher.attempts == [retried, retried], "the same purchase (item, timestamp) published again"
    assert publisher.published == [retried] and retried.id == purchase_id("u1", "key-2")


def test_once_forgotten_a_stored_purchase_is_answered_from_the_store_and_not_published():
    publisher = Publisher()
    made = Purchases(publisher, Store())
    original, _ = buy(made, ORDER, "key-3")
    store, other_publisher = Store(original), Publisher()
    fresh = Purchases(other_publisher, store)  # another web, or this one after forgetting it
    answered, made_before = buy(fresh, ORDER, "key-3")
    assert answered == original and made_before and store.asked == 1
    assert other_publisher.attempts == []


def test_a_key_reused_for_another_order_is_refused_and_the_first_purchase_stands():
    publisher = Publisher()
    purchases = Purchases(publisher, Store())
    first, _ = buy(purchases, ORDER, "key-4")
    with pytest.raises(IdempotencyKeyReused):
        buy(purchases, Order("ann", "u1", 99.0, None), "key-4")
    assert buy(purchases, ORDER, "key-4")[0] == first and publisher.published == [first]
