"""The purchase core without any server: validation, the event's wire format, ids, documents."""

import json
import random
import uuid
from datetime import UTC, datetime

import pytest

from services.core.purchase import (
    ITEMS,
    MAX_PRICE,
    REASONS,
    Order,
    ValidationError,
    decode_event,
    encode_event,
    format_timestamp,
    from_document,
    new_purchase,
    parse_json,
    purchase_id,
    same_order,
    to_document,
    validate_idempotency_key,
    validate_order,
)

pytestmark = pytest.mark.unit  # make check: no server, no build

VALID = {"username": "elad", "userId": "555", "price": 12.0}
NOW = datetime(2026, 11, 25, 5, 44, 48, 738000, tzinfo=UTC)


def order(**changes):
    body = {**VALID, **changes}
    return validate_order({k: v for k, v in body.items() if v is not ...})


def test_a_valid_order_keeps_its_fields():
    assert validate_order({**VALID, "item": "lamp"}) == Order("elad", "555", 12.0, "lamp")


def test_an_integer_price_is_accepted_as_a_number():
    assert order(price=3).price == 3.0


@pytest.mark.parametrize("missing", ["username", "userId", "price"])
def test_a_missing_field_is_named(missing):
    with pytest.raises(ValidationError, match=missing):
        order(**{missing: ...})


@pytest.mark.parametrize("field", ["username", "userId"])
@pytest.mark.parametrize("value", [None, 5, 1.5, True, [], {}, {"$ne": None}])
def test_names_and_user_ids_must_be_strings(field, value):
    with pytest.raises(ValidationError, match=f"'{field}' must be a string"):
        order(**{field: value})


@pytest.mark.parametrize("field", ["username", "userId"])
@pytest.mark.parametrize("value", ["", "   ", "\t\n"])
def test_names_and_user_ids_must_not_be_blank(field, value):
    with pytest.raises(ValidationError, match="empty or blank"):
        order(**{field: value})


@pytest.mark.parametrize("field", ["username", "userId"])
def test_names_and_user_ids_are_at_most_128_characters(field):
    assert getattr(order(**{field: "x" * 128}), "username" if field == "username" else "user_id") == "x" * 128
    with pytest.raises(ValidationError, match="at most 128"):
        order(**{field: "x" * 129})


def test_control_characters_are_refused():
    with pytest.raises(ValidationError, match="control characters"):
        order(userId="a\x00b")


@pytest.mark.parametrize("price", ["12", "12.0", True, False, None, [12], {"v": 12}])
def test_a_price_must_be_a_json_number(price):
    with pytest.raises(ValidationError, match="must be a JSON number"):
        order(price=price)


@pytest.mark.parametrize("price", [0, 0.0, -0.0, -1, -0.01])
def test_a_price_must_be_positive(price):
    with pytest.raises(ValidationError, match="greater than 0"):
        order(price=price)


@pytest.mark.parametrize("price", [float("nan"), float("inf"), float("-inf")])
def test_a_price_must_be_finite(price):
    with pytest.raises(ValidationError, match="finite"):
        order(price=price)


def test_a_price_is_at_most_a_million():
    assert order(price=MAX_PRICE).price == MAX_PRICE
    with pytest.raises(ValidationError, match="at most"):
        order(price=MAX_PRICE + 0.01)
    with pytest.raises(ValidationError, match="at most"):
        order(price=10**400)


@pytest.mark.parametrize("body", [[], "text", 1, None, [VALID]])
def test_the_body_must_be_an_object(body):
    with pytest.raises(ValidationError, match="JSON object"):
        validate_order(body)


@pytest.mark.parametrize("raw", [
    b'{"username": "a", "userId": "b", "price": 1,}',   # trailing comma
    b'{"username": "a"',                                 # truncated
    b"not json",
    b"",
    b'{"price": NaN}',
    b'{"price": Infinity}',
    b'{"price": -Infinity}',
    b"\xff\xfe{}",
])
def test_bodies_that_are_not_strict_json_are_refused(raw):
    with pytest.raises(ValidationError, match="not valid"):
        parse_json(raw)


def test_a_huge_exponent_is_refused_as_not_finite():
    with pytest.raises(ValidationError, match="infinity"):
        validate_order(parse_json(b'{"username": "a", "userId": "b", "price": 1e999}'))


def test_random_ids_differ_and_are_uuids():
    first, second = purchase_id("555", None), purchase_id("555", None)
    assert first != second
    assert uuid.UUID(first).version == 4


def test_an_idempotency_key_derives_the_same_id_for_the_same_user_only():
    assert purchase_id("555", "k1") == purchase_id("555", "k1")
    assert purchase_id("555", "k1") != purchase_id("556", "k1")
    assert purchase_id("555", "k1") != purchase_id("555", "k2")
    # The user id and the key are kept apart: no concatenation collides.
    assert purchase_id("55", "5k") != purchase_id("555", "k")


@pytest.mark.parametrize("key", ["", "x" * 257, "a\nb"])
def test_bad_idempotency_keys_are_refused(key):
    with pytest.raises(ValidationError, match="Idempotency-Key"):
        validate_idempotency_key(key)


def test_an_item_is_picked_when_the_order_names_none():
    purchase = new_purchase(order(), "id", NOW, random.Random(7))
    assert purchase.item in ITEMS
    assert new_purchase(order(item="lamp"), "id", NOW).item == "lamp"


def test_the_event_round_trips():
    purchase = new_purchase(order(username="Zoë", item="lamp"), purchase_id("555", None), NOW)
    raw = encode_event(purchase)
    assert json.loads(raw)["v"] == 1
    assert decode_event(raw) == purchase


def test_the_event_timestamp_is_iso_8601_utc_with_milliseconds():
    assert format_timestamp(NOW) == "2026-11-25T05:44:48.738Z"
    from datetime import timedelta, timezone

    from bson.tz_util import utc as pymongo_utc
    moment = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=pymongo_utc)  # what the store hands back
    assert format_timestamp(moment) == "2026-01-02T03:04:05.678Z"
    assert format_timestamp(moment.astimezone(timezone(timedelta(hours=2)))) == "2026-01-02T03:04:05.678Z"


def test_a_purchases_json_is_made_once_and_an_equal_purchase_is_equal_without_it():
    purchase = new_purchase(Order("ann", "u1", 2.0, "lamp"), purchase_id("u1", "k"), NOW, keyed=True)
    assert purchase.to_json() is purchase.to_json()
    again = new_purchase(Order("ann", "u1", 2.0, "lamp"), purchase_id("u1", "k"), NOW, keyed=True)
    assert again == purchase and hash(again) == hash(purchase) and "_json" not in repr(purchase)


@pytest.mark.parametrize("raw, reason, code", [
    (None, "no value", "no_value"),
    (b"garbage", "not valid JSON", "not_json"),
    (b"[1]", "not a JSON object", "not_an_object"),
    (b'{"v": 99}', "schema version", "schema_version"),
])
def test_undecodable_events_say_why_in_words_and_in_a_code_from_a_fixed_set(raw, reason, code):
    with pytest.raises(ValidationError, match=reason) as refused:
        decode_event(raw)
    assert refused.value.reason == code and code in REASONS


def test_an_event_is_revalidated_on_the_way_in_and_the_code_names_the_field():
    good = json.loads(encode_event(new_purchase(order(), purchase_id("555", None), NOW)))
    for change, reason, code in [({"price": -5}, "greater than 0", "invalid_price"),
                                 ({"id": "x"}, "UUID", "invalid_id"),
                                 ({"timestamp": "yesterday"}, "ISO 8601", "invalid_timestamp"),
                                 ({"userId": ""}, "blank", "invalid_userId"),
                                 ({"price": None, "username": None}, "must be", "invalid_username")]:
        with pytest.raises(ValidationError, match=reason) as refused:
            decode_event(json.dumps({**good, **change}).encode())
        assert refused.value.reason == code and code in REASONS
    without_price = {k: v for k, v in good.items() if k != "price"}
    with pytest.raises(ValidationError) as refused:
        decode_event(json.dumps(without_price).encode())
    assert refused.value.reason == "missing_field"


def test_the_document_uses_the_purchase_id_as_its_key_and_round_trips():
    purchase = new_purchase(order(), purchase_id("555", None), NOW)
    doc = to_document(purchase)
    assert doc["_id"] == purchase.id
    assert from_document(doc) == purchase
    # pymongo without tz_aware hands back naive UTC datetimes.
    assert from_document({**doc, "timestamp": NOW.replace(tzinfo=None)}) == purchase


@pytest.mark.parametrize("text, kind", [
    ("a\u0085b", "control characters"),            # C1: NEXT LINE
    ("a\u009bb", "control characters"),            # C1: CSI
    ("user\u202etxt.exe", "bidirectional formatting characters"),  # RIGHT-TO-LEFT OVERRIDE
    ("a\u2067b", "bidirectional formatting characters"),  # RIGHT-TO-LEFT ISOLATE
    ("a\u200fb", "bidirectional formatting characters"),  # RIGHT-TO-LEFT MARK
    ("a\ud800b", "unpaired surrogates"),
    ("a\ufdd0b", "Unicode noncharacters"),
    ("a\uffffb", "Unicode noncharacters"),
    ("a\U0010fffeb", "Unicode noncharacters"),
])
@pytest.mark.parametrize("field", ["username", "userId", "item"])
def test_text_that_would_display_as_something_else_is_refused_and_named(text, kind, field):
    with pytest.raises(ValidationError) as caught:
        validate_order({**VALID, field: text})
    assert caught.value.message == f"'{field}' must not contain {kind}" and caught.value.field == field


@pytest.mark.parametrize("text", ["\u200b", "\u200b\u200c\u200d", " \ufeff ", "\u2060", "\u3164"])
def test_text_of_invisible_characters_only_is_refused(text):
    with pytest.raises(ValidationError, match="must contain a visible character"):
        validate_order({**VALID, "username": text})


@pytest.mark.parametrize("text", ["Élodie", "日本語", "👨\u200d👩\u200d👧", "O'Brien", ".", "..", "علي"])
def test_ordinary_names_in_any_script_are_accepted(text):
    assert validate_order({**VALID, "username": text, "userId": text}).username == text


@pytest.mark.parametrize("price", [5e-324, 0.001, 0.0099])
def test_a_price_below_a_cent_is_refused(price):
    with pytest.raises(ValidationError, match="at least 0.01"):
        validate_order({**VALID, "price": price})


def test_a_cent_is_a_price():
    assert validate_order({**VALID, "price": 0.01}).price == 0.01


def test_a_keyed_purchase_without_item_always_gets_the_same_item_and_its_retry_is_the_same_order():
    order = validate_order(VALID)
    pid = purchase_id("555", "order-42")
    items = {new_purchase(order, pid, NOW, rng=random.Random(seed), keyed=True).item for seed in range(20)}
    assert len(items) == 1
    first = new_purchase(order, pid, NOW, keyed=True)
    assert same_order(order, first)
    assert same_order(validate_order({**VALID, "item": first.item}), first)


@pytest.mark.parametrize("change", [{"price": 999}, {"username": "mallory"}, {"item": "yacht"}])
def test_the_same_key_with_another_body_is_another_order(change):
    first = new_purchase(validate_order(VALID), purchase_id("555", "order-42"), NOW, keyed=True)
    assert not same_order(validate_order({**VALID, **change}), first)
