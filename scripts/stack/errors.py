"""What goes wrong, and what we say: StackError for anything the stack, a build or the control plane cannot do
(with what to do about it in the message), and `say` for progress on stderr."""

from __future__ import annotations

import sys


class StackError(RuntimeError):
    pass


class TimedOut(StackError):
    """A wait (scripts/stack/waiting.py) ran out of time."""


def say(message: str) -> None:
    try:
        print(f"[stack] {message}", file=sys.stderr, flush=True)
    except OSError:  # the terminal or pipe is gone: stopping what we started matters more than saying so
        pass
