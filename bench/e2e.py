"""Phase `e2e`: at a steady 1,000 purchases/s, the api's accepted-to-stored histogram (a stored purchase is what a
history read returns), then, in a second run, visibility as load.py --verify observes it through history reads;
and the resident memory of web and api meanwhile."""

from __future__ import annotations

import threading
import time

import requests

from scripts.stack.service import Names
from scripts.stack.system import System

from .measure import QUIET, histogram_quantiles, load, rss_mib, say


def bench_e2e(system: System, rate: int, seconds: float) -> tuple[dict, dict]:
    """Two runs at `rate`/s: one measured by the api's own histogram (accepted -> stored, which is when a
    history read can see it), one verified by load.py polling the history, as a client sees it."""
    peaks = {"web": 0.0, "api": 0.0}
    e2e = {}
    for verified in (False, True):
        part = system.beside(Names.of("bench_e2e_verified" if verified else "bench_e2e"), QUIET)
        part.create_topics()
        api, web = part.start_api(), part.start_web()
        sampling = threading.Event()

        def sample(sampling=sampling, services=(("web", web), ("api", api))) -> None:
            while not sampling.is_set():
                for name, service in services:
                    peaks[name] = max(peaks[name], rss_mib(service.process.pid))
                time.sleep(0.25)

        sampler = threading.Thread(target=sample)
        sampler.start()
        try:
            verifying = ", verifying through history reads" if verified else ""
            say(f"e2e: {rate} purchases/s for {seconds:.0f} s{verifying}")
            args = ["--rate", str(rate), "--duration", str(seconds), "--concurrency", "256", "--users", "20"]
            result = load(f"http://127.0.0.1:{web.port}", *args, *(["--verify"] if verified else []))
            time.sleep(1)
            metrics = requests.get(api.metrics_url, timeout=5).text
        finally:
            sampling.set()
            sampler.join()
            part.stop()
        if verified:
            e2e.update({"missing": result["verify"]["missing"], "duplicated": result["verify"]["duplicated"],
                        "visible_p50_ms": result["verify"]["visible_ms"]["p50"],
                        "visible_p99_ms": result["verify"]["visible_ms"]["p99"],
                        "read_rate": result["verify"]["read_rate"], "client_cpu_share": result["client_cpu_share"]})
        else:
            stored = histogram_quantiles(metrics, "purchase_accepted_to_stored_seconds")
            e2e.update({"rate": result["rate"], "accepted": result["accepted"],
                        "stored_p50_ms": stored.get(0.5), "stored_p99_ms": stored.get(0.99),
                        "post_p50_ms": result["latency_ms"]["p50"], "post_p99_ms": result["latency_ms"]["p99"]})
    return e2e, {"web": round(peaks["web"], 1), "api": round(peaks["api"], 1)}
