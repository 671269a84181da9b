"""The purchase model: what a valid order is, how a purchase travels on Kafka and how it is stored."""

from __future__ import annotations

import json
import math
import os
import random
import re
import threading
import unicodedata
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

SCHEMA_VERSION = 1
MAX_TEXT_LENGTH = 128
MAX_PRICE = 1_000_000
MIN_PRICE = 0.01  # a cent: anything less cannot be shown, charged or refunded
MAX_IDEMPOTENCY_KEY_LENGTH = 256
# The fields of a purchase and of its event, as a ValidationError names them.
FIELDS = frozenset({"username", "userId", "price", "item", "id", "timestamp", "v"})
# Every ValidationError.reason there is: why an event can never be stored (a metric's label values, known up front).
REASONS = ("no_value", "not_json", "not_an_object", "schema_version", "missing_field", "invalid",
           *sorted(f"invalid_{field}" for field in FIELDS))

# A purchase id derived from an Idempotency-Key lives in this namespace, so the same key sent by
# the same user always names the same purchase.
_IDEMPOTENCY_NAMESPACE = uuid.UUID("5b0c1a4e-3f7d-4c55-9d8e-2a6f0e4b9c11")

# Characters a name, user id or item must not hold: C0 and C1 controls (and DEL); bidirectional overrides,
# embeddings, isolates and marks, which make a text display as something else ("Trojan Source"); surrogates;
# noncharacters (U+FDD0-U+FDEF and the last two code points of every plane).
_CONTROL = "\x00-\x1f\x7f-\x9f"
_BIDI = "\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069"
_SURROGATE = "\ud800-\udfff"
_NONCHARACTER = "\ufdd0-\ufdef" + "".join(f"{chr(plane * 0x10000 + 0xFFFE)}{chr(plane * 0x10000 + 0xFFFF)}"
                                             for plane in range(17))
_FORBIDDEN = re.compile(f"[{_CONTROL}{_BIDI}{_SURROGATE}{_NONCHARACTER}]")
_FORBIDDEN_KINDS = (
    (re.compile(f"[{_CONTROL}]"), "control characters"),
    (re.compile(f"[{_BIDI}]"), "bidirectional formatting characters"),
    (re.compile(f"[{_SURROGATE}]"), "unpaired surrogates"),
    (re.compile(f"[{_NONCHARACTER}]"), "Unicode noncharacters"),
)
# Anything printable in ASCII is visible; only a text without it needs the slower look below.
_VISIBLE_ASCII = re.compile(r"[!-~]")
# Format characters (zero-width space, joiners, BOM, ...), separators, and fillers that render as nothing.
_INVISIBLE_CATEGORIES = {"Cf", "Zs", "Zl", "Zp", "Mn", "Me"}
_INVISIBLE_LETTERS = {"\u115f", "\u1160", "\u3164", "\uffa0"}  # Hangul fillers

ITEMS = (
    "coffee mug", "notebook", "headphones", "desk lamp", "water bottle", "backpack",
    "keyboard", "plant pot", "sunglasses", "umbrella", "board game", "tea sampler",
)


class ValidationError(ValueError):
    """Input that can never become a purchase. `message` is safe to show to a client; `reason` is a word from a
    small, fixed set (a metric's label: why an event was dead-lettered): `invalid_<field>` for a field's value,
    else the one its raiser names."""

    status = 400

    def __init__(self, message: str, field: str | None = None, *, reason: str | None = None, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.details = details
        self.reason = reason or (f"invalid_{field}" if field in FIELDS else "invalid")


class IdempotencyKeyReused(ValidationError):
    """The Idempotency-Key already made a purchase, and this request asks for a different one."""

    status = 422

    def __init__(self, key: str, purchase_id: str) -> None:
        super().__init__(f"Idempotency-Key {key!r} was already used for purchase {purchase_id} with another body "
                         "(username, price or item); use a new key for a new purchase",
                         "Idempotency-Key", key=key, id=purchase_id)


@dataclass(frozen=True, slots=True)
class Order:
    """A validated request to buy: what the client sent, checked."""

    username: str
    user_id: str
    price: float
    item: str | None


@dataclass(frozen=True, slots=True)
class Purchase:
    id: str
    username: str
    user_id: str
    price: float
    item: str
    timestamp: datetime  # UTC, millisecond precision (what BSON dates hold)
    _json: dict[str, Any] | None = field(default=None, init=False, repr=False, compare=False)

    def to_json(self) -> dict[str, Any]:
        """The purchase as the HTTP API serves it. Made once a purchase (web needs it for the event and for the
        answer), then shared: read it, never change it."""
        if self._json is None:
            object.__setattr__(self, "_json", {
                "id": self.id,
                "username": self.username,
                "userId": self.user_id,
                "price": self.price,
                "item": self.item,
                "timestamp": format_timestamp(self.timestamp),
            })
        return self._json


def purchase_from_json(body: dict[str, Any]) -> Purchase:
    """A purchase as the HTTP API serves it (`Purchase.to_json`), read back."""
    return Purchase(body["id"], body["username"], body["userId"], body["price"], body["item"],
                    parse_timestamp(body["timestamp"]))


def parse_json(raw: bytes) -> Any:
    """Strict JSON (orjson): UTF-8, no NaN/Infinity or numbers that overflow to it, no trailing commas."""
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ValidationError(f"body is not valid JSON: {exc}", reason="not_json") from None


def validate_text(value: Any, field: str) -> str:
    """A non-blank string of at most MAX_TEXT_LENGTH characters with no control characters."""
    if not isinstance(value, str):
        raise ValidationError(f"'{field}' must be a string", field)
    if not value.strip():
        raise ValidationError(f"'{field}' must not be empty or blank", field)
    if len(value) > MAX_TEXT_LENGTH:
        raise ValidationError(f"'{field}' must be at most {MAX_TEXT_LENGTH} characters", field)
    if _FORBIDDEN.search(value):
        kind = next(kind for pattern, kind in _FORBIDDEN_KINDS if pattern.search(value))
        raise ValidationError(f"'{field}' must not contain {kind}", field)
    if not _VISIBLE_ASCII.search(value) and all(
            unicodedata.category(c) in _INVISIBLE_CATEGORIES or c in _INVISIBLE_LETTERS or c.isspace() for c in value):
        raise ValidationError(f"'{field}' must contain a visible character", field)
    return value


def validate_user_id(value: Any) -> str:
    return validate_text(value, "userId")


def validate_price(value: Any) -> float:
    # bool is a subclass of int in Python, but `true` is not a price.
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValidationError("'price' must be a JSON number", "price")
    if isinstance(value, float) and not math.isfinite(value):
        raise ValidationError("'price' must be a finite number", "price")
    if value <= 0:
        raise ValidationError("'price' must be greater than 0", "price")
    if value < MIN_PRICE:
        raise ValidationError(f"'price' must be at least {MIN_PRICE}", "price")
    if value > MAX_PRICE:
        raise ValidationError(f"'price' must be at most {MAX_PRICE}", "price")
    return float(value)


def validate_order(body: Any) -> Order:
    if not isinstance(body, dict):
        raise ValidationError("body must be a JSON object", reason="not_an_object")
    missing = [name for name in ("username", "userId", "price") if name not in body]
    if missing:
        raise ValidationError(f"missing field(s): {', '.join(missing)}", missing[0], reason="missing_field")
    item = body.get("item")
    return Order(
        username=validate_text(body["username"], "username"),
        user_id=validate_user_id(body["userId"]),
        price=validate_price(body["price"]),
        item=None if item is None else validate_text(item, "item"),
    )


def validate_idempotency_key(value: str | None) -> str | None:
    if value is None:
        return None
    if not value or len(value) > MAX_IDEMPOTENCY_KEY_LENGTH or not value.isprintable():
        raise ValidationError(
            f"Idempotency-Key must be 1 to {MAX_IDEMPOTENCY_KEY_LENGTH} printable characters", "Idempotency-Key"
        )
    return value


class _RandomBytes:
    """os.urandom, fetched 4 KiB at a time: uuid4() makes one system call per id, a measurable cost per buy."""

    def __init__(self) -> None:
        self._pool = b""
        self._used = 0
        self._lock = threading.Lock()

    def take16(self) -> bytes:
        with self._lock:
            if self._used + 16 > len(self._pool):
                self._pool, self._used = os.urandom(4096), 0
            self._used += 16
            return self._pool[self._used - 16:self._used]


_random = _RandomBytes()


def purchase_id(user_id: str, idempotency_key: str | None) -> str:
    """A fresh random id (UUID 4), or, with an Idempotency-Key, the same id every time for that user and key."""
    if idempotency_key is None:
        return str(uuid.UUID(bytes=_random.take16(), version=4))
    return str(uuid.uuid5(_IDEMPOTENCY_NAMESPACE, json.dumps([user_id, idempotency_key])))


def validate_purchase_id(value: Any, field: str = "id") -> str:
    """A purchase id: a UUID in its canonical text form, as web makes them."""
    try:
        if str(uuid.UUID(value)) == value:
            return value
    except (TypeError, ValueError, AttributeError):
        pass
    raise ValidationError(f"'{field}' must be a purchase id (a UUID)", field)


def utc_now() -> datetime:
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


def keyed_item(purchase_id: str) -> str:
    """The item of a purchase made with an Idempotency-Key that names none: derived from its id, so that a
    retry with the same key buys the same item."""
    return ITEMS[uuid.UUID(purchase_id).int % len(ITEMS)]


def new_purchase(order: Order, purchase_id: str, now: datetime, rng: random.Random | None = None,
                 keyed: bool = False) -> Purchase:
    if order.item is not None:
        item = order.item
    elif keyed:
        item = keyed_item(purchase_id)
    else:
        item = (rng or random).choice(ITEMS)
    return Purchase(purchase_id, order.username, order.user_id, order.price, item, now)


def same_order(order: Order, purchase: Purchase) -> bool:
    """Whether `order`, sent with the Idempotency-Key that made `purchase`, asks for that same purchase."""
    item = order.item if order.item is not None else keyed_item(purchase.id)
    return (order.username, order.user_id, order.price, item) == (
        purchase.username, purchase.user_id, purchase.price, purchase.item)


_NO_OFFSET = timedelta(0)


def format_timestamp(ts: datetime) -> str:
    """ISO 8601 in UTC to the millisecond, with a Z: "2026-12-04T20:49:13.335Z"."""
    if ts.tzinfo is not UTC and ts.utcoffset() != _NO_OFFSET:  # pymongo's own UTC is another object
        ts = ts.astimezone(UTC)
    return (f"{ts.year:04d}-{ts.month:02d}-{ts.day:02d}T{ts.hour:02d}:{ts.minute:02d}:{ts.second:02d}."
            f"{ts.microsecond // 1000:03d}Z")


def parse_timestamp(value: Any) -> datetime:
    if not isinstance(value, str):
        raise ValidationError("'timestamp' must be an ISO 8601 string", "timestamp")
    try:
        ts = datetime.fromisoformat(value)
    except ValueError:
        raise ValidationError("'timestamp' must be an ISO 8601 string", "timestamp") from None
    if ts.tzinfo is None:
        raise ValidationError("'timestamp' must carry a UTC offset", "timestamp")
    try:
        return ts.astimezone(UTC)
    except OverflowError:  # e.g. 0001-01-01T00:00:00+01:00, which is before year 1 in UTC
        raise ValidationError("'timestamp' is out of range", "timestamp") from None


# --- the Kafka event -------------------------------------------------------------------------------

def encode_event(purchase: Purchase) -> bytes:
    """The value of a record on the purchases topic (the key is the userId)."""
    return orjson.dumps({"v": SCHEMA_VERSION, **purchase.to_json()})


def decode_event(raw: bytes | None) -> Purchase:
    """Parse and re-validate an event; ValidationError means it can never be stored (dead-letter it)."""
    if raw is None:
        raise ValidationError("event has no value", reason="no_value")
    body = parse_json(raw)
    if not isinstance(body, dict):
        raise ValidationError("event is not a JSON object", reason="not_an_object")
    if body.get("v") != SCHEMA_VERSION:
        raise ValidationError(f"unsupported schema version {body.get('v')!r}", "v", reason="schema_version")
    order = validate_order(body)
    event_id = validate_purchase_id(body.get("id"), "id")
    return Purchase(
        id=event_id,
        username=order.username,
        user_id=order.user_id,
        price=order.price,
        item=validate_text(body.get("item"), "item"),
        timestamp=parse_timestamp(body.get("timestamp")),
    )


# --- the MongoDB document --------------------------------------------------------------------------

def to_document(purchase: Purchase) -> dict[str, Any]:
    """The stored shape: the purchase id is the `_id`, so a redelivered event can never be stored twice."""
    return {
        "_id": purchase.id,
        "username": purchase.username,
        "userId": purchase.user_id,
        "price": purchase.price,
        "item": purchase.item,
        "timestamp": purchase.timestamp,
    }


def from_document(doc: dict[str, Any]) -> Purchase:
    ts = doc["timestamp"]
    if ts.tzinfo is None:  # pymongo hands back naive UTC datetimes unless told otherwise
        ts = ts.replace(tzinfo=UTC)
    return Purchase(doc["_id"], doc["username"], doc["userId"], doc["price"], doc["item"], ts)
