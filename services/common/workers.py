"""Several processes of one service on one port, to use the cores a pod is given (WEB_WORKERS).

`python -m services.web` with WEB_WORKERS=N > 1 becomes a supervisor of N workers. Each worker is the service as one
process runs it (its own event loop, its own Kafka producer), started with SERVICE_WORKER=<index> in its environment;
all of them listen on the service's port with SO_REUSEPORT, and the kernel spreads new connections among them. The
supervisor listens on nothing but the metrics port, and:

- gives the workers a metrics directory of their own, wiped at start (prometheus-client's multiprocess mode:
  PROMETHEUS_MULTIPROC_DIR), and serves /metrics summed over them: a counter never goes back when a worker is
  replaced, a gauge says what its multiprocess mode says (services/web: the live workers' sum, minimum, or latest);
- replaces a worker that exits, and one whose heartbeat stops (frozen, or its event loop stuck: SIGKILL first), so a
  pod's liveness does not depend on which worker a probe reaches;
- on SIGTERM (or Ctrl-C) passes SIGTERM to every worker, which drains as a single process does, and exits when they
  have.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import uvloop
from aiohttp import web

from .metrics import create_metrics_app

log = logging.getLogger(__name__)

WORKER = "SERVICE_WORKER"  # a worker's index, in its environment
HEARTBEATS = "SERVICE_HEARTBEATS"  # the folder where each worker's heartbeat file is touched
HEARTBEAT_S = 1.0
STALLED_AFTER_S = 10.0  # no heartbeat for this long: the worker is killed and replaced
STARTUP_GRACE_S = 30.0  # a new worker's first heartbeat may take this long (imports, the producer's start)
RESTART_BACKOFF_S = (0.5, 1, 2, 5)  # between replacements of a worker that keeps dying


def worker_index() -> int | None:
    """This process's index among its service's workers; None when it runs alone."""
    raw = os.environ.get(WORKER)
    return int(raw) if raw is not None else None


async def beat(every_s: float = HEARTBEAT_S) -> None:
    """A worker's heartbeat: its file touched from its event loop, so a frozen process or a stuck loop stops it."""
    path = Path(os.environ[HEARTBEATS]) / f"worker-{os.environ[WORKER]}"
    path.touch()
    while True:
        await asyncio.sleep(every_s)
        os.utime(path)


class Worker:
    def __init__(self, index: int, command: list[str], env: dict[str, str], heartbeats: Path) -> None:
        self.index, self.command, self.env = index, command, env
        self.heartbeat = heartbeats / f"worker-{index}"
        self.process: subprocess.Popen | None = None
        self.started_at = 0.0
        self.restarts = 0

    def start(self) -> None:
        self.heartbeat.unlink(missing_ok=True)
        self.process = subprocess.Popen(self.command, env={**self.env, WORKER: str(self.index)},
                                        stdin=subprocess.DEVNULL)
        self.started_at = time.monotonic()
        log.info("worker started", extra={"worker": self.index, "pid": self.process.pid})

    def stalled(self, now: float) -> bool:
        """No heartbeat for STALLED_AFTER_S (or none at all within its start-up grace)."""
        try:
            age = time.time() - self.heartbeat.stat().st_mtime
        except FileNotFoundError:
            return now - self.started_at > STARTUP_GRACE_S
        return age > STALLED_AFTER_S


class Supervisor:
    def __init__(self, name: str, workers: int, metrics_host: str, metrics_port: int, shutdown_timeout: float) -> None:
        self.name, self.metrics_host, self.metrics_port = name, metrics_host, metrics_port
        self.shutdown_timeout = shutdown_timeout
        self.folder = Path(tempfile.mkdtemp(prefix=f"{name}-workers-"))
        self.metrics_dir = self.folder / "metrics"
        heartbeats = self.folder / "heartbeats"
        for folder in (self.metrics_dir, heartbeats):
            folder.mkdir()
        env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(self.metrics_dir), HEARTBEATS: str(heartbeats)}
        command = [sys.executable, "-m", f"services.{name}"]
        self.workers = [Worker(i, command, env, heartbeats) for i in range(workers)]
        self.stopping = asyncio.Event()

    def registry(self):
        """The workers' metrics, summed: read from their files at each scrape."""
        from prometheus_client import CollectorRegistry, multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry, path=str(self.metrics_dir))
        return registry

    def replace(self, worker: Worker, why: str) -> None:
        from prometheus_client import multiprocess

        pid = worker.process.pid
        if worker.process.poll() is None:
            worker.process.kill()
        code = worker.process.wait()
        multiprocess.mark_process_dead(pid, str(self.metrics_dir))  # its live gauges go; its counters stay
        log.warning("worker replaced", extra={"worker": worker.index, "pid": pid, "why": why, "exit_code": code,
                                              "restarts": worker.restarts})
        worker.restarts += 1
        worker.start()

    async def watch(self) -> None:
        while not self.stopping.is_set():
            now = time.monotonic()
            for worker in self.workers:
                if worker.process.poll() is not None:
                    await asyncio.sleep(RESTART_BACKOFF_S[min(worker.restarts, len(RESTART_BACKOFF_S) - 1)])
                    if not self.stopping.is_set():
                        self.replace(worker, "exited")
                elif worker.stalled(now):
                    self.replace(worker, f"no heartbeat for {STALLED_AFTER_S:.0f} s")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stopping.wait(), 0.5)

    async def stop_workers(self) -> None:
        for worker in self.workers:
            if worker.process.poll() is None:
                worker.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + self.shutdown_timeout + 5
        while any(w.process.poll() is None for w in self.workers) and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        for worker in self.workers:
            if worker.process.poll() is None:
                log.warning("worker did not drain in time", extra={"worker": worker.index})
                worker.process.kill()
                worker.process.wait()

    async def serve(self) -> None:
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, self.stopping.set)
        runner = web.AppRunner(create_metrics_app(self.registry()), handle_signals=False, access_log=None,
                               shutdown_timeout=1)
        await runner.setup()
        await web.TCPSite(runner, self.metrics_host, self.metrics_port).start()
        for worker in self.workers:
            worker.start()
        log.info("workers started", extra={"workers": len(self.workers), "metrics_port": self.metrics_port})
        try:
            await self.watch()
        finally:
            await self.stop_workers()
            await runner.cleanup()
            shutil.rmtree(self.folder, ignore_errors=True)
        log.info("workers stopped")


def supervise(name: str, workers: int, metrics_host: str, metrics_port: int, shutdown_timeout: float) -> None:
    """Run `workers` processes of services.<name> until SIGTERM/SIGINT (see the module's docstring)."""
    uvloop.run(Supervisor(name, workers, metrics_host, metrics_port, shutdown_timeout).serve())
