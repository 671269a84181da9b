"""Fire purchases at web and measure what happened: rates, latencies, and (with --verify) that every accepted
purchase became visible exactly once. With --lag it samples the consumer group's lag, the signal KEDA scales on.

    python scripts/load.py --burst 5000 --concurrency 64 --verify
    python scripts/load.py --rate 200 --duration 10 --verify --json
    python scripts/load.py --url http://localhost:8080 --burst 20000 --lag --plot run.png   # through a port-forward

Bounded in count and time; stops by itself; Ctrl-C stops sending and prints what it has.
"""

import os
import runpy
import sys

if __name__ == "__main__":
    # Run as a file, from anywhere: the repository's root goes on the path, then the package runs.
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    runpy.run_module("scripts.loadgen", run_name="__main__", alter_sys=True)
