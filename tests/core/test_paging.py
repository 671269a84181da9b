import base64
from datetime import UTC, datetime

import pytest

from services.core.paging import DEFAULT_LIMIT, MAX_LIMIT, decode_cursor, encode_cursor, history_filter, parse_page
from services.core.purchase import Purchase, ValidationError

pytestmark = pytest.mark.unit  # make check: no server, no build

PURCHASE = Purchase("0b6f1c2a-9d3e-4f5a-8b7c-6d5e4f3a2b1c", "elad", "555", 1.0, "lamp",
                    datetime(2026, 1, 2, 3, 4, 5, 6000, tzinfo=UTC))


def test_limit_defaults_to_100_and_is_capped_at_1000():
    assert parse_page({}).limit == DEFAULT_LIMIT == 100
    assert parse_page({"limit": "1000"}).limit == MAX_LIMIT
    for bad in ("0", "1001", "-1", "ten", "1.5"):
        with pytest.raises(ValidationError, match="limit"):
            parse_page({"limit": bad})


def test_a_cursor_round_trips_to_the_purchase_it_was_made_from():
    cursor = decode_cursor(encode_cursor(PURCHASE))
    assert (cursor.timestamp, cursor.id) == (PURCHASE.timestamp, PURCHASE.id)
    assert parse_page({"before": encode_cursor(PURCHASE)}).before == cursor


@pytest.mark.parametrize("bad", ["x", "!!!", "WyJ4Il0", "eyJhIjoxfQ"])
def test_a_forged_cursor_is_refused(bad):
    with pytest.raises(ValidationError, match="before"):
        decode_cursor(bad)


def test_user_ids_are_compared_literally_never_as_operators_or_patterns():
    for user_id in (".*", "%25", '{"$ne": null}', "$where"):
        assert history_filter(user_id, None) == {"userId": {"$eq": user_id}}


def test_the_next_page_is_strictly_older_with_ties_broken_by_id():
    query = history_filter("555", decode_cursor(encode_cursor(PURCHASE)))
    assert query["$or"] == [
        {"timestamp": {"$lt": PURCHASE.timestamp}},
        {"timestamp": {"$eq": PURCHASE.timestamp}, "_id": {"$lt": PURCHASE.id}},
    ]


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


@pytest.mark.parametrize("raw", [
    b'["0001-01-01T00:00:00+01:00","x"]',                          # before year 1 in UTC: OverflowError once
    b'["0001-01-01T00:00:00+01:00","0b6f1c2a-9d3e-4f5a-8b7c-6d5e4f3a2b1c"]',
    b"[" * 100_000 + b"]" * 100_000,                                 # RecursionError once
    b'["2026-01-01T00:00:00Z","\\ud800"]',                         # a lone surrogate: UnicodeEncodeError once
    b'["2026-01-01T00:00:00Z","not-a-purchase-id"]',
    b'["2026-01-01T00:00:00Z",["0b6f"]]',
    b'["2026-01-01T00:00:00Z"]',
    b'{"$gt": ""}',
])
def test_crafted_cursors_are_refused_as_bad_input(raw):
    with pytest.raises(ValidationError, match="before"):
        decode_cursor(b64(raw))
