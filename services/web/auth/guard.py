"""web's side of sign-in: who is asking (the Authorization header's bearer token), and what they may do.

With AUTH_MODE=oidc a buy is made for the token's customer and a history is read only by its own customer;
without a valid token the answer is 401 JSON with `WWW-Authenticate: Bearer` (RFC 6750). Health, readiness,
metrics, the page and its sign-in settings need no token.
"""

from __future__ import annotations

import logging
import time
from urllib.parse import urlsplit

from aiohttp import web

from services.common.http import Unauthorized
from services.core.config import AuthConfig

from .keys import KeyStore
from .rules import REFUSED, Customer
from .tokens import TokenRefused, UnknownKey, VerifiedTokens, Verifier

log = logging.getLogger(__name__)


class Authenticator:
    def __init__(self, config: AuthConfig) -> None:
        self.config = config
        self._verifier = Verifier(config)
        self._verified = VerifiedTokens(config.leeway_s, config.jwks_max_age_s)
        self.keys = KeyStore(config.issuer, config.jwks_refresh_s, config.jwks_max_age_s,
                             on_fetched=self._key_set_fetched)
        self._origins: tuple[dict | None, tuple[str, ...]] | None = None

    def _key_set_fetched(self, kids: set[str], now: float) -> None:
        forgotten = self._verified.key_set_fetched(kids, now)
        if forgotten:
            log.warning("verified tokens forgotten: their signing key is no longer the provider's",
                        extra={"tokens": forgotten, "key_ids": sorted(kids)})

    async def customer(self, request: web.Request) -> Customer:
        """The customer the request's bearer token speaks for; Unauthorized otherwise."""
        token = bearer_token(request.headers.get("Authorization"))
        now = time.time()
        customer = self._verified.get(token, now)
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
        except Exception:  # a bug, not the client's: still a 401 (never a 5xx for a token), and said in the log
            log.exception("token verification failed unexpectedly")
            REFUSED.labels("invalid").inc()
            raise Unauthorized("the token could not be verified") from None
        self._verified.put(token, customer, now)
        return customer

    def origins(self) -> tuple[str, ...]:
        """The origins the page talks to when it signs in: the issuer's and the token endpoint's (which may live
        elsewhere), for the Content-Security-Policy's connect-src. Worked out again only when discovery changes."""
        discovery = self.keys.discovery
        if self._origins is None or self._origins[0] is not discovery:
            endpoints = [self.config.issuer, (discovery or {}).get("token_endpoint")]
            found = {origin(url) for url in endpoints if isinstance(url, str) and url.startswith(("https://", "http://"))}
            self._origins = (discovery, tuple(sorted(found)))
        return self._origins[1]

    async def page_settings(self) -> dict:
        """What the customer page needs to sign in (authorization code flow with PKCE, a public client)."""
        if self.keys.discovery is None:
            await self.keys.refresh()
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

    def cleanup_ctx(self):
        """For app.cleanup_ctx: the provider's keys fetched at start, the client closed at the end."""
        async def keys(app: web.Application):
            await self.keys.start()
            yield
            await self.keys.close()
        return keys


def bearer_token(header: str | None) -> str:
    if header is None:
        REFUSED.labels("missing").inc()
        raise Unauthorized("an Authorization: Bearer token is required", token_presented=False)
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or not token.isascii() or not token.isprintable():
        # Not ASCII: bytes that are not UTF-8 arrive as surrogates, which no JWS holds.
        REFUSED.labels("invalid").inc()
        raise Unauthorized("the Authorization header must be 'Bearer <token>', the token printable ASCII")
    return token


def origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"
