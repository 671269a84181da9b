"""Coalesced wake-ups of kafka-python's I/O thread (services/web/wakeups.py), on a real event loop with a wake-up
that counts: never two within the window from the loop, none lost (one asked for late is sent at the window's end),
and any other thread's at once."""

import asyncio
import threading

import pytest

from services.web.wakeups import CoalescedWakeups

pytestmark = pytest.mark.unit


def test_wakeups_from_the_loop_are_one_a_window_and_the_last_one_asked_for_is_sent_at_its_end():
    async def run():
        loop = asyncio.get_running_loop()
        times: list[float] = []
        wakeups = CoalescedWakeups(lambda: times.append(loop.time()), loop, window_s=0.01)
        wakeups()  # the first at once
        assert len(times) == 1
        for _ in range(50):  # fifty sends within the window: one more wake-up, at its end
            wakeups()
        assert len(times) == 1
        await asyncio.sleep(0.03)
        assert len(times) == 2 and 0.0095 <= times[1] - times[0] < 0.03
        await asyncio.sleep(0.02)
        wakeups()  # a quiet moment later: at once again
        assert len(times) == 3
        return wakeups
    wakeups = asyncio.run(run())
    assert (wakeups.sent, wakeups.coalesced) == (3, 50)


def test_a_wakeup_from_another_thread_is_never_delayed():
    async def run():
        loop = asyncio.get_running_loop()
        woken: list[str] = []
        wakeups = CoalescedWakeups(lambda: woken.append(threading.current_thread().name), loop, window_s=10)
        wakeups()
        other = threading.Thread(target=lambda: [wakeups() for _ in range(3)], name="flusher")
        other.start()
        other.join()
        return woken
    assert asyncio.run(run()) == ["MainThread", "flusher", "flusher", "flusher"]


def test_install_replaces_the_senders_wakeup_with_the_coalesced_one():
    class Sender:
        def __init__(self):
            self.woken = 0

        def wakeup(self):
            self.woken += 1

    class Producer:
        _sender = Sender()

    async def run():
        producer = Producer()
        wakeups = CoalescedWakeups.install(producer, asyncio.get_running_loop())
        producer._sender.wakeup()
        producer._sender.wakeup()
        return producer, wakeups
    producer, wakeups = asyncio.run(run())
    assert producer._sender.wakeup is wakeups and producer._sender.woken == 1 and wakeups.coalesced == 1
