"""The api service's HTTP application: history reads, health and metrics, around the consumer."""

from __future__ import annotations

import asyncio
import logging

from aiohttp import web
from prometheus_client import Counter, Gauge
from pymongo.errors import PyMongoError
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type, wait_exponential_jitter

from services.common import openapi
from services.common.http import USER_ID, ServiceUnavailable, json_errors, json_response
from services.core.config import ApiConfig
from services.core.paging import encode_cursor, parse_page
from services.core.purchase import ValidationError, validate_purchase_id, validate_user_id

from .consumer import PurchaseConsumer
from .openapi import DOCUMENT
from .store import PurchaseReader, PurchaseWriter

log = logging.getLogger(__name__)

INDEX_READY = Gauge("history_index_ready", "1 once the {userId: 1, timestamp: -1} history index exists")
INDEX_ATTEMPTS = Counter("history_index_retries_total", "Failed attempts to create the history index")

CONFIG = web.AppKey("config", ApiConfig)
READER = web.AppKey("reader", PurchaseReader)
CONSUMER = web.AppKey("consumer", PurchaseConsumer)


async def purchases(request: web.Request) -> web.Response:
    """GET /api/purchases/{userId} and GET /api/purchases?userId=...: newest first, paged; `id` picks one."""
    if "userId" in request.match_info:
        raw_user_id = request.match_info["userId"]
    elif "userId" in request.query:
        raw_user_id = request.query["userId"]
    else:
        raise ValidationError("missing query parameter: userId", "userId")
    user_id = validate_user_id(raw_user_id)
    page = parse_page(request.query)
    only_id = validate_purchase_id(request.query["id"]) if "id" in request.query else None
    try:
        found = await request.app[READER].history(user_id, page, only_id)
    except PyMongoError as exc:
        log.warning("history read failed", extra={"error": repr(exc)})
        raise ServiceUnavailable("the database is not reachable", retry_after=2) from exc
    response = json_response([p.to_json() for p in found])
    if len(found) == page.limit:
        response.headers["X-Next-Before"] = encode_cursor(found[-1])
    return response


async def healthz(request: web.Request) -> web.Response:
    return json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    problems = []
    try:
        await request.app[READER].ping()
    except PyMongoError:
        problems.append("mongodb unreachable")
    if not request.app[CONSUMER].running:
        problems.append("consumer not running")
    if problems:
        return json_response({"status": "not ready", "problems": problems}, status=503)
    return json_response({"status": "ready"})


async def _reader_ctx(app: web.Application):
    reader = PurchaseReader(app[CONFIG])
    app[READER] = reader
    yield
    await reader.close()


async def ensure_index(writer: PurchaseWriter) -> None:
    """The history index, retried in the background until it exists: MongoDB may be down when the api starts
    (the consumer's writer waits for it too), and without the index every history read scans the collection."""
    loop = asyncio.get_running_loop()

    def log_retry(state: RetryCallState) -> None:
        INDEX_ATTEMPTS.inc()
        log.warning("could not ensure the history index yet; retrying", extra={
            "attempt": state.attempt_number, "error": repr(state.outcome.exception()),
            "retry_in_s": round(state.next_action.sleep, 1)})

    async for attempt in AsyncRetrying(retry=retry_if_exception_type(PyMongoError), before_sleep=log_retry,
                                       wait=wait_exponential_jitter(initial=1, max=30)):
        with attempt:
            await loop.run_in_executor(None, writer.ensure_indexes)
    INDEX_READY.set(1)
    log.info("history index ready", extra={"index": "userId_timestamp"})


async def _consumer_ctx(app: web.Application):
    config = app[CONFIG]
    writer = PurchaseWriter(config)
    loop = asyncio.get_running_loop()
    indexing = asyncio.create_task(ensure_index(writer))
    consumer = PurchaseConsumer(config, writer)
    app[CONSUMER] = consumer
    consumer.start()
    yield
    indexing.cancel()
    await loop.run_in_executor(None, consumer.stop)
    writer.close()


def create_app(config: ApiConfig) -> web.Application:
    app = web.Application(middlewares=[json_errors])
    app[CONFIG] = config
    app.cleanup_ctx.extend([_reader_ctx, _consumer_ctx])
    app.router.add_get("/api/purchases", purchases)
    app.router.add_get(f"/api/purchases/{USER_ID}", purchases)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/openapi.json", openapi.handler(DOCUMENT))
    return app
