"""History paging: `limit` and the opaque `before` cursor (newest first, ties broken by id)."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

from .purchase import Purchase, ValidationError, format_timestamp, parse_timestamp, validate_purchase_id

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000


@dataclass(frozen=True, slots=True)
class Cursor:
    """Points just past the last purchase of a page: the next page holds strictly older purchases."""

    timestamp: datetime
    id: str


@dataclass(frozen=True, slots=True)
class Page:
    limit: int
    before: Cursor | None


def encode_cursor(purchase: Purchase) -> str:
    raw = json.dumps([format_timestamp(purchase.timestamp), purchase.id], separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(value: str) -> Cursor:
    """The cursor a page's X-Next-Before carried. Anything else, however crafted, is a 400, never a 500:
    orjson refuses deep nesting and lone surrogates, the id must be a purchase id (a UUID), the time a real one."""
    try:
        raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
        ts, purchase_id = orjson.loads(raw)
        if not isinstance(purchase_id, str):
            raise ValueError
        validate_purchase_id(purchase_id, "before")
        return Cursor(parse_timestamp(ts), purchase_id)
    except (binascii.Error, ValueError, TypeError, ValidationError):
        raise ValidationError("'before' is not a cursor this service issued", "before") from None


def parse_page(query: Mapping[str, str]) -> Page:
    raw_limit = query.get("limit")
    if raw_limit is None:
        limit = DEFAULT_LIMIT
    else:
        try:
            limit = int(raw_limit)
        except ValueError:
            raise ValidationError("'limit' must be an integer", "limit") from None
        if not 1 <= limit <= MAX_LIMIT:
            raise ValidationError(f"'limit' must be between 1 and {MAX_LIMIT}", "limit")
    before = query.get("before")
    return Page(limit, decode_cursor(before) if before else None)


def history_filter(user_id: str, before: Cursor | None, purchase_id: str | None = None) -> dict[str, Any]:
    """A MongoDB filter; user_id is always compared as a literal string, never as an operator."""
    query: dict[str, Any] = {"userId": {"$eq": user_id}}
    if purchase_id is not None:
        query["_id"] = {"$eq": purchase_id}
    if before is not None:
        query["$or"] = [
            {"timestamp": {"$lt": before.timestamp}},
            {"timestamp": {"$eq": before.timestamp}, "_id": {"$lt": before.id}},
        ]
    return query


HISTORY_SORT = [("timestamp", -1), ("_id", -1)]
