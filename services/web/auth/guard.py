"""web's side of sign-in: who is asking (the Authorization header's bearer token), and what they may do.

With AUTH_MODE=oidc a buy is made for the token's customer and a history is read only by its own customer;
without a valid token the answer is 401 JSON with `WWW-Authenticate: Bearer` (RFC 6750). Health, readiness,
metrics, the page and its sign-in settings need no token.
"""

from __future__ import annotations

import time

from aiohttp import web
from prometheus_client import Counter

from services.common.http import Unauthorized, json_response
from services.core.config import AuthConfig
from services.core.purchase import ValidationError

from .keys import KeyStore
from .tokens import Customer, TokenRefused, UnknownKey, VerifiedTokens, Verifier

REFUSED = Counter("auth_refused_total", "Requests refused by sign-in", ["reason"])


class NotYours(ValidationError):
    """A signed-in customer asking to buy as, or read the history of, someone else."""

    status = 403


class Authenticator:
    def __init__(self, config: AuthConfig) -> None:
        self.config = config
        self.keys = KeyStore(config.issuer, config.jwks_refresh_s)
        self._verifier = Verifier(config)
        self._verified = VerifiedTokens(config.leeway_s)

    async def customer(self, request: web.Request) -> Customer:
        """The customer the request's bearer token speaks for; Unauthorized otherwise."""
        token = bearer_token(request.headers.get("Authorization"))
        customer = self._verified.get(token, time.time())
        if customer is not None:
            return customer
        try:
            try:
                customer = self._verifier.verify(token, self.keys.keys)
            except UnknownKey:
                await self.keys.refresh()  # once per interval at most, however many tokens ask
                customer = self._verifier.verify(token, self.keys.keys)
        except UnknownKey as exc:
            REFUSED.labels("unknown_key").inc()
            raise Unauthorized(exc.description) from None
        except TokenRefused as exc:
            REFUSED.labels("invalid").inc()
            raise Unauthorized(exc.description) from None
        self.keys.refresh_if_stale()
        self._verified.put(token, customer)
        return customer

    def page_settings(self) -> dict:
        """What the customer page needs to sign in (authorization code flow with PKCE, a public client)."""
        discovery = self.keys.discovery or {}
        return {
            "mode": "oidc",
            "issuer": self.config.issuer,
            "clientId": self.config.client_id or None,
            "customerClaim": self.config.customer_claim,
            "authorizationEndpoint": discovery.get("authorization_endpoint"),
            "tokenEndpoint": discovery.get("token_endpoint"),
            "endSessionEndpoint": discovery.get("end_session_endpoint"),
        }


def bearer_token(header: str | None) -> str:
    if header is None:
        REFUSED.labels("missing").inc()
        raise Unauthorized("an Authorization: Bearer token is required", token_presented=False)
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        REFUSED.labels("invalid").inc()
        raise Unauthorized("the Authorization header must be 'Bearer <token>'")
    return token


def order_for(customer: Customer, body: object) -> object:
    """A buy's body, made the token's customer's: userId (and, if absent, username) from the token; 403 if the
    body names another customer."""
    if not isinstance(body, dict):
        return body  # validation refuses it
    if "userId" in body and body["userId"] != customer.id:
        REFUSED.labels("forbidden").inc()
        raise NotYours("you may only buy as the signed-in customer", "userId")
    return {"username": customer.name or customer.id, **body, "userId": customer.id}


def check_owner(customer: Customer, user_id: str) -> None:
    if user_id != customer.id:
        REFUSED.labels("forbidden").inc()
        raise NotYours("you may only read your own purchases", "userId")


async def settings(request: web.Request) -> web.Response:
    """GET /auth/config: how the page signs in (or that it needs not)."""
    authenticator: Authenticator | None = request.app.get(AUTHENTICATOR)
    if authenticator is None:
        return json_response({"mode": "off"})
    if authenticator.keys.discovery is None:
        await authenticator.keys.refresh()
    return json_response(authenticator.page_settings())


AUTHENTICATOR = web.AppKey("authenticator", Authenticator)


async def authenticator_ctx(app: web.Application):
    authenticator = app[AUTHENTICATOR]
    await authenticator.keys.start()
    yield
    await authenticator.keys.close()
