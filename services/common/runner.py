"""Run an aiohttp app as both services (and the benchmark's bare ceiling) do: on uvloop, quietly, guarded, with
/metrics on a port of its own."""

from __future__ import annotations

import asyncio
import contextlib
import gc

import uvloop
from aiohttp import web

from .logs import setup_logging
from .metrics import create_metrics_app
from .server import (
    BACKLOG,
    MAX_AUTHORIZATION_LINE,
    MAX_CONNECTIONS,
    GuardedAppRunner,
    allow_descriptors,
    give_memory_back,
    guard,
)
from .workers import beat, supervise, worker_index


def run(app: web.Application, host: str, port: int, shutdown_timeout: float,
        max_connections: int = MAX_CONNECTIONS, metrics_port: int | None = None, worker: bool = False) -> None:
    """Serve until SIGTERM/SIGINT, then stop accepting, wait up to `shutdown_timeout` s for in-flight
    requests, and run the app's cleanup contexts (flush the producer, stop the consumer).

    What web.run_app does, with the guarded server of services/common/server.py (which run_app cannot take).
    Header lines: aiohttp reads them up to an Authorization line's limit; guard() holds every other line to
    MAX_HEADER_LINE, and the server the whole head to MAX_HEAD (services/common/server.py): 431 JSON beyond.
    `metrics_port`: where /metrics is served (services/common/metrics.py); None: nowhere (the bare ceiling, or a
    worker). It opens before the service's own port and closes after it, so a scrape sees a shutdown to its end.
    `worker`: one of several on the port (services/common/workers.py): SO_REUSEPORT, and a heartbeat."""
    guard(app)
    allow_descriptors(max_connections)
    loop = uvloop.new_event_loop()
    asyncio.set_event_loop(loop)
    runner = GuardedAppRunner(app, max_connections=max_connections, handle_signals=True, access_log=None,
                              shutdown_timeout=shutdown_timeout, max_field_size=MAX_AUTHORIZATION_LINE)
    housekeeping = heartbeat = None
    metrics = None if metrics_port is None else web.AppRunner(create_metrics_app(), handle_signals=False,
                                                               access_log=None, shutdown_timeout=1)
    try:
        if metrics is not None:
            loop.run_until_complete(metrics.setup())
            loop.run_until_complete(web.TCPSite(metrics, host, metrics_port).start())
        loop.run_until_complete(runner.setup())
        loop.run_until_complete(web.TCPSite(runner, host, port, backlog=BACKLOG, reuse_port=worker or None).start())
        # Everything made at start (modules, kafka-python's protocol tables, the app) lives as long as the
        # process: out of the collector's sight, a full collection no longer stalls the loop for ~0.3 s.
        gc.collect()
        gc.freeze()
        housekeeping = loop.create_task(give_memory_back(runner.server))
        heartbeat = loop.create_task(beat()) if worker else None
        loop.run_forever()
    except (web.GracefulExit, KeyboardInterrupt):  # SIGTERM / SIGINT, raised by the runner's signal handlers
        pass
    finally:
        for task in (housekeeping, heartbeat):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    loop.run_until_complete(task)
        loop.run_until_complete(runner.cleanup())
        if metrics is not None:
            loop.run_until_complete(metrics.cleanup())
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()


def run_service(name: str, config, create_app, shutdown_timeout: float, workers: int = 1) -> None:
    """A service as its `python -m services.<name>` runs it: JSON logs at its level, its app on its ports
    (`config`: its typed configuration, with `http`). With `workers` > 1, a supervisor of that many processes of it
    on the port, serving their metrics (services/common/workers.py); each of them comes here again as a worker."""
    setup_logging(name, config.http.log_level)
    http, worker = config.http, worker_index() is not None
    if workers > 1 and not worker:
        supervise(name, workers, http.host, http.metrics_port, shutdown_timeout)
        return
    run(create_app(config), http.host, http.port, shutdown_timeout=shutdown_timeout,
        max_connections=http.max_connections, metrics_port=None if worker else http.metrics_port, worker=worker)
