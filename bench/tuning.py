"""Phase `tuning`: what each of kafka-python's knobs does to web's peak POST /api/buy and to its p50 at 500 req/s,
one knob changed at a time from what web ships with, each setting in a web of its own, in one run.

web ships with linger 2 ms while 4 or more purchases await their acknowledgement (KAFKA_LINGER_MS,
KAFKA_LINGER_CROWD; none when alone), kafka-python's 16 KiB batches, no compression, 5 requests in flight (what
idempotence allows at most), and crc32c's C extension for record batches' checksums (a dependency: kafka-python
uses it when it is importable, and checks here). A knob that is no setting of web's reaches its producer through
bench/web_with_producer.py.
"""

from __future__ import annotations

import json

from scripts.stack.service import Names
from scripts.stack.system import System

from .measure import QUIET, load, say

SETTINGS = (  # (what, web's environment, producer options)
    ("as shipped", {}, {}),
    ("no linger (KAFKA_LINGER_MS=0)", {"KAFKA_LINGER_MS": "0"}, {}),
    ("linger 5 ms", {"KAFKA_LINGER_MS": "5"}, {}),
    ("linger 2 ms always (KAFKA_LINGER_CROWD=0)", {"KAFKA_LINGER_CROWD": "0"}, {}),
    ("batches of 64 KiB", {}, {"batch_size": 64 * 1024}),
    ("lz4 compression", {}, {"compression_type": "lz4"}),
    ("one request in flight", {}, {"max_in_flight_requests_per_connection": 1}),
)


def crc32c_native() -> bool:
    from kafka.record import util

    return util.crc32c_c is not None and util._crc32c is util.crc32c_c


def bench_tuning(system: System, seconds: float) -> dict:
    burst = ["--burst", "1000000", "--duration", str(seconds), "--concurrency", "64", "--users", "200"]
    moderately = ["--rate", "500", "--duration", str(seconds), "--concurrency", "256", "--users", "200"]
    rows = []
    for run, (what, env, options) in enumerate(SETTINGS):
        part = system.beside(Names.of(f"bench_tuning_{run}"), QUIET)
        part.create_topics()
        extra = {"BENCH_PRODUCER_OPTIONS": json.dumps(options)} if options else {}
        web = part.start_web(env={**env, **extra}, module="bench.web_with_producer" if options else None)
        try:
            say(f"tuning: {what}")
            load(web.address, "--burst", "2000", "--concurrency", "64")
            peak = load(web.address, *burst)
            moderate = load(web.address, *moderately)
        finally:
            part.stop()
        rows.append({"setting": what, "rps": peak["rate"], "errors": peak["sent"] - peak["accepted"],
                     "moderate_p50_ms": moderate["latency_ms"]["p50"],
                     "moderate_p99_ms": moderate["latency_ms"]["p99"]})
    return {"crc32c_native": crc32c_native(), "settings": rows}
