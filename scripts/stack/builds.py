"""What the project built or fetched once into the cache, and how long each took: CACHE/builds.json, written by the
builds as they finish, printed at the end of a test session (so a cold run shows where its time went)."""

from __future__ import annotations

import contextlib
import fcntl
import json
import threading
import time

from .paths import CACHE

RECORD = CACHE / "builds.json"
_lock = threading.Lock()


@contextlib.contextmanager
def _locked():
    """One writer at a time: threads of this process, and other processes (a background build beside a test session)."""
    RECORD.parent.mkdir(parents=True, exist_ok=True)
    with _lock, open(RECORD.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def record(name: str, seconds: float) -> None:
    with _locked():
        entries = recorded()
        entries[name] = {"seconds": round(seconds, 1), "finished": round(time.time()),
                         "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        RECORD.write_text(json.dumps(entries, indent=2) + "\n")


def recorded() -> dict[str, dict]:
    try:
        return json.loads(RECORD.read_text())
    except (OSError, ValueError):
        return {}


def summary(since: float | None = None) -> str:
    """One line: each build's time, longest first; `since` (Unix time): only those made since then."""
    entries = sorted(((name, e) for name, e in recorded().items() if since is None or e.get("finished", 0) >= since),
                     key=lambda item: -item[1]["seconds"])
    return ", ".join(f"{name} {e['seconds']:.0f} s" for name, e in entries) or "none"
