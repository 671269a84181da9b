"""`python -m bench.soak`: see bench/soak/__init__.py."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from collections import Counter
from pathlib import Path

import pymongo

from scripts.loadgen.accounting import account
from scripts.stack.paths import ROOT

from ..measure import QUIET, say, servers
from . import __doc__ as ABOUT
from .drift import drift, table
from .drive import drive
from .plot import plot

RESULTS = ROOT / "bench" / "results"
SETTLE_S = 120.0


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=ABOUT, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--rate", type=float, default=200.0, help="keyed buys per second")
    parser.add_argument("--reads", type=float, default=20.0, help="history reads per second")
    parser.add_argument("--users", type=int, default=1000)
    parser.add_argument("--out", type=Path, default=RESULTS, help="folder for soak.json and soak.png")
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    os.chdir(ROOT)
    with servers("soak-", extra_env=QUIET) as system:
        system.create_topics()
        system.start_api()
        system.start_web()
        say(f"soak: {args.rate:.0f} buys/s and {args.reads:.0f} reads/s for {args.minutes:g} min")
        traffic, samples = asyncio.run(drive(system, args.minutes, args.rate, args.reads, args.users))
        say("soak: accounting for every buy (unknown outcomes retried with their keys)")
        with pymongo.MongoClient(system.mongodb_uri) as client:
            collection = client[system.names.database]["purchases"]
            accounting = account(system.web_url, traffic.requests,
                                 lambda: [doc["_id"] for doc in collection.find({}, {"_id": 1})], settle_s=SETTLE_S)
    statuses = Counter(str(r.status) for r in traffic.requests)
    verdict = {"sent": accounting.sent, "accepted": accounting.accepted, "refused": accounting.refused_503,
               "no_answer": accounting.no_answer, "stored": accounting.stored, "lost": len(accounting.lost),
               "unexpected": len(accounting.unexpected)}
    result = {"minutes": args.minutes, "rate": args.rate, "reads": args.reads, "buys": dict(statuses),
              "verify": verdict, "drift": drift(samples, args.minutes), "samples": samples,
              "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "soak.json").write_text(json.dumps(result, indent=1) + "\n")
    plot(samples, args.out / "soak.png")
    print(f"\n{table(result['drift'], args.minutes)}")
    print(f"\nbuys by status: {dict(statuses)}; accounting: {accounting.line()}")
    say(f"wrote {args.out}/soak.json and soak.png")
    return 1 if accounting.lost or accounting.unexpected else 0


if __name__ == "__main__":
    sys.exit(main())
