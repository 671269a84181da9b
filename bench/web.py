"""Phase `web`: POST /api/buy's peak throughput beside a bare aiohttp handler's (the ceiling), with the same client;
latency at half of web's peak, and at a moderate 500/s beside the bare handler's at the same rate."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from scripts.stack.process import Server, free_port
from scripts.stack.service import Names
from scripts.stack.system import System

from .measure import QUIET, cpu_seconds, load, say


class Bare(Server):
    name = "bare"

    def command(self) -> list[str]:
        return [sys.executable, "-m", "bench.bare"]

    def __init__(self, data_dir: Path, port: int) -> None:
        super().__init__(data_dir, port)
        self.env = {**os.environ, "PORT": str(port)}


# The original system answers a purchase at this rate with p50 0.9 ms: the latency a customer sees on a
# normal day, not at peak.
MODERATE_RPS = 500


def bench_web(system: System, seconds: float) -> dict:
    burst = ["--burst", "1000000", "--duration", str(seconds), "--concurrency", "64", "--users", "200"]
    moderately = ["--rate", str(MODERATE_RPS), "--duration", str(seconds), "--concurrency", "256", "--users", "200"]
    bare = Bare(system.workdir, free_port())
    bare.start()
    try:
        say("web: ceiling (bare aiohttp handler)")
        load(f"http://127.0.0.1:{bare.port}", "--burst", "2000", "--concurrency", "64")  # warm-up
        ceiling = load(f"http://127.0.0.1:{bare.port}", *burst)
        say(f"web: ceiling's latency at {MODERATE_RPS}/s")
        bare_moderate = load(f"http://127.0.0.1:{bare.port}", *moderately)
    finally:
        bare.stop()
    part = system.beside(Names.of("bench_web"), QUIET)
    part.create_topics()
    web = part.start_web()
    try:
        say("web: peak POST /api/buy")
        load(f"http://127.0.0.1:{web.port}", "--burst", "2000", "--concurrency", "64")
        cpu = cpu_seconds(web.process.pid)
        peak = load(f"http://127.0.0.1:{web.port}", *burst)
        cpu = cpu_seconds(web.process.pid) - cpu
        half = max(peak["rate"] / 2, 1)
        say(f"web: latency at half of peak ({half:.0f}/s)")
        steady = load(f"http://127.0.0.1:{web.port}", "--rate", str(half), "--duration", str(seconds),
                      "--concurrency", "256", "--users", "200")
        say(f"web: latency at a moderate {MODERATE_RPS}/s")
        moderate = load(f"http://127.0.0.1:{web.port}", *moderately)
    finally:
        part.stop()
    part = system.beside(Names.of("bench_web_workers"), QUIET)
    part.create_topics()
    web = part.start_web(env={"WEB_WORKERS": "2"})
    try:
        say("web: peak POST /api/buy with two workers on the port (WEB_WORKERS=2)")
        load(web.address, "--burst", "4000", "--concurrency", "64")
        two = load(web.address, *burst)
    finally:
        part.stop()
    return {
        "rps_2_workers": two["rate"], "errors_2_workers": two["sent"] - two["accepted"],
        "rps": peak["rate"], "ceiling_rps": ceiling["rate"], "ratio": round(peak["rate"] / ceiling["rate"], 3),
        # web's CPU (every thread) over the peak run, a purchase it accepted: /proc, not the profiler.
        "cpu_us_per_purchase": round(cpu / max(peak["accepted"], 1) * 1e6, 1),
        "errors": peak["sent"] - peak["accepted"],
        "half_peak_rps": steady["rate"], "p50_ms": steady["latency_ms"]["p50"], "p99_ms": steady["latency_ms"]["p99"],
        "moderate_rps": moderate["rate"], "moderate_p50_ms": moderate["latency_ms"]["p50"],
        "moderate_p99_ms": moderate["latency_ms"]["p99"],
        "ceiling_moderate_p50_ms": bare_moderate["latency_ms"]["p50"],
        "ceiling_moderate_p99_ms": bare_moderate["latency_ms"]["p99"],
    }
