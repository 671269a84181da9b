"""Reads a customer's purchase history from the api service over one pooled HTTP session."""

from __future__ import annotations

import logging
from urllib.parse import quote

import aiohttp

from services.common.http import ServiceUnavailable

log = logging.getLogger(__name__)


class HistoryClient:
    def __init__(self, api_url: str, timeout_s: float = 5.0) -> None:
        self._api_url = api_url
        self._timeout = aiohttp.ClientTimeout(total=timeout_s, connect=1.0)
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        self._session = aiohttp.ClientSession(
            timeout=self._timeout, connector=aiohttp.TCPConnector(limit=100, keepalive_timeout=30)
        )

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def purchases(self, user_id: str, query: dict[str, str]) -> tuple[int, bytes, dict[str, str]]:
        """The api's answer (status, JSON body, paging header) for one user's history."""
        assert self._session is not None, "start() first"
        url = f"{self._api_url}/api/purchases/{quote(user_id, safe='')}"
        try:
            async with self._session.get(url, params=query) as response:
                body = await response.read()
                headers = {k: v for k, v in response.headers.items() if k in ("X-Next-Before", "Retry-After")}
                if response.status >= 500:
                    raise ServiceUnavailable(f"the api service answered {response.status}", retry_after=2)
                return response.status, body, headers
        except (aiohttp.ClientError, TimeoutError) as exc:
            log.warning("api unreachable", extra={"error": repr(exc)})
            raise ServiceUnavailable("the api service is not reachable", retry_after=2) from exc
