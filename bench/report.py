"""The benchmark's report: the machine it ran on, and the markdown table of every figure beside its ceiling."""

from __future__ import annotations

import os
import platform
from pathlib import Path


def machine() -> dict:
    model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), platform.processor())
    return {"cores": os.cpu_count(), "cpu": model, "python": platform.python_version(),
            "kafka": "4.1.1 (one KRaft node)", "database": "FerretDB 1.24.2 on PostgreSQL"}


def table(results: dict) -> str:
    w, d, e, r, h = results["web"], results["drain"], results["e2e"], results["rss_mib"], results["history"]
    cost = results["metrics"]
    rows = [
        ("web POST /api/buy", f"{w['rps']:.0f} req/s; {w['cpu_us_per_purchase']} µs of web's CPU a purchase",
         f"{w['ceiling_rps']:.0f} req/s (bare aiohttp)", f"{w['ratio']:.0%}", ">= 70%; <= 120 µs"),
        ("web POST /api/buy, two workers on the port (WEB_WORKERS=2)", f"{w['rps_2_workers']:.0f} req/s",
         f"{w['ceiling_rps']:.0f} req/s (bare aiohttp, one process)", f"{w['rps_2_workers'] / w['ceiling_rps']:.0%}",
         ""),
        (f"web latency at {w['half_peak_rps']:.0f} req/s", f"p50 {w['p50_ms']} ms, p99 {w['p99_ms']} ms", "", "",
         "p99 <= 20 ms"),
        (f"web latency at {w['moderate_rps']:.0f} req/s", f"p50 {w['moderate_p50_ms']} ms, "
         f"p99 {w['moderate_p99_ms']} ms",
         f"p50 {w['ceiling_moderate_p50_ms']} ms, p99 {w['ceiling_moderate_p99_ms']} ms (bare aiohttp)", "",
         "p50 <= the bare p50 + 0.5 ms"),
        ("api drain of 100k events", f"{d['docs_per_s']} docs/s", f"{d['ceiling_docs_per_s']} docs/s (raw insert)",
         f"{d['ratio']:.0%}", ">= 85%"),
        (f"purchase to stored (= readable) at {e['rate']:.0f}/s, api histogram",
         f"p50 <= {e['stored_p50_ms']} ms, p99 <= {e['stored_p99_ms']} ms", "", "", "p99 <= 250 ms"),
        (f"purchase to visible in history reads at {e['rate']:.0f}/s, load.py --verify",
         f"p50 {e['visible_p50_ms']} ms, p99 {e['visible_p99_ms']} ms; missing {e['missing']}, "
         f"duplicated {e['duplicated']}; reading {e['read_rate']}/s, the client using {e['client_cpu_share']:.0%} "
         "of the cores", "", "", "p99 <= 250 ms"),
        (f"history read, {h['stored'] // 1000}k stored ({h['per_user']} per user), api GET /api/purchases/{{userId}}",
         f"p50 {h['api_p50_ms']} ms, p99 {h['api_p99_ms']} ms",
         f"p50 {h['ceiling_p50_ms']} ms, p99 {h['ceiling_p99_ms']} ms (raw find)", "", "p99 <= 20 ms"),
        ("the same raw find without the GIN index", f"p50 {h['no_gin_p50_ms']} ms, p99 {h['no_gin_p99_ms']} ms",
         "", "", ""),
        ("web POST /api/buy with sign-in on (one customer's Keycloak token; verified once, then cached)",
         f"{results['auth']['rps_on']:.0f} req/s; off: {results['auth']['rps_off']:.0f} req/s",
         f"{results['auth']['ceiling_rps']:.0f} req/s (bare aiohttp)",
         f"on/off {results['auth']['ratio']:.0%}", "on >= 85% of off"),
        ("one token verified with no cache (RS256, PyJWT)", f"{results['auth']['uncached_verify_us']} µs", "", "", ""),
        ("web POST /api/buy against Kafka with SASL/SCRAM-SHA-512 and ACLs",
         f"{results['sasl']['rps_on']:.0f} req/s; plaintext: {results['sasl']['rps_off']:.0f} req/s", "",
         f"on/off {results['sasl']['ratio']:.0%}", ""),
        ("producing a purchase, acks=all, idempotent, one core: kafka-python 3.0.12",
         f"{results['producers']['kafka_python_records_per_s']} records/s, "
         f"{results['producers']['kafka_python_cpu_us_per_record']} µs CPU a record",
         f"aiokafka 0.14.0: {results['producers']['aiokafka_records_per_s']} records/s, "
         f"{results['producers']['aiokafka_cpu_us_per_record']} µs", "", ""),
        ("web POST /api/buy with its lag exporter (every 5 s)",
         f"{cost['web_rps_with']:.0f} req/s; without: {cost['web_rps_without']:.0f} req/s", "",
         f"with/without {cost['web_ratio']:.0%}", ""),
        (f"api drain of {cost['events'] // 1000}k events with its purchase-to-stored histogram",
         f"{cost['api_docs_per_s_with']} docs/s; without: {cost['api_docs_per_s_without']} docs/s", "",
         f"with/without {cost['api_ratio']:.0%}", ""),
        ("resident memory under load", f"web {r['web']} MiB, api {r['api']} MiB", "", "",
         "web <= 60, api <= 80 MiB"),
    ]
    lines = ["| measure | figure | ceiling, same run | ratio | target |", "| --- | --- | --- | --- | --- |"]
    lines += [f"| {' | '.join(row)} |" for row in rows]
    tuning = results["tuning"]
    lines += ["", f"kafka-python's knobs, one at a time (crc32c's C extension in use: {tuning['crc32c_native']}):", "",
              "| setting | web's peak | p50 at 500 req/s | p99 at 500 req/s |", "| --- | --- | --- | --- |"]
    lines += [f"| {r['setting']} | {r['rps']:.0f} req/s | {r['moderate_p50_ms']} ms | {r['moderate_p99_ms']} ms |"
              for r in tuning["settings"]]
    m = results["machine"]
    lines.append(f"\n{m['cores']} cores, {m['cpu']}, Python {m['python']}; Kafka {m['kafka']}, {m['database']}.")
    return "\n".join(lines)
