"""Driving the soak: keyed buys from the loadgen harness and history reads, each open loop at its rate, while a
sampler records the figures every 10 s."""

from __future__ import annotations

import asyncio
import time
import uuid

import aiohttp

from scripts.loadgen.keyed import Traffic, open_loop
from scripts.stack.system import System
from services.common.lag import LagReader

from ..measure import say
from .sampling import SAMPLE_S, Read, line, sample


def soak_order(run: str):
    def order(i: int, users: int) -> dict:
        return {"username": "soak", "userId": f"soak-{run}-{i % users}", "price": 1 + i % 100}
    return order


async def drive(system: System, minutes: float, rate: float, reads_per_s: float,
                users: int) -> tuple[Traffic, list[dict]]:
    """The buys (every one in the returned Traffic's requests) and the samples."""
    run = uuid.uuid4().hex[:8]
    url = system.web_url
    traffic = Traffic(url, rate=rate, users=users, run=f"soak-{run}", order=soak_order(run))
    reads: list[Read] = []
    samples: list[dict] = []

    async def read(session: aiohttp.ClientSession, i: int) -> None:
        sent = time.monotonic()
        try:
            async with session.get(f"{url}/api/user/soak-{run}-{i % users}/purchases", params={"limit": "20"}) as r:
                await r.read()
                status = r.status
        except (TimeoutError, aiohttp.ClientError):
            status = None
        reads.append(Read(sent, (time.monotonic() - sent) * 1000, status))

    async def sampler(reader: LagReader, origin: float, done: asyncio.Event) -> None:
        loop = asyncio.get_running_loop()
        while not done.is_set():
            try:
                await asyncio.wait_for(done.wait(), SAMPLE_S)
            except TimeoutError:
                pass
            now = time.monotonic()
            lag = await loop.run_in_executor(None, reader.read)
            samples.append(sample(system, now - origin, now, traffic.requests, reads, lag.total))
            say(line(samples[-1]))

    reader = LagReader.at(system.bootstrap, system.names.group, system.names.topic)
    timeout = aiohttp.ClientTimeout(total=15)
    try:
        async with aiohttp.ClientSession(timeout=timeout, connector=aiohttp.TCPConnector(limit=0)) as session:
            done = asyncio.Event()
            sampling = asyncio.create_task(sampler(reader, time.monotonic(), done))
            await asyncio.gather(traffic.send(session, minutes * 60),
                                 open_loop(reads_per_s, lambda i: read(session, i), minutes * 60))
            done.set()
            await sampling
    finally:
        reader.close()
    return traffic, samples
