"""The web service's HTTP application: buy, history, the customer page and health (metrics: their own port)."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from aiohttp import web
from prometheus_client import Counter, Histogram

from services.common import openapi
from services.common.http import USER_ID, ServiceUnavailable, Unauthorized, json_errors, json_response
from services.common.server import read_body
from services.common.workers import worker_index
from services.core.config import WebConfig
from services.core.purchase import (
    ValidationError,
    parse_json,
    validate_idempotency_key,
    validate_order,
    validate_user_id,
)

from .auth.rules import check_owner, order_for
from .history import HistoryClient
from .lag_exporter import LagExporter
from .openapi import document
from .publisher import Publisher
from .purchases import Purchases

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 64 * 1024
STATIC = Path(__file__).parent / "static"

CONFIG = web.AppKey("config", WebConfig)
PUBLISHER = web.AppKey("publisher", Publisher)
HISTORY = web.AppKey("history", HistoryClient)
PURCHASES = web.AppKey("purchases", Purchases)
DRAINING = web.AppKey("draining", asyncio.Event)  # set on shutdown: /readyz answers 503
# With AUTH_MODE=oidc: an auth.guard.Authenticator (imported only then: PyJWT and OpenSSL cost ~9 MiB).
AUTHENTICATOR = web.AppKey("authenticator", object)

ACCEPTED = Counter("purchases_accepted_total", "Purchases acknowledged by Kafka and answered 202")
REJECTED = Counter("purchases_rejected_total", "Buy requests refused, by the status they were answered", ["status"])
for _status in ("400", "401", "403", "408", "413", "415", "422", "503"):  # each series exists from the start
    REJECTED.labels(_status)
PUBLISH_SECONDS = Histogram(
    "purchase_publish_seconds", "Time from request to Kafka acknowledgement",
    buckets=(0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)


async def signed_in(request: web.Request):
    """The token's customer with sign-in on (401 without a valid token); None with it off."""
    authenticator = request.app.get(AUTHENTICATOR)
    return None if authenticator is None else await authenticator.customer(request)


def refusal_status(exc: BaseException) -> str:
    """The status a buy that raised `exc` is answered with (json_errors' mapping), as a metric label."""
    if isinstance(exc, ValidationError | web.HTTPException):
        return str(exc.status)
    if isinstance(exc, Unauthorized):
        return "401"
    if isinstance(exc, ServiceUnavailable):
        return "503"
    return "500"


async def buy(request: web.Request) -> web.Response:
    try:
        return await _buy(request)
    except Exception as exc:
        REJECTED.labels(refusal_status(exc)).inc()
        raise


async def _buy(request: web.Request) -> web.Response:
    customer = await signed_in(request)
    if request.content_type != "application/json":
        raise web.HTTPUnsupportedMediaType(reason="Content-Type must be application/json")
    body = parse_json(await read_body(request))
    order = validate_order(body if customer is None else order_for(customer, body))
    key = validate_idempotency_key(request.headers.get("Idempotency-Key"))
    deadline = request.app[PUBLISHER].deadline()  # the whole answer, look-ups included, within the publish timeout
    with PUBLISH_SECONDS.time():
        purchase, made_before = await request.app[PURCHASES].buy(order, key, deadline)
    ACCEPTED.inc()
    log.debug("purchase accepted", extra={"purchase_id": purchase.id, "user_id": purchase.user_id,
                                          "replayed": made_before})
    headers = {"Idempotent-Replayed": "true"} if made_before else None
    return json_response({"message": "purchase accepted", "id": purchase.id, "purchase": purchase.to_json()},
                         status=202, headers=headers)


async def history(request: web.Request) -> web.Response:
    customer = await signed_in(request)
    user_id = validate_user_id(request.match_info["userId"])
    if customer is not None:
        check_owner(customer, user_id)
    status, body, headers = await request.app[HISTORY].purchases(user_id, dict(request.query))
    return web.Response(status=status, body=body, headers=headers, content_type="application/json")


async def auth_settings(request: web.Request) -> web.Response:
    """How the page signs in, or that it need not."""
    authenticator = request.app.get(AUTHENTICATOR)
    return json_response({"mode": "off"} if authenticator is None else await authenticator.page_settings())


async def index(request: web.Request) -> web.FileResponse:
    return web.FileResponse(STATIC / "index.html")


async def healthz(request: web.Request) -> web.Response:
    """Alive unless deliveries have only failed for a long while although Kafka answers (a restart heals it)."""
    if request.app[PUBLISHER].wedged:
        return json_response({"status": "kafka producer wedged"}, status=503)
    return json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    """Can this pod serve: once started (its first producer connected, or a startup grace spent trying), until it
    drains on shutdown. Kafka's state (a live metadata check of the topic, not the last publish's outcome) is in the
    body and the metrics, not the status: Kafka is shared, so it would turn every web pod unready at once, and the
    Service would refuse history reads (which need no Kafka) and buys alike, instead of our 503 JSON with
    Retry-After."""
    publisher = request.app[PUBLISHER]
    status = "draining" if request.app[DRAINING].is_set() else "ready" if publisher.started else "starting"
    body = {"status": status, "buys": "ready" if publisher.ready else "unavailable", "kafka": publisher.kafka.to_json()}
    return json_response(body, status=200 if status == "ready" else 503)


def started_and_closed(resource: Publisher | HistoryClient | LagExporter):
    """A cleanup context that starts `resource` with the app and closes it at the end."""
    async def context(app: web.Application):
        await resource.start()
        yield
        await resource.close()
    return context


async def _drain(app: web.Application) -> None:
    app[DRAINING].set()


# The page's script and styles are files of its own origin: no inline code runs, nothing frames the page.
# With sign-in on, the page also talks to the provider: its issuer and its token endpoint, wherever that lives.
def security_headers(connect_origins: tuple[str, ...] = ()) -> dict[str, str]:
    connect = " ".join(("'self'", *connect_origins))
    return {
        "Content-Security-Policy": f"default-src 'none'; script-src 'self'; style-src 'self'; connect-src {connect}; "
                                   "img-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
        "X-Frame-Options": "DENY",
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
    }


def create_app(config: WebConfig, publisher: Publisher | None = None, history_client: HistoryClient | None = None
               ) -> web.Application:
    """web's application. `publisher`, `history_client`: what publishes to Kafka and reads from api (default: the
    real ones; the in-process handler tests hand plain objects of their own)."""
    app = web.Application(middlewares=[json_errors], client_max_size=MAX_BODY_BYTES)
    app[CONFIG] = config
    # What a buy needs, made here and handed to it; each started and closed with the app.
    publisher = publisher or Publisher(config)
    reader = history_client or HistoryClient(config.api_url)
    app[PUBLISHER], app[HISTORY] = publisher, reader
    app[PURCHASES] = Purchases(publisher, reader)
    app[DRAINING] = asyncio.Event()
    # With several workers (services/common/workers.py) the first reads the lag for all of them.
    lag = LagExporter(config.kafka, config.lag_export_interval_s if worker_index() in (None, 0) else 0)
    app.cleanup_ctx.extend(started_and_closed(resource) for resource in (publisher, reader, lag))
    app.on_shutdown.append(_drain)
    authenticator = None
    if config.auth.enabled:
        from .auth.guard import Authenticator

        authenticator = app[AUTHENTICATOR] = Authenticator(config.auth)
        app.cleanup_ctx.append(authenticator.cleanup_ctx())
    headers = {(): security_headers()}  # by the provider's origins, which discovery tells

    async def add_security_headers(request: web.Request, response: web.StreamResponse) -> None:
        origins = () if authenticator is None else authenticator.origins()
        if origins not in headers:
            headers[origins] = security_headers(origins)
        response.headers.update(headers[origins])

    app.on_response_prepare.append(add_security_headers)
    app.router.add_post("/api/buy", buy)
    app.router.add_get(f"/api/user/{USER_ID}/purchases", history)
    app.router.add_get(f"/api/getAllUserBuys/{USER_ID}", history)
    app.router.add_get("/", index)
    app.router.add_static("/static/", STATIC)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/auth/config", auth_settings)
    app.router.add_get("/openapi.json", openapi.handler(document(config.auth)))
    return app
