"""What a signed-in customer may do, with no I/O and no JOSE library: web imports this whether or not sign-in is
on, and PyJWT (with cryptography's OpenSSL, ~9 MiB of resident memory) only when it is (guard.py)."""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import Counter

from services.core.purchase import ValidationError

MAX_TOKEN_CHARS = 16 * 1024  # larger than any provider's access token; a bigger one is refused before parsing
REFUSED = Counter("auth_refused_total", "Requests refused by sign-in", ["reason"])


@dataclass(frozen=True)
class Customer:
    id: str  # the user id purchases are made and read under
    name: str | None  # a display name from the token (`name`, else `preferred_username`), if it has one
    expires: float  # the token's exp, seconds since the epoch
    kid: str = ""  # the key that signed the token (a verified token is forgotten with its key)


class NotYours(ValidationError):
    """A signed-in customer asking to buy as, or read the history of, someone else."""

    status = 403


def order_for(customer: Customer, body: object) -> object:
    """A buy's body, made the token's customer's: userId and username from the token (a body's username is
    replaced: the name on a purchase is the signed-in customer's own, whatever a client sends); 403 if the body
    names another customer's userId."""
    if not isinstance(body, dict):
        return body  # validation refuses it
    if "userId" in body and body["userId"] != customer.id:
        REFUSED.labels("forbidden").inc()
        raise NotYours("you may only buy as the signed-in customer", "userId")
    return {**body, "username": customer.name or customer.id, "userId": customer.id}


def check_owner(customer: Customer, user_id: str) -> None:
    if user_id != customer.id:
        REFUSED.labels("forbidden").inc()
        raise NotYours("you may only read your own purchases", "userId")
