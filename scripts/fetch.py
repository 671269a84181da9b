"""Everything the project builds or fetches once into its cache ($PURCHASE_CACHE, ~/.cache/purchase-system), two at
a time, the longest first: what `make dev` runs, or all that `make test` needs.

    python -m scripts.fetch dev           # Kafka's jars (mvn) and FerretDB (go build): the local stack
    python -m scripts.fetch test          # also Keycloak, helm, tilt, the CRD schemas, the control plane's and the
                                          # node's binaries, and the images
    python -m scripts.fetch servers       # all of test but the control plane's and the node's Go programs
    python -m scripts.fetch controlplane  # those alone

`make test` fetches `servers`, then the test session builds `controlplane` in the background (niced) while the
tests that need no cluster run; the cluster's tests run last, once it is built (tests/conftest.py).

Each step does nothing when its result is in the cache already. On 2 cores, two at a time is faster than one after
another: one step's downloads, links and single-threaded tools (mvn, mmdebstrap, npm) overlap another's compile
(docs/testing.md has a cold run's times). Each step's time is recorded (scripts/stack/builds.py) and printed.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from scripts import images, tools
from scripts.controlplane import build as controlplane
from scripts.stack import builds
from scripts.stack.errors import StackError, say
from scripts.stack.ferretdb import ferretdb_binary
from scripts.stack.kafka import kafka_libs
from scripts.stack.keycloak import keycloak_home
from scripts.stack.paths import CACHE, ROOT
from scripts.stack.process import Running, spawn

Step = tuple[str, Callable[[], object]]
PARALLEL = 2


def dev_steps() -> list[Step]:
    return [("FerretDB", ferretdb_binary), ("Kafka jars", kafka_libs)]


def controlplane_steps() -> list[Step]:
    """The control plane's and the node's Go programs not built yet, longest first."""
    return [(f"{group.module} ({', '.join(group.binaries)})", group.build) for group in controlplane.GROUPS
            if not group.built()]


def server_steps() -> list[Step]:
    """Longest first (cold, on 2 cores)."""
    return [("tilt", tools.require_tilt), ("images", lambda: images.build_all(images.base_image())),
            ("helm", tools.helm_binary), *dev_steps(), ("Keycloak", keycloak_home), ("CRD schemas", tools.crd_schemas)]


def test_steps() -> list[Step]:
    """Longest first, so the two long Go builds never come last."""
    groups, servers = controlplane_steps(), server_steps()
    return [*groups[:2], *servers[:2], *groups[2:], *servers[2:]]


STEPS = {"dev": dev_steps, "test": test_steps, "servers": server_steps, "controlplane": controlplane_steps}


def in_background(what: str, log: Path) -> Running:
    """`python -m scripts.fetch <what>` started niced (what runs beside it keeps the CPU it asks for), its output
    in `log`; the caller waits for it."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as output:
        return spawn(["nice", "-n", "10", sys.executable, "-m", "scripts.fetch", what], output, cwd=ROOT,
                     start_new_session=True)  # a process group of its own, the go commands in it: stopped as one


def run_steps(steps: list[Step], parallel: int = PARALLEL) -> None:
    CACHE.mkdir(parents=True, exist_ok=True)
    controlplane.BIN.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()

    def timed(step: Step) -> None:
        name, make = step
        began = time.monotonic()
        result = make()
        seconds = time.monotonic() - began
        if seconds > 5:  # something was made, not found in the cache
            builds.record(name, seconds)
        say(f"{name}: {result if isinstance(result, str) else 'ready'} ({seconds:.0f} s)")

    with ThreadPoolExecutor(parallel, thread_name_prefix="fetch") as pool:
        for done in [pool.submit(timed, step) for step in steps]:
            done.result()  # the first failure, once the others have finished
    say(f"everything in the cache after {time.monotonic() - started:.0f} s ({parallel} at a time)")


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[1] not in STEPS:
        print(__doc__, file=sys.stderr)
        return 2
    try:
        run_steps(STEPS[argv[1]]())
    except StackError as exc:
        say(f"error: {exc}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
