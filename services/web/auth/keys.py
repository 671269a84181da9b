"""The provider's signing keys: its discovery document names the JWKS, which is fetched with aiohttp and kept.

A token signed with a key id we do not hold makes one fetch, at most once per `jwks_refresh_s` whatever number
of such tokens arrive (a thousand made-up kids cost one fetch, not a thousand); concurrent askers share it.
The key set is fetched again every `max_age_s` in the background, so a key the provider withdrew is dropped (and
with it every verified token it signed: `on_fetched`). If the provider cannot be reached, the keys we hold stay in
use: tokens they signed still verify. A document is read whole, however it arrives (in chunks, in small TLS
records, slowly), up to MAX_DOCUMENT_BYTES; a bigger one is refused.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

import aiohttp
import jwt
import orjson
from prometheus_client import Counter

from .tokens import signing_keys

log = logging.getLogger(__name__)

FETCH_TIMEOUT_S = 3.0
MAX_DOCUMENT_BYTES = 512 * 1024

FETCHES = Counter("oidc_jwks_fetches_total", "Fetches of the OpenID provider's signing keys", ["outcome"])


class ProviderUnavailable(Exception):
    pass


def discovery_url(issuer: str) -> str:
    """OpenID Connect Discovery 1.0, section 4: a terminating / of the issuer is removed before the well-known path
    is appended (the issuer itself stays as given: a token's iss must equal it)."""
    return f"{issuer.rstrip('/')}/.well-known/openid-configuration"


class KeyStore:
    def __init__(self, issuer: str, refresh_s: float, max_age_s: float,
                 on_fetched: Callable[[set[str], float], object] | None = None) -> None:
        self.issuer = issuer
        self.refresh_s = refresh_s
        self.max_age_s = max_age_s
        self.on_fetched = on_fetched  # (the key ids a fresh key set lists, when: time.time())
        self.keys: dict[str, jwt.PyJWK] = {}
        self.discovery: dict | None = None
        self._tried_at = float("-inf")  # monotonic time of the last attempt, successful or not
        self._fetching: asyncio.Task | None = None
        self._periodic: asyncio.Task | None = None
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=FETCH_TIMEOUT_S))
        await self.refresh()  # a provider that is down now leaves us without keys, not without a service
        self._periodic = asyncio.get_running_loop().create_task(self._refresh_periodically())

    async def close(self) -> None:
        for task in (self._fetching, self._periodic):
            if task is not None:
                task.cancel()
        if self._session is not None:
            await self._session.close()

    async def _refresh_periodically(self) -> None:
        while True:
            await asyncio.sleep(self.max_age_s)
            await self.refresh()

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
                self.discovery = self._checked_discovery(await self._get_json(discovery_url(self.issuer)))
            key_set = signing_keys(await self._get_json(self.discovery["jwks_uri"]))
            if key_set.skipped:
                log.warning("key set entries skipped; the others are used",
                            extra={"issuer": self.issuer, "skipped": key_set.skipped})
            withdrawn = sorted(set(self.keys) - set(key_set.keys))
            self.keys = key_set.keys
            FETCHES.labels("ok").inc()
            if self.on_fetched is not None:
                self.on_fetched(set(key_set.keys), time.time())
            log.info("signing keys fetched", extra={"issuer": self.issuer, "key_ids": sorted(key_set.keys),
                                                    "withdrawn": withdrawn})
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
                return orjson.loads(await read_whole(response, url))  # not JSON: a ValueError
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise ProviderUnavailable(f"{url}: {exc.__class__.__name__} {exc}") from None


async def read_whole(response: aiohttp.ClientResponse, url: str, limit: int = MAX_DOCUMENT_BYTES) -> bytes:
    """The whole body, as many pieces as it comes in (`content.read(n)` answers with what has arrived so far, not n
    bytes); ValueError past `limit`, said before any of it is read when the Content-Length says so."""
    if response.content_length is not None and response.content_length > limit:
        raise ValueError(f"{url} is {response.content_length} bytes, more than the {limit} accepted")
    body = bytearray()
    async for chunk in response.content.iter_any():
        body += chunk
        if len(body) > limit:
            raise ValueError(f"{url} sent more than the {limit} bytes accepted")
    return bytes(body)
