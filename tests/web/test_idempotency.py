"""web's memory of keyed purchases (services/web/idempotency.py): bounded, oldest forgotten first, and once
acknowledged always acknowledged."""

import pytest

from services.core.purchase import Order, new_purchase, purchase_id, utc_now
from services.web.idempotency import KeyedPurchases

pytestmark = pytest.mark.unit


def purchase(key: str):
    order = Order("ann", "u1", 2.0, None)
    return new_purchase(order, purchase_id("u1", key), utc_now(), keyed=True)


def test_a_remembered_purchase_is_found_by_its_id_and_remembering_it_again_keeps_the_first():
    memory = KeyedPurchases()
    first = purchase("k1")
    entry = memory.remember(first)
    assert memory.get(first.id) is entry and entry.purchase is first and not entry.acknowledged
    again = memory.remember(purchase("k1"))  # the same id, made again (another timestamp)
    assert again is entry and again.purchase is first
    assert memory.get(purchase_id("u1", "other")) is None


def test_an_acknowledgement_sticks_and_a_later_unacknowledged_remember_does_not_undo_it():
    memory = KeyedPurchases()
    p = purchase("k1")
    memory.remember(p, acknowledged=True)
    assert memory.remember(p, acknowledged=False).acknowledged
    q = purchase("k2")
    memory.remember(q)
    assert memory.remember(q, acknowledged=True).acknowledged


def test_beyond_its_capacity_the_oldest_purchase_is_forgotten_first():
    memory = KeyedPurchases(capacity=3)
    made = [memory.remember(purchase(f"k{i}")).purchase for i in range(4)]
    assert memory.get(made[0].id) is None
    assert all(memory.get(p.id) is not None for p in made[1:])
