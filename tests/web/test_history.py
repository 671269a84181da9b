"""web's client of the api (services/web/history.py), against a small aiohttp app in this process standing in for
the api's routes: the user id travels in the query, the api's 4xx pass through with their paging header, a 5xx or
no answer is a 503 to retry, and the stored-purchase look-up never fails a buy. test_http_contract.py runs the real
api."""

from __future__ import annotations

import asyncio
import json

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from services.common.http import ServiceUnavailable
from services.core.purchase import Order, new_purchase, purchase_id, utc_now
from services.web.history import HistoryClient

pytestmark = pytest.mark.unit

SEEN = web.AppKey("seen", list)
STORED = new_purchase(Order("ann", "..", 4.0, None), purchase_id("..", "k"), utc_now(), keyed=True)


def api(status: int = 200, delay_s: float = 0.0) -> web.Application:
    seen: list[dict] = []

    async def purchases(request: web.Request) -> web.Response:
        seen.append(dict(request.query) | {"path": request.path})
        await asyncio.sleep(delay_s)
        if status != 200:
            return web.json_response({"error": "nope"}, status=status, headers={"Retry-After": "7"})
        found = [STORED.to_json()] if request.query.get("id") in (None, STORED.id) else []
        return web.json_response(found, headers={"X-Next-Before": "cursor", "X-Other": "dropped"})

    app = web.Application()
    app.router.add_get("/api/purchases", purchases)
    app[SEEN] = seen
    return app


def against(app: web.Application, use, timeout_s: float = 5.0):
    async def run():
        async with TestServer(app) as server:
            client = HistoryClient(str(server.make_url("")).rstrip("/"), timeout_s)
            await client.start()
            try:
                return await use(client)
            finally:
                await client.close()
    return asyncio.run(run())


def test_a_history_is_asked_for_with_the_user_in_the_query_and_only_the_paging_headers_come_back():
    app = api()
    status, body, headers = against(app, lambda c: c.purchases("..", {"limit": "5"}))
    assert status == 200 and json.loads(body)[0]["id"] == STORED.id
    assert headers == {"X-Next-Before": "cursor"}
    assert app[SEEN] == [{"limit": "5", "userId": "..", "path": "/api/purchases"}]  # "..": no path to walk


def test_the_apis_4xx_pass_through_and_a_5xx_or_no_answer_is_a_503_to_retry():
    status, body, headers = against(api(status=400), lambda c: c.purchases("u", {"limit": "x"}))
    assert (status, json.loads(body), headers) == (400, {"error": "nope"}, {"Retry-After": "7"})
    with pytest.raises(ServiceUnavailable, match="answered 500") as failed:
        against(api(status=500), lambda c: c.purchases("u", {}))
    assert failed.value.retry_after == 2

    async def unreachable():
        client = HistoryClient("http://127.0.0.1:9", 2.0)  # the discard port: nothing listens
        await client.start()
        try:
            await client.purchases("u", {})
        finally:
            await client.close()
    with pytest.raises(ServiceUnavailable, match="not reachable"):
        asyncio.run(unreachable())


def test_the_stored_purchase_is_found_by_id_and_anything_else_is_none_within_its_budget():
    found = against(api(), lambda c: c.stored_purchase("..", STORED.id, 1.0))
    assert found == STORED
    assert against(api(), lambda c: c.stored_purchase("..", purchase_id("..", "other"), 1.0)) is None
    assert against(api(status=503), lambda c: c.stored_purchase("..", STORED.id, 1.0)) is None

    async def timed(client: HistoryClient):
        loop = asyncio.get_running_loop()
        started = loop.time()
        return await client.stored_purchase("..", STORED.id, 0.2), loop.time() - started
    answer, took = against(api(delay_s=3), timed)
    assert answer is None and took < 1.5, "a slow api must not hold a buy beyond the look-up's budget"
