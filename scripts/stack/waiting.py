"""One way to wait: `until(predicate, timeout, what)`, polling, failing with what it waited for, and sooner
when a process it depends on exits meanwhile."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Protocol, TypeVar

import requests

from .errors import StackError, TimedOut

T = TypeVar("T")


class Watched(Protocol):
    """A process to watch while waiting: a Server (scripts/stack/process.py), or anything with its shape."""
    name: str

    def exit_code(self) -> int | None: ...

    def where_to_look(self) -> str: ...


def until(predicate: Callable[[], T], timeout: float, what: str | Callable[[], str], process: Watched | None = None,
          interval: float = 0.1) -> T:
    """Call `predicate` every `interval` seconds until it returns something true, and return that.

    TimedOut after `timeout` seconds ("waiting for <what>"; `what` may be a function, called then, to say the
    last state seen); StackError at once if `process` exits meanwhile."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if process is not None and (code := process.exit_code()) is not None:
            raise StackError(f"{process.name} exited with {code} while waiting for {_said(what)}"
                             f"{process.where_to_look()}")
        if time.monotonic() > deadline:
            where = process.where_to_look() if process is not None else ""
            raise TimedOut(f"timed out after {timeout:.0f}s waiting for {_said(what)}{where}")
        time.sleep(interval)


def _said(what: str | Callable[[], str]) -> str:
    return what if isinstance(what, str) else what()


def http_ready(url: str, timeout: float = 1.0) -> bool:
    """Does `url` answer 200 now."""
    try:
        return requests.get(url, timeout=timeout).status_code == 200
    except requests.RequestException:
        return False


def wait_http(url: str, timeout: float = 30.0, process: Watched | None = None) -> None:
    """Until `url` answers 200; TimedOut if it does not in time, StackError if `process` exits meanwhile."""
    until(lambda: http_ready(url), timeout, f"{url} to answer 200", process, interval=0.2)

