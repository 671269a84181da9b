"""The provider's signing keys: its discovery document names the JWKS, which is fetched with aiohttp and kept.

A token signed with a key id we do not hold makes one fetch, at most once per `jwks_refresh_s` whatever number
of such tokens arrive (a thousand made-up kids cost one fetch, not a thousand); concurrent askers share it.
Keys older than MAX_AGE_S are fetched again in the background, so a key the provider withdrew is dropped. If
the provider cannot be reached, the keys we hold stay in use: tokens they signed still verify.
"""

from __future__ import annotations

import asyncio
import logging
import time

import aiohttp
import jwt
import orjson
from prometheus_client import Counter

from .tokens import signing_keys

log = logging.getLogger(__name__)

FETCH_TIMEOUT_S = 3.0
MAX_AGE_S = 900.0
MAX_DOCUMENT_BYTES = 512 * 1024

FETCHES = Counter("oidc_jwks_fetches_total", "Fetches of the OpenID provider's signing keys", ["outcome"])


class ProviderUnavailable(Exception):
    pass


class KeyStore:
    def __init__(self, issuer: str, refresh_s: float) -> None:
        self.issuer = issuer
        self.refresh_s = refresh_s
        self.keys: dict[str, jwt.PyJWK] = {}
        self.discovery: dict | None = None
        self._fetched_at = 0.0  # monotonic time of the last successful fetch
        self._tried_at = float("-inf")  # ... and of the last attempt, successful or not
        self._fetching: asyncio.Task | None = None
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=FETCH_TIMEOUT_S))
        await self.refresh()  # a provider that is down now leaves us without keys, not without a service

    async def close(self) -> None:
        if self._fetching is not None:
            self._fetching.cancel()
        if self._session is not None:
            await self._session.close()

    def refresh_if_stale(self) -> None:
        """Keys held longer than MAX_AGE_S are fetched again, in the background: the caller goes on with them."""
        if time.monotonic() - self._fetched_at > MAX_AGE_S:
            self._start_fetch()

    async def refresh(self) -> None:
        """Fetch the key set now unless a fetch is under way (then wait for it) or the last began too recently."""
        task = self._start_fetch()
        if task is not None:
            await asyncio.shield(task)

    def _start_fetch(self) -> asyncio.Task | None:
        if self._fetching is None and time.monotonic() - self._tried_at >= self.refresh_s:
            self._tried_at = time.monotonic()
            self._fetching = asyncio.get_running_loop().create_task(self._fetch())
        return self._fetching

    async def _fetch(self) -> None:
        try:
            if self.discovery is None:
                self.discovery = self._checked_discovery(
                    await self._get_json(f"{self.issuer}/.well-known/openid-configuration"))
            keys = signing_keys(await self._get_json(self.discovery["jwks_uri"]))
            self.keys, self._fetched_at = keys, time.monotonic()
            FETCHES.labels("ok").inc()
            log.info("signing keys fetched", extra={"issuer": self.issuer, "key_ids": sorted(keys)})
        except (ProviderUnavailable, ValueError) as exc:
            FETCHES.labels("error").inc()
            log.warning("signing keys could not be fetched; keeping those held",
                        extra={"issuer": self.issuer, "reason": str(exc), "keys_held": len(self.keys)})
        finally:
            self._fetching = None

    def _checked_discovery(self, document: object) -> dict:
        if not isinstance(document, dict) or not isinstance(document.get("jwks_uri"), str):
            raise ValueError("the discovery document names no jwks_uri")
        if document.get("issuer") != self.issuer:  # OpenID Connect Discovery 1.0, section 4.3
            raise ValueError(f"the discovery document's issuer {document.get('issuer')!r} is not {self.issuer!r}")
        return document

    async def _get_json(self, url: str) -> object:
        try:
            async with self._session.get(url, headers={"Accept": "application/json"}) as response:
                if response.status != 200:
                    raise ProviderUnavailable(f"{url} answered {response.status}")
                body = await response.content.read(MAX_DOCUMENT_BYTES + 1)
                if len(body) > MAX_DOCUMENT_BYTES:
                    raise ValueError(f"{url} sent more than {MAX_DOCUMENT_BYTES} bytes")
                return orjson.loads(body)  # not JSON: a ValueError
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise ProviderUnavailable(f"{url}: {exc.__class__.__name__} {exc}") from None
