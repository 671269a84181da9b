"""Run an aiohttp app as both services (and the benchmark's bare ceiling) do: on uvloop, quietly."""

from __future__ import annotations

import asyncio

import uvloop
from aiohttp import web


def run(app: web.Application, host: str, port: int, shutdown_timeout: float) -> None:
    """Serve until SIGTERM/SIGINT, then stop accepting, wait up to `shutdown_timeout` s for in-flight
    requests, and run the app's cleanup contexts (flush the producer, stop the consumer)."""
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    web.run_app(app, host=host, port=port, shutdown_timeout=shutdown_timeout, access_log=None, print=None)
