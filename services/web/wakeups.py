"""Fewer wake-ups of kafka-python's I/O thread from the event loop.

kafka-python's send() wakes its I/O thread whenever the record starts a new batch: a byte written to a socket pair,
a system call on the event loop's thread, and a thread woken to compete for the GIL. At web's peak nearly every
send starts a batch (eight partitions, a 2-ms linger), and `make profile` found a buy paying about 30 µs of the loop's
CPU for it. Coalesced here: from the event loop's thread at most one wake-up a WINDOW_S; one asked for sooner is
sent at the window's end instead (a timer on the loop), so a record waits at most WINDOW_S longer to leave, and only
at rates where wake-ups come closer than that. From any other thread (flush, close, the I/O thread itself) a
wake-up goes at once.

It replaces the sender's `wakeup` on the instance: kafka-python 3.0's KafkaProducer calls `self._sender.wakeup()`
(kafka/producer/kafka.py, pinned in requirements.txt), and so does the sender on itself when it is closed.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable

WINDOW_S = 0.001


class CoalescedWakeups:
    def __init__(self, wake: Callable[[], None], loop: asyncio.AbstractEventLoop, window_s: float = WINDOW_S) -> None:
        self._wake = wake
        self._loop = loop
        self._loop_thread = threading.get_ident()  # made on the loop's thread
        self._window = window_s
        self._last = float("-inf")
        self._pending = False
        self.sent = self.coalesced = 0

    def __call__(self) -> None:
        if threading.get_ident() != self._loop_thread:
            self._wake()
            return
        if self._pending:  # one is due at the window's end: it wakes the thread for this record too
            self.coalesced += 1
            return
        now = self._loop.time()
        if now - self._last >= self._window:
            self._send(now)
            return
        self._pending = True
        self.coalesced += 1
        self._loop.call_at(self._last + self._window, self._due)

    def _due(self) -> None:
        self._pending = False
        self._send(self._loop.time())

    def _send(self, now: float) -> None:
        self._last = now
        self.sent += 1
        self._wake()

    @classmethod
    def install(cls, producer, loop: asyncio.AbstractEventLoop, window_s: float = WINDOW_S) -> CoalescedWakeups:
        sender = producer._sender
        wakeups = cls(sender.wakeup, loop, window_s)
        sender.wakeup = wakeups
        return wakeups
