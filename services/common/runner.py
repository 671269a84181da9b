"""Run an aiohttp app as both services (and the benchmark's bare ceiling) do: on uvloop, quietly, guarded."""

from __future__ import annotations

import asyncio
import contextlib
import gc

import uvloop
from aiohttp import web

from .server import BACKLOG, MAX_CONNECTIONS, GuardedAppRunner, allow_descriptors, give_memory_back, guard


def run(app: web.Application, host: str, port: int, shutdown_timeout: float,
        max_connections: int = MAX_CONNECTIONS, max_field_size: int = 8190) -> None:
    """Serve until SIGTERM/SIGINT, then stop accepting, wait up to `shutdown_timeout` s for in-flight
    requests, and run the app's cleanup contexts (flush the producer, stop the consumer).

    What web.run_app does, with the guarded server of services/common/server.py (which run_app cannot take).
    `max_field_size`: the longest header line aiohttp reads (its default); a longer one is answered 431 JSON."""
    guard(app)
    allow_descriptors(max_connections)
    loop = uvloop.new_event_loop()
    asyncio.set_event_loop(loop)
    runner = GuardedAppRunner(app, max_connections=max_connections, handle_signals=True, access_log=None,
                              shutdown_timeout=shutdown_timeout, max_field_size=max_field_size)
    housekeeping = None
    try:
        loop.run_until_complete(runner.setup())
        loop.run_until_complete(web.TCPSite(runner, host, port, backlog=BACKLOG).start())
        # Everything made at start (modules, kafka-python's protocol tables, the app) lives as long as the
        # process: out of the collector's sight, a full collection no longer stalls the loop for ~0.3 s.
        gc.collect()
        gc.freeze()
        housekeeping = loop.create_task(give_memory_back(runner.server))
        loop.run_forever()
    except (web.GracefulExit, KeyboardInterrupt):  # SIGTERM / SIGINT, raised by the runner's signal handlers
        pass
    finally:
        if housekeeping is not None:
            housekeeping.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                loop.run_until_complete(housekeeping)
        loop.run_until_complete(runner.cleanup())
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()
