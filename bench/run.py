"""`make bench`: how fast each part of the system is, beside a ceiling measured in the same run.

Starts its own Kafka and FerretDB on free loopback ports (so `make dev` may keep running), then measures:

1. web    POST /api/buy peak throughput vs a bare aiohttp handler answering `{}`, with the same client
          (scripts/load.py in its own process); latency at half of web's peak, and at 500/s beside the bare
          handler's at the same rate.
2. drain  the api storing 100,000 pre-produced events vs a raw bulk insert of the same documents into a
          collection with the same index.
3. e2e    at a steady 1,000 purchases/s: the api's accepted-to-stored histogram (a stored purchase is what a
          history read returns), then, in a second run, visibility as load.py --verify observes it through
          history reads.
4. rss    resident memory of web and api under that load.
5. history  reads of one user's history (10 purchases each) with 100,000 stored, through the api, beside a raw pymongo
          find on the same server, and that find without the local stack's GIN index (scripts/stack/postgres.py).
6. auth     web's peak with sign-in on (Keycloak's tokens) beside sign-in off and the bare handler (bench/auth.py).
7. sasl     web's peak against a Kafka with SASL/SCRAM and ACLs beside the plaintext one (bench/sasl.py).
8. tuning   kafka-python's knobs, one at a time: web's peak and its p50 at 500/s (bench/tuning.py).
9. producers  producing a purchase through kafka-python and through aiokafka, on one core (bench/producers.py).
10. metrics what the operator's view costs: web's peak with its lag exporter and without, the api's drain with its
            purchase-to-stored histogram and without (bench/metrics.py).

One module a phase (web.py, drain.py, e2e.py, history.py, auth.py, sasl.py, tuning.py, producers.py, metrics.py),
measuring with measure.py, reported by report.py.
Prints a markdown table and writes bench/results/latest.json. Figures, not a pass/fail test: the machine
is shared and noisy; compare each figure with its ceiling from the same run.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

from scripts.stack.paths import ROOT

from .auth import bench_auth
from .drain import bench_drain
from .e2e import bench_e2e
from .history import bench_history
from .measure import say, servers
from .metrics import bench_metrics
from .producers import bench_producers
from .report import machine, table
from .sasl import bench_sasl
from .tuning import bench_tuning
from .web import bench_web

RESULTS = ROOT / "bench" / "results" / "latest.json"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=10, help="length of each timed phase")
    parser.add_argument("--events", type=int, default=100_000, help="events for the drain phase")
    parser.add_argument("--rate", type=int, default=1000, help="purchases/s for the e2e phase")
    parser.add_argument("--stored", type=int, default=100_000, help="purchases stored for the history-read phase")
    parser.add_argument("--per-user", type=int, default=10, help="of those, purchases per user (PostgreSQL orders a "
                        "user's whole history for each read: the cost grows with it, not with the collection)")
    parser.add_argument("--only", choices=["web", "drain", "e2e", "history", "auth", "sasl", "tuning", "producers",
                                           "metrics"],
                        help="one phase (prints JSON, keeps latest.json)")
    args = parser.parse_args()
    os.chdir(ROOT)
    phases = {
        "web": lambda system: {"web": bench_web(system, args.seconds)},
        "drain": lambda system: {"drain": bench_drain(system, args.events)},
        "e2e": lambda system: dict(zip(("e2e", "rss_mib"), bench_e2e(system, args.rate, args.seconds), strict=True)),
        "history": lambda system: {"history": bench_history(system, args.stored, args.per_user)},
        "auth": lambda system: {"auth": bench_auth(system, args.seconds)},
        "sasl": lambda system: {"sasl": bench_sasl(system, args.seconds)},
        "tuning": lambda system: {"tuning": bench_tuning(system, args.seconds)},
        "producers": lambda system: {"producers": bench_producers(system, args.events // 2)},
        "metrics": lambda system: {"metrics": bench_metrics(system, args.seconds, args.events)},
    }
    results: dict = {}
    with servers("bench-") as system:
        for name, phase in phases.items():
            if args.only in (None, name):
                results.update(phase(system))
    if args.only:
        print(json.dumps(results, indent=2))
        return 0
    results["machine"] = machine()
    results["when"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(table(results))
    say(f"wrote {RESULTS.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
