"""One sample every 10 s: web's and api's memory and descriptors, the consumer group's lag, and the buys and reads
answered in the last 10 s (their p50/p99 and the buys' 503 rate)."""

from __future__ import annotations

import os
from dataclasses import dataclass

from scripts.loadgen.keyed import Request
from scripts.stack.system import System

from ..measure import rss_mib

SAMPLE_S = 10.0


@dataclass
class Read:
    sent_at: float  # monotonic
    ms: float
    status: int | None


def open_descriptors(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def quantiles(ms: list[float]) -> dict:
    ms = sorted(ms)
    if not ms:
        return {"p50_ms": None, "p99_ms": None}
    return {"p50_ms": round(ms[len(ms) // 2], 2), "p99_ms": round(ms[min(len(ms) - 1, int(len(ms) * 0.99))], 2)}


def sample(system: System, t_s: float, now: float, buys: list[Request], reads: list[Read], lag: int) -> dict:
    """The figures of the SAMPLE_S seconds before `now` (monotonic); `t_s` is the time since the start."""
    window = [r for r in buys if now - SAMPLE_S <= r.sent_at < now and r.answered_at is not None]
    read_window = [r for r in reads if now - SAMPLE_S <= r.sent_at < now]
    return {
        "t_s": round(t_s, 1),
        "web_rss_mib": round(rss_mib(system.web.process.pid), 1),
        "api_rss_mib": round(rss_mib(system.api.process.pid), 1),
        "web_fds": open_descriptors(system.web.process.pid),
        "api_fds": open_descriptors(system.api.process.pid),
        "lag": lag,
        "buys": len(window),
        "buy_503_rate": round(sum(r.status == 503 for r in window) / max(len(window), 1), 4),
        **{f"buy_{k}": v for k, v in quantiles([r.latency_ms for r in window if r.status == 202]).items()},
        **{f"read_{k}": v for k, v in quantiles([r.ms for r in read_window if r.status == 200]).items()},
    }


def line(sample: dict) -> str:
    return (f"soak {sample['t_s']:>6.0f}s  rss web {sample['web_rss_mib']} api {sample['api_rss_mib']} MiB  "
            f"fds {sample['web_fds']}/{sample['api_fds']}  lag {sample['lag']}  buy p50 {sample['buy_p50_ms']} "
            f"p99 {sample['buy_p99_ms']} ms  read p99 {sample['read_p99_ms']} ms  503 {sample['buy_503_rate']:.2%}")
