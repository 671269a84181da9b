"""The web service's HTTP application: buy, history, the customer page, health and metrics."""

from __future__ import annotations

import logging
from pathlib import Path
from urllib.parse import urlsplit

from aiohttp import web
from prometheus_client import Counter, Histogram

from services.common import openapi
from services.common.http import USER_ID, Unauthorized, json_errors, json_response, metrics
from services.common.server import read_body
from services.core.config import AuthConfig, WebConfig
from services.core.purchase import (
    ValidationError,
    new_purchase,
    parse_json,
    purchase_id,
    utc_now,
    validate_idempotency_key,
    validate_order,
    validate_user_id,
)

from .auth.rules import check_owner, order_for
from .history import HistoryClient
from .idempotency import IdempotentPurchases
from .openapi import document
from .publisher import Publisher

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 64 * 1024
STATIC = Path(__file__).parent / "static"

CONFIG = web.AppKey("config", WebConfig)
PUBLISHER = web.AppKey("publisher", Publisher)
HISTORY = web.AppKey("history", HistoryClient)
KEYED = web.AppKey("keyed", IdempotentPurchases)
# With AUTH_MODE=oidc: an auth.guard.Authenticator (imported only then: PyJWT and OpenSSL cost ~9 MiB).
AUTHENTICATOR = web.AppKey("authenticator", object)

ACCEPTED = Counter("purchases_accepted_total", "Purchases acknowledged by Kafka and answered 202")
REJECTED = Counter("purchases_rejected_total", "Buy requests refused", ["status"])
PUBLISH_SECONDS = Histogram(
    "purchase_publish_seconds", "Time from request to Kafka acknowledgement",
    buckets=(0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)


async def signed_in(request: web.Request):
    """The token's customer with sign-in on (401 without a valid token); None with it off."""
    authenticator = request.app.get(AUTHENTICATOR)
    return None if authenticator is None else await authenticator.customer(request)


async def buy(request: web.Request) -> web.Response:
    try:
        customer = await signed_in(request)
    except Unauthorized:
        REJECTED.labels("401").inc()
        raise
    if request.content_type != "application/json":
        REJECTED.labels("415").inc()
        raise web.HTTPUnsupportedMediaType(reason="Content-Type must be application/json")
    try:
        body = parse_json(await read_body(request))
        order = validate_order(body if customer is None else order_for(customer, body))
        key = validate_idempotency_key(request.headers.get("Idempotency-Key"))
    except ValidationError:
        REJECTED.labels("400").inc()
        raise
    publisher = request.app[PUBLISHER]
    deadline = publisher.deadline()  # the whole answer, look-ups included, within the publish timeout
    with PUBLISH_SECONDS.time():
        try:
            if key is None:
                purchase, made_before = new_purchase(order, purchase_id(order.user_id, None), utc_now()), False
                await publisher.publish(purchase, deadline)
            else:
                purchase, made_before = await request.app[KEYED].buy(order, key, deadline)
        except ValidationError as exc:
            REJECTED.labels(str(exc.status)).inc()
            raise
        except Exception:
            REJECTED.labels("503").inc()
            raise
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
    """Can Kafka take a purchase now: a live metadata check of the topic, not the last publish's outcome."""
    publisher = request.app[PUBLISHER]
    ready = publisher.ready
    return json_response({"status": "ready" if ready else "kafka unavailable", "kafka": publisher.kafka.to_json()},
                         status=200 if ready else 503)


async def _publisher_ctx(app: web.Application):
    publisher = Publisher(app[CONFIG])
    app[PUBLISHER] = publisher
    await publisher.start()
    yield
    await publisher.close()


async def _history_ctx(app: web.Application):
    client = HistoryClient(app[CONFIG].api_url)
    app[HISTORY] = client
    await client.start()
    app[KEYED] = IdempotentPurchases(app[PUBLISHER], client)
    yield
    await client.close()


# The page's script and styles are files of its own origin: no inline code runs, nothing frames the page.
# With sign-in on, the page also talks to the provider's token endpoint (connect-src).
def security_headers(auth: AuthConfig) -> dict[str, str]:
    connect = "'self'" + (f" {origin(auth.issuer)}" if auth.enabled else "")
    return {
        "Content-Security-Policy": f"default-src 'none'; script-src 'self'; style-src 'self'; connect-src {connect}; "
                                   "img-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
        "X-Frame-Options": "DENY",
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
    }


def origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def create_app(config: WebConfig) -> web.Application:
    app = web.Application(middlewares=[json_errors], client_max_size=MAX_BODY_BYTES)
    app[CONFIG] = config
    app.cleanup_ctx.extend([_publisher_ctx, _history_ctx])
    if config.auth.enabled:
        from .auth.guard import Authenticator

        authenticator = app[AUTHENTICATOR] = Authenticator(config.auth)
        app.cleanup_ctx.append(authenticator.cleanup_ctx())
    headers = security_headers(config.auth)

    async def add_security_headers(request: web.Request, response: web.StreamResponse) -> None:
        response.headers.update(headers)

    app.on_response_prepare.append(add_security_headers)
    app.router.add_post("/api/buy", buy)
    app.router.add_get(f"/api/user/{USER_ID}/purchases", history)
    app.router.add_get(f"/api/getAllUserBuys/{USER_ID}", history)
    app.router.add_get("/", index)
    app.router.add_static("/static/", STATIC)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/auth/config", auth_settings)
    app.router.add_get("/openapi.json", openapi.handler(document(config.auth)))
    return app
