"""The pieces of both services' OpenAPI 3.1 documents (served at /openapi.json), and the handler serving one.

The documents are written here, next to the code, from the same limits the core enforces; tests/test_openapi.py
sends schemathesis-generated requests to both services on the real stack and checks every answer against them.
"""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web

from services.core.paging import MAX_LIMIT
from services.core.purchase import MAX_TEXT_LENGTH

TEXT = {"type": "string", "minLength": 1, "maxLength": MAX_TEXT_LENGTH,
        "description": "Not blank; no control, bidirectional-formatting or noncharacter code points"}

COMPONENTS: dict[str, Any] = {
    "schemas": {
        "Error": {
            "type": "object",
            "required": ["error"],
            "properties": {
                "error": {"type": "string", "description": "What is wrong, for a person"},
                "field": {"type": "string", "description": "The field, parameter or header at fault"},
                "key": {"type": "string", "description": "422: the Idempotency-Key already used"},
                "id": {"type": "string", "description": "422: the purchase that key made"},
            },
        },
        "Purchase": {
            "type": "object",
            "required": ["id", "username", "userId", "price", "item", "timestamp"],
            "properties": {
                "id": {"type": "string", "format": "uuid"},
                "username": {"type": "string"},
                "userId": {"type": "string"},
                "price": {"type": "number"},
                "item": {"type": "string"},
                "timestamp": {"type": "string", "format": "date-time", "description": "UTC, milliseconds"},
            },
        },
        "History": {"type": "array", "items": {"$ref": "#/components/schemas/Purchase"},
                    "description": "Newest first"},
        "Status": {"type": "object", "required": ["status"], "properties": {"status": {"type": "string"}}},
    },
    "parameters": {
        "userIdPath": {"name": "userId", "in": "path", "required": True, "schema": TEXT},
        "limit": {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT,
                                                              "default": 100}},
        "before": {"name": "before", "in": "query", "schema": {"type": "string"},
                   "description": "The X-Next-Before of the previous page: only older purchases"},
    },
    "headers": {
        "Retry-After": {"schema": {"type": "integer", "minimum": 1}, "description": "Seconds to wait"},
        "X-Next-Before": {"schema": {"type": "string"}, "description": "Cursor of the next page, when full"},
    },
}


def error(description: str, retry_after: bool = False) -> dict[str, Any]:
    response: dict[str, Any] = {"description": description,
                                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
    if retry_after:
        response["headers"] = {"Retry-After": {"$ref": "#/components/headers/Retry-After"}}
    return response


def history_responses(unavailable: str) -> dict[str, Any]:
    return {
        "200": {"description": "The user's purchases, newest first (an unknown user has none)",
                "headers": {"X-Next-Before": {"$ref": "#/components/headers/X-Next-Before"}},
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/History"}}}},
        "400": error("A bad user id, limit, before or id"),
        "404": error("No such path (an empty user id)"),
        "503": error(unavailable, retry_after=True),
    }


def health_paths(ready_means: str) -> dict[str, Any]:
    status = {"application/json": {"schema": {"$ref": "#/components/schemas/Status"}}}
    return {
        "/healthz": {"get": {"summary": "Liveness", "responses": {
            "200": {"description": "Alive", "content": status},
            "503": {"description": "Wedged beyond recovery: restart the process", "content": status}}}},
        "/readyz": {"get": {"summary": f"Readiness: {ready_means}", "responses": {
            "200": {"description": "Ready", "content": status},
            "503": {"description": "Not ready, and why", "content": status}}}},
        "/openapi.json": {"get": {"summary": "This document", "responses": {
            "200": {"description": "OpenAPI 3.1", "content": {"application/json": {"schema": {"type": "object"}}}}}}},
    }


def document(title: str, description: str, paths: dict[str, Any]) -> dict[str, Any]:
    return {"openapi": "3.1.0", "info": {"title": title, "version": "1.0.0", "description": description},
            "paths": paths, "components": COMPONENTS}


def handler(doc: dict[str, Any]):
    """A GET handler answering `doc`, encoded once."""
    body = orjson.dumps(doc)

    async def openapi(request: web.Request) -> web.Response:
        return web.Response(body=body, content_type="application/json")
    return openapi

