"""`make profile`: where web's CPU goes at its peak, by part, from a sampling profiler (py-spy, pinned).

    python -m bench.profile [--seconds 15] [--svg docs/profile-web.svg]

Starts its own Kafka and FerretDB and one web (as `make bench` does), drives web's POST /api/buy at its peak with
the bench's client (scripts/load.py, 64 connections, in its own process), and records web three times while the
load runs, each window `--seconds` long:

1. every sample, idle ones too (`--idle`): how a thread's time splits between work, waiting for I/O in the event
   loop's select, and waiting elsewhere (the GIL, a lock);
2. only the samples of threads on a CPU: the table of CPU per accepted purchase by part, scaled to what /proc says
   web's process used in that window, over the purchases web accepted in it (its own counter);
3. a flame graph of both threads (`--svg`).

py-spy reads the process from outside (`--nonblocking`: web is never paused). Figures, not a test: a noisy machine
moves them; compare the shares within one run.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import requests

from scripts.stack.errors import StackError
from scripts.stack.paths import ROOT
from scripts.stack.process import run, spawn
from scripts.stack.service import Names
from scripts.stack.system import System

from .measure import LOAD, QUIET, cpu_seconds, load, say, servers

RESULTS = ROOT / "bench" / "results" / "profile.json"
RATE = 200  # samples a second, a thread
PY_SPY = Path(sys.executable).with_name("py-spy")

# A sample's part: its deepest frame that belongs to one of these (py-spy names a frame "function (path:line)", the
# path relative to where the module was found), searched leaf first. The frames every stack of the loop's thread
# starts with (the runner that runs the loop) belong to the loop.
LOOP_FRAMES = r"\(<frozen runpy>|\(services/common/runner\.py|\(services/web/__main__\.py"
LOOP_PARTS = (
    ("metrics (prometheus-client)", r"\(prometheus_client/"),
    ("the producer's send()", r"\(kafka/"),
    ("aiohttp's request and response", r"\((aiohttp|multidict|yarl|propcache)/"),
    ("our handler (parse, validate, id, JSON)", r"\(services/"),
)
SENDER_PARTS = (
    ("producer thread: record batches", r"\(kafka/record/|\(kafka/producer/record_accumulator"),
    ("producer thread: request encoding", r"\(kafka/protocol/"),
    ("producer thread: socket and connection", r"\(kafka/(conn|client_async|net)|\((selectors|socket|ssl)\.py"),
)
LOOP_OTHER = "the event loop and its tasks (asyncio, uvloop)"
SENDER_OTHER = "producer thread: the rest of its loop"


@dataclass
class Stack:
    thread: str  # the thread's name: MainThread (the event loop), kafka-python-producer-1-network-thread, ...
    frames: list[str]  # root first: "function (file:line)"
    count: int


def parse_raw(text: str) -> list[Stack]:
    """py-spy's raw (collapsed) output with --threads: `thread (tid): name;frame;frame count` a line."""
    stacks = []
    for line in text.splitlines():
        head, _, count = line.rpartition(" ")
        if not head or not count.isdigit():
            continue
        thread, *frames = head.split(";")
        name = thread.split(": ", 1)[1] if ": " in thread else thread
        stacks.append(Stack(name, frames, int(count)))
    return stacks


def is_loop(stack: Stack) -> bool:
    return stack.thread == "MainThread"


def is_sender(stack: Stack) -> bool:
    return stack.thread.endswith("-network-thread")


def part_of(stack: Stack) -> str:
    parts, other = (LOOP_PARTS, LOOP_OTHER) if is_loop(stack) else (SENDER_PARTS, SENDER_OTHER)
    if not (is_loop(stack) or is_sender(stack)):
        return f"other threads ({re.sub(r'[-_]?[0-9]+$', '', stack.thread)})"
    for frame in reversed(stack.frames):
        if re.search(LOOP_FRAMES, frame):
            continue
        for name, pattern in parts:
            if re.search(pattern, frame):
                return name
    return other


def in_the_loop(stack: Stack) -> bool:
    """A sample of the event loop's thread in the loop itself (uvloop's run_forever: its select, or its own C
    code), not in a callback or a handler."""
    return bool(stack.frames) and re.search(r"run_forever|run_until_complete|select", stack.frames[-1]) is not None


def accepted(metrics_url: str) -> float:
    text = requests.get(metrics_url, timeout=5).text
    return float(re.search(r"^purchases_accepted_total (\S+)$", text, re.M).group(1))


def record(pid: int, seconds: float, output: Path, *extra: str, attempts: int = 3) -> None:
    """py-spy's samples of `pid` for `seconds`. py-spy reading a running process from outside sometimes dies of a
    segmentation fault (2 of 8 recordings here, 8 December): a recording that dies of a signal is made again."""
    command = [str(PY_SPY), "record", "--pid", str(pid), "--duration", str(int(seconds)), "--rate", str(RATE),
               "--threads", "--nonblocking", "--output", str(output), *extra]
    for attempt in range(1, attempts + 1):
        result = run(command, "py-spy", check=False, timeout=seconds + 60)
        if result.returncode >= 0 or attempt == attempts:
            break
        say(f"profile: py-spy died of signal {-result.returncode}; recording again ({attempt + 1} of {attempts})")
    if result.returncode != 0:
        raise StackError(f"py-spy failed (exit {result.returncode}):\n{result.stderr or result.stdout}")


def profile(system: System, seconds: float, svg: Path) -> dict:
    part = system.beside(Names.of("profile_web"), QUIET)
    part.create_topics()
    web = part.start_web()
    pid = web.process.pid
    load(web.address, "--burst", "2000", "--concurrency", "64")  # warm-up
    log = open(part.workdir / "load.out", "w")
    driving = spawn([*LOAD, "--url", web.address, "--burst", "10000000", "--duration", str(seconds * 3 + 20),
                     "--concurrency", "64", "--users", "200"], log, errors_too=False)
    try:
        time.sleep(5)  # at its peak
        say("profile: every sample, idle ones too")
        record(pid, seconds, part.workdir / "all.txt", "--format", "raw", "--idle")
        say("profile: the samples on a CPU, with web's CPU time and its accepted purchases in the same window")
        cpu, bought = cpu_seconds(pid), accepted(web.metrics_url)
        record(pid, seconds, part.workdir / "active.txt", "--format", "raw")
        cpu, bought = cpu_seconds(pid) - cpu, accepted(web.metrics_url) - bought
        say(f"profile: the flame graph ({svg})")
        svg.parent.mkdir(parents=True, exist_ok=True)
        record(pid, seconds, svg, "--format", "flamegraph")
    finally:
        if driving.poll() is None:
            driving.terminate()
        driving.wait(30)
        log.close()
        part.stop()
    for window in ("all", "active"):  # kept beside the results: the stacks behind the table
        shutil.copy(part.workdir / f"{window}.txt", RESULTS.with_name(f"profile-{window}.txt"))
    return summarise(parse_raw((part.workdir / "all.txt").read_text()),
                     parse_raw((part.workdir / "active.txt").read_text()), cpu, bought, seconds)


def summarise(every: list[Stack], active: list[Stack], cpu_s: float, bought: float, seconds: float) -> dict:
    on_cpu = sum(s.count for s in active)
    parts: Counter = Counter()
    for stack in active:
        parts[part_of(stack)] += stack.count
    us_per_purchase = cpu_s / bought * 1e6 if bought else float("nan")
    # The loop's thread: on a CPU (the active window), in its select (the idle window, less the loop's own work
    # that shows the same frame: uvloop's C code has no Python frame of its own), or waiting elsewhere.
    window = max(RATE * seconds, 1)
    loop_all = sum(s.count for s in every if is_loop(s))
    busy_share = sum(s.count for s in active if is_loop(s)) / window
    in_select = sum(s.count for s in every if is_loop(s) and in_the_loop(s)) / max(loop_all, 1)
    select_share = max(0.0, in_select - sum(s.count for s in active if is_loop(s) and in_the_loop(s)) / window)
    return {
        "purchases_per_s": round(bought / seconds), "cpu_us_per_purchase": round(us_per_purchase, 1),
        "cpu_cores": round(cpu_s / seconds, 2),
        "event_loop_busy": round(busy_share, 3),
        "event_loop_waiting_for_io": round(select_share, 3),
        "event_loop_waiting_elsewhere": round(max(0.0, 1 - busy_share - select_share), 3),
        "parts_us_per_purchase": {name: round(us_per_purchase * n / on_cpu, 1) for name, n in parts.most_common()},
        "parts_share": {name: round(n / on_cpu, 3) for name, n in parts.most_common()},
    }


def table(result: dict) -> str:
    lines = [f"web at {result['purchases_per_s']} purchases/s: {result['cpu_us_per_purchase']} µs of CPU a purchase "
             f"({result['cpu_cores']} cores); the event loop's thread busy {result['event_loop_busy']:.0%}, "
             f"waiting for I/O {result['event_loop_waiting_for_io']:.0%}, waiting elsewhere (the GIL, a lock) "
             f"{result['event_loop_waiting_elsewhere']:.0%}", "",
             "| part | CPU µs a purchase | share |", "| --- | --- | --- |"]
    lines += [f"| {name} | {us} | {result['parts_share'][name]:.0%} |"
              for name, us in result["parts_us_per_purchase"].items()]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--svg", type=Path, default=ROOT / "docs" / "profile-web.svg")
    args = parser.parse_args()
    os.chdir(ROOT)
    with servers("profile-") as system:
        result = profile(system, args.seconds, args.svg)
    result["when"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(table(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
