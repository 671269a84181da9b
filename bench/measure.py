"""What every phase of the benchmark measures with: scripts/load.py in its own process, resident memory, and
quantiles of a Prometheus histogram."""

from __future__ import annotations

import contextlib
import json
import os
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

from scripts.stack.ferretdb import FerretDB
from scripts.stack.kafka import KafkaServer
from scripts.stack.paths import ROOT
from scripts.stack.process import free_port, run
from scripts.stack.system import System

LOAD = [sys.executable, str(ROOT / "scripts" / "load.py"), "--json", "--quiet"]
QUIET = {"LOG_LEVEL": "WARNING"}  # the services' environment while measured: no per-request log lines


@contextlib.contextmanager
def servers(prefix: str, extra_env: dict[str, str] | None = None) -> Iterator[System]:
    """A Kafka and a FerretDB of the bench's own, on free loopback ports (so `make dev` may keep running), started in a
    temporary folder and stopped with everything started beside them."""
    with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
        workdir = Path(tmp)
        system = System(workdir, KafkaServer(workdir / "kafka", port=free_port(), heap="1g"),
                        FerretDB(workdir / "ferretdb", port=free_port()), extra_env=extra_env)
        try:
            system.start_servers()
            yield system
        finally:
            system.stop()


def say(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def load(url: str, *args: str) -> dict:
    result = run([*LOAD, "--url", url, *args], check=False)
    if not result.stdout.strip():
        raise RuntimeError(f"load.py failed: {result.stderr}")
    return json.loads(result.stdout)


def python_json(*args: str) -> dict:
    """A Python program of the bench's in a process of its own: the JSON object its last line prints."""
    return json.loads(run([sys.executable, *args], " ".join(args[:3]), cwd=ROOT).stdout.strip().splitlines()[-1])


def cpu_seconds(pid: int) -> float:
    """A process's CPU time so far, user and system, every thread (/proc/<pid>/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def histogram_quantiles(metrics: str, name: str) -> dict[float, float]:
    """Upper bucket bounds (ms) holding the 50th and 99th percentiles of a Prometheus histogram."""
    buckets = []
    for line in metrics.splitlines():
        if line.startswith(f"{name}_bucket"):
            bound = line.split('le="')[1].split('"')[0]
            buckets.append((float("inf") if bound == "+Inf" else float(bound), float(line.rsplit(" ", 1)[1])))
    if not buckets or buckets[-1][1] == 0:
        return {}
    total = buckets[-1][1]
    return {q: next(round(bound * 1000, 1) for bound, n in buckets if n >= q * total) for q in (0.5, 0.99)}
