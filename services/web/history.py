"""Reads a customer's purchase history from the api service over one pooled HTTP session."""

from __future__ import annotations

import logging

import aiohttp

from services.common.http import ServiceUnavailable
from services.core.purchase import Purchase, purchase_from_json

log = logging.getLogger(__name__)


class HistoryClient:
    def __init__(self, api_url: str, timeout_s: float = 5.0) -> None:
        self._url = f"{api_url}/api/purchases"
        self._timeout = aiohttp.ClientTimeout(total=timeout_s, connect=1.0)
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        self._session = aiohttp.ClientSession(
            timeout=self._timeout, connector=aiohttp.TCPConnector(limit=100, keepalive_timeout=30)
        )

    async def stored_purchase(self, user_id: str, purchase_id: str, timeout_s: float) -> Purchase | None:
        """The stored purchase with this id, or None: not stored (yet), or the api cannot say within `timeout_s`
        (then the caller acts as if not stored; the store keeps whichever copy comes first)."""
        assert self._session is not None, "start() first"
        params = {"userId": user_id, "id": purchase_id, "limit": "1"}
        try:
            timeout = aiohttp.ClientTimeout(total=max(timeout_s, 0.01))
            async with self._session.get(self._url, params=params, timeout=timeout) as response:
                if response.status != 200:
                    log.warning("stored purchase lookup refused", extra={"purchase_id": purchase_id,
                                                                        "status": response.status})
                    return None
                found = await response.json()
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            log.warning("stored purchase lookup failed", extra={"purchase_id": purchase_id, "error": repr(exc)})
            return None
        return purchase_from_json(found[0]) if found else None

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def purchases(self, user_id: str, query: dict[str, str]) -> tuple[int, bytes, dict[str, str]]:
        """The api's answer (status, JSON body, paging header) for one user's history. Its 4xx pass through.

        The user id goes in the query, never in the path: a client normalises the dot segments of a path, and
        the users "." and ".." would read someone else's history (or none)."""
        assert self._session is not None, "start() first"
        try:
            async with self._session.get(self._url, params={**query, "userId": user_id}) as response:
                body = await response.read()
                headers = {k: v for k, v in response.headers.items() if k in ("X-Next-Before", "Retry-After")}
                if response.status >= 500:
                    raise ServiceUnavailable(f"the api service answered {response.status}", retry_after=2)
                return response.status, body, headers
        except (aiohttp.ClientError, TimeoutError) as exc:
            log.warning("api unreachable", extra={"error": repr(exc)})
            raise ServiceUnavailable("the api service is not reachable", retry_after=2) from exc
