"""Fire purchases at web and measure what happened: rates, latencies, and (with --verify) that every accepted
purchase became visible exactly once. With --lag it samples the consumer group's lag, the signal KEDA scales on.

    python scripts/load.py --burst 5000 --concurrency 64 --verify
    python scripts/load.py --rate 200 --duration 10 --verify --json
    python scripts/load.py --url http://localhost:8080 --burst 20000 --lag --plot run.png   # through a port-forward
    python scripts/load.py --burst 2000 --verify --token-command "curl -s $ISSUER/protocol/openid-connect/token \
        -d grant_type=password -d client_id=shop-web -d username=alice -d password=... | jq -r .access_token"

Bounded in count and time; stops by itself; Ctrl-C stops sending and prints what it has.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import signal
import sys
import uuid
from typing import Any

import aiohttp

from .auth import BearerToken, TokenCommandError
from .lag_sampling import sample_lag
from .outcomes import Run
from .reporting import plot, print_summary, progress, report
from .sending import REQUEST_TIMEOUT_S, Sender, send
from .verifying import READ_RATE, verify


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="scripts/load.py", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default="http://localhost:8080", help="web's base URL")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--rate", type=float, help="open loop: this many purchases per second, for --duration")
    mode.add_argument("--burst", type=int, help="this many purchases as fast as --concurrency allows")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds: length of a --rate run, cap on a burst")
    parser.add_argument("--concurrency", type=int, default=64, help="most requests in flight")
    parser.add_argument("--users", type=int, default=50, help="size of the random user pool (ids unique to this run)")
    parser.add_argument("--seed", type=int, help="random seed for users, items and prices")
    parser.add_argument("--verify", action="store_true", help="check every accepted purchase becomes visible once")
    parser.add_argument("--verify-timeout", type=float, default=30.0, help="seconds to wait for visibility")
    parser.add_argument("--read-rate", type=float, default=READ_RATE,
                        help="history reads a second while verifying, at most (its own load stays small)")
    parser.add_argument("--lag", action="store_true", help="sample the consumer group's lag from Kafka")
    parser.add_argument("--bootstrap", default=os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092"))
    parser.add_argument("--group", default=os.environ.get("KAFKA_CONSUMER_GROUP", "purchase-group"))
    parser.add_argument("--topic", default=os.environ.get("KAFKA_TOPIC", "purchases"))
    parser.add_argument("--lag-settle", type=float, default=30.0, help="seconds to keep sampling lag after the run")
    parser.add_argument("--token-command", metavar="CMD",
                        help="with web's sign-in on: a shell command printing a bearer token; the run buys as its "
                             "customer (run again a minute before the token expires)")
    parser.add_argument("--customer-claim", default="sub", help="the token's claim naming the customer (web's "
                                                                "OIDC_CUSTOMER_CLAIM)")
    parser.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    parser.add_argument("--plot", metavar="FILE.png", help="latency and lag over time (needs matplotlib)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    if args.rate is None and args.burst is None:
        args.burst = 1000
    if (args.rate is not None and args.rate <= 0) or (args.burst is not None and args.burst <= 0):
        parser.error("--rate and --burst must be positive")
    if args.concurrency < 1 or args.users < 1 or args.duration <= 0 or args.read_rate <= 0:
        parser.error("--concurrency, --users, --duration and --read-rate must be positive")
    return args


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    run = Run()
    stop, sent = asyncio.Event(), asyncio.Event()
    loop = asyncio.get_running_loop()

    def interrupt() -> None:
        run.interrupted = True
        stop.set()

    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, interrupt)
    run_id = uuid.uuid4().hex[:8]
    token = BearerToken(args.token_command, args.customer_claim) if args.token_command else None
    # Signed in, every purchase is the token's customer's; else a pool of users of this run's own.
    users = [token.customer] if token else [f"load-{run_id}-{n}" for n in range(args.users)]
    sender = Sender(args.url, users, args.seed)
    count = args.burst if args.burst is not None else int(args.rate * args.duration)
    connector = aiohttp.TCPConnector(limit=args.concurrency + 16)
    async with aiohttp.ClientSession(connector=connector, headers={"Authorization": token.header} if token else None,
                                     timeout=aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S)) as session:
        renewal = asyncio.create_task(token.keep_fresh(session)) if token else None
        helpers = []
        if args.verify:
            helpers.append(asyncio.create_task(verify(session, sender.url, run, sent, args.verify_timeout,
                                                      args.read_rate)))
        if args.lag:
            helpers.append(asyncio.create_task(
                sample_lag(args.bootstrap, args.group, args.topic, run, sent, args.lag_settle)))
        bar = None if args.quiet else asyncio.create_task(progress(run, count, sent))
        await send(sender, session, run, count, args.concurrency, args.rate, args.duration, stop)
        sent.set()
        if bar:
            await bar
        if helpers:
            # Ctrl-C during verification ends it early, with what was seen so far.
            waiting = asyncio.gather(*helpers)
            stopped = asyncio.create_task(stop.wait())
            await asyncio.wait({waiting, stopped}, return_when=asyncio.FIRST_COMPLETED)
            if not waiting.done():
                waiting.cancel()
            stopped.cancel()
        if renewal:
            renewal.cancel()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    run.cpu_s = usage.ru_utime + usage.ru_stime
    result = report(run, args.verify)
    if args.plot:
        plot(run, args.plot)
    return result


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        result = asyncio.run(main_async(args))
    except TokenCommandError as exc:
        print(f"load.py: {exc}", file=sys.stderr)
        return 2
    print_summary(result)
    if args.json:
        print(json.dumps(result))
    if args.verify and any(result["verify"][k] for k in ("missing", "duplicated", "unreadable_users")):
        return 1
    return 0
