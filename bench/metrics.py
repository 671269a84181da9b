"""Phase `metrics`: what the operator's view costs at peak, the figure with it beside the figure without it, in the
same run: web's peak POST /api/buy with its lag exporter reading Kafka every 5 s (LAG_EXPORT_INTERVAL_S, the
default) and with it off (0); the api's drain with its purchase-to-stored histogram and without it
(bench/api_without_histogram.py). Alternately, twice each, the better of each pair kept: the machine is noisy."""

from __future__ import annotations

from scripts.stack.service import Names
from scripts.stack.system import System

from .drain import api_drain_rate, produce
from .measure import QUIET, load, say

VARIANTS = {"web": {"with": {"LAG_EXPORT_INTERVAL_S": "5"}, "without": {"LAG_EXPORT_INTERVAL_S": "0"}},
            "api": {"with": None, "without": "bench.api_without_histogram"}}


def bench_metrics(system: System, seconds: float, events: int) -> dict:
    burst = ["--burst", "1000000", "--duration", str(seconds), "--concurrency", "64", "--users", "200"]
    peaks: dict[str, list[float]] = {"with": [], "without": []}
    drains: dict[str, list[float]] = {"with": [], "without": []}
    for run, variant in enumerate(("with", "without", "with", "without")):
        part = system.beside(Names.of(f"bench_metrics_web_{run}"), QUIET)
        part.create_topics()
        web = part.start_web(env=VARIANTS["web"][variant])
        try:
            say(f"metrics: web's peak {variant} its lag exporter")
            load(web.address, "--burst", "2000", "--concurrency", "64")
            peaks[variant].append(load(web.address, *burst)["rate"])
        finally:
            part.stop()
        part = system.beside(Names.of(f"bench_metrics_api_{run}"), QUIET)
        part.create_topics()
        produce(part, events)
        say(f"metrics: the api's drain of {events} events {variant} its purchase-to-stored histogram")
        drains[variant].append(round(api_drain_rate(part, events, VARIANTS["api"][variant])[0]))
    web_with, web_without = max(peaks["with"]), max(peaks["without"])
    api_with, api_without = max(drains["with"]), max(drains["without"])
    return {"web_rps_with": web_with, "web_rps_without": web_without, "web_ratio": round(web_with / web_without, 3),
            "api_docs_per_s_with": api_with, "api_docs_per_s_without": api_without,
            "api_ratio": round(api_with / api_without, 3), "web_runs": peaks, "api_runs": drains, "events": events}
