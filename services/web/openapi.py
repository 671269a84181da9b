"""web's OpenAPI 3.1 document, served at /openapi.json: with sign-in on, it declares the bearer scheme."""

from typing import Any

from services.common import openapi
from services.common.openapi import TEXT, error, health_paths, history_responses
from services.core.config import AuthConfig
from services.core.purchase import MAX_IDEMPOTENCY_KEY_LENGTH, MAX_PRICE, MIN_PRICE

BUY_BODY = {
    "type": "object",
    "required": ["username", "userId", "price"],
    "properties": {
        "username": TEXT,
        "userId": TEXT,
        "price": {"type": "number", "minimum": MIN_PRICE, "maximum": MAX_PRICE},
        "item": {**TEXT, "description": "Omitted: a random item (with an Idempotency-Key, the same one every time)"},
    },
}

ACCEPTED = {
    "type": "object",
    "required": ["message", "id", "purchase"],
    "properties": {"message": {"type": "string"}, "id": {"type": "string", "format": "uuid"},
                   "purchase": {"$ref": "#/components/schemas/Purchase"}},
}

BUY = {
    "summary": "Buy: published to Kafka, answered once the broker acknowledged it (acks=all)",
    "parameters": [{
        "name": "Idempotency-Key", "in": "header", "required": False,
        "schema": {"type": "string", "minLength": 1, "maxLength": MAX_IDEMPOTENCY_KEY_LENGTH},
        "description": "Printable characters. The same key and body always answer the same purchase; a 503 is "
                       "retried with the same key",
    }],
    "requestBody": {"required": True, "content": {"application/json": {"schema": BUY_BODY}}},
    "responses": {
        "202": {"description": "Accepted: Kafka has it; it will be stored exactly once",
                "headers": {"Idempotent-Replayed": {"schema": {"const": "true"},
                                                    "description": "This key's purchase, answered again"}},
                "content": {"application/json": {"schema": ACCEPTED}}},
        "400": error("Not a valid purchase (the field is named), or a bad Idempotency-Key"),
        "408": error("The body did not arrive within 10 s"),
        "413": error("Body over 64 KiB"),
        "415": error("Content-Type is not application/json"),
        "422": error("The Idempotency-Key already made a purchase with another body"),
        "503": error("Outcome unknown (Kafka unavailable or too slow): retry with the same Idempotency-Key",
                     retry_after=True),
    },
}

HISTORY = {
    "summary": "A customer's purchases, newest first",
    "parameters": [{"$ref": "#/components/parameters/userIdPath"}, {"$ref": "#/components/parameters/limit"},
                   {"$ref": "#/components/parameters/before"}],
    "responses": history_responses("The api service is unavailable"),
}

AUTH_SETTINGS = {
    "summary": "How the customer page signs in: {mode: off}, or the provider and public client for OpenID Connect",
    "responses": {"200": {"description": "Sign-in settings",
                          "content": {"application/json": {"schema": {"type": "object", "required": ["mode"]}}}}},
}

SIGNED_IN = {
    "401": error("No valid bearer token (RFC 6750: see WWW-Authenticate)"),
    "403": error("The token's customer is not the one named"),
}


def document(auth: AuthConfig) -> dict[str, Any]:
    buy, history = BUY, HISTORY
    if auth.enabled:
        buy = {**BUY, "security": [{"bearer": []}], "responses": {**BUY["responses"], **SIGNED_IN},
               "description": "The customer is the token's; a body userId, if any, must be theirs"}
        history = {**HISTORY, "security": [{"bearer": []}], "responses": {**HISTORY["responses"], **SIGNED_IN}}
    doc = openapi.document(
        "Random Item Purchase System: web",
        "Customer-facing: buy (published to Kafka) and read a customer's history (served by the api service).",
        {
            "/api/buy": {"post": buy},
            "/api/user/{userId}/purchases": {"get": history},
            "/api/getAllUserBuys/{userId}": {"get": {**history, "summary": "The same (the original system's path)"}},
            "/": {"get": {"summary": "The customer page", "responses": {
                "200": {"description": "HTML", "content": {"text/html": {"schema": {"type": "string"}}}}}}},
            "/auth/config": {"get": AUTH_SETTINGS},
            **health_paths("can Kafka take a purchase now (a live metadata check of the topic)"),
        },
    )
    if auth.enabled:
        doc["components"] = {**doc["components"], "securitySchemes": {"bearer": {
            "type": "http", "scheme": "bearer", "bearerFormat": "JWT",
            "description": f"An access token from {auth.issuer} for the audience {auth.audience}"}}}
    return doc


DOCUMENT = document(AuthConfig())
