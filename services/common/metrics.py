"""The metrics port: Prometheus' text format on a listener of its own.

Both services serve `/metrics` here and nowhere else, so a monitoring system (the chart's NetworkPolicy admits the
listed monitoring namespaces to this port alone) can scrape them without reaching any route that serves a
customer's data. Nothing but `/metrics` is answered on it.
"""

from __future__ import annotations

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest

METRICS_CONTENT_TYPE = CONTENT_TYPE_LATEST.split(";")[0]


def create_metrics_app(registry: CollectorRegistry = REGISTRY) -> web.Application:
    """`registry`: what /metrics serves; by default this process's own metrics (a supervisor of workers serves
    theirs, summed: services/common/workers.py)."""
    async def metrics(request: web.Request) -> web.Response:
        response = web.Response(body=generate_latest(registry))
        response.content_type = METRICS_CONTENT_TYPE
        return response

    app = web.Application()
    app.router.add_get("/metrics", metrics)
    return app
