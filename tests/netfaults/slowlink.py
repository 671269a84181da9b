"""A slow link, as a relay: `python -m tests.netfaults.slowlink PORT DELAY_MS JITTER_MS`, run in a host's namespace.

This kernel has no netem (`tc qdisc add ... netem` answers "Specified qdisc kind is unknown": the VM's kernel
has no sch_netem and no modules to load), so the delay is made one layer up. Host.redirect() sends the host's
new TCP connections to the peers here; the relay connects on to where each was going (SO_ORIGINAL_DST), marking
its own sockets so they are not redirected again, and passes the bytes both ways. While slow (SIGUSR1; SIGUSR2
makes it fast again), every chunk the host sends waits DELAY_MS ± JITTER_MS (uniform) before it goes on, in
order, as netem's delay on the host's egress would hold each packet. Loss stays in the kernel (Host.lose).
"""

from __future__ import annotations

import asyncio
import random
import signal
import socket
import struct
import sys
import time
from pathlib import Path

from scripts.stack.process import Server, free_port

SO_ORIGINAL_DST = 80
MARK = 0x77  # the relay's own connections: Host.redirect() lets them through


class Link:
    def __init__(self, delay_ms: float, jitter_ms: float) -> None:
        self.delay_ms, self.jitter_ms = delay_ms, jitter_ms
        self.slow = False

    def delay_s(self) -> float:
        if not self.slow:
            return 0.0
        return max(0.0, random.uniform(self.delay_ms - self.jitter_ms, self.delay_ms + self.jitter_ms)) / 1000


async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, link: Link | None) -> None:
    """Bytes from reader to writer; each chunk held for the link's delay (None: no delay), order kept."""
    queue: asyncio.Queue = asyncio.Queue()

    async def deliver() -> None:
        while (item := await queue.get()) is not None:
            due, chunk = item
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            writer.write(chunk)
            await writer.drain()
        writer.close()

    sender = asyncio.ensure_future(deliver())
    last_due = 0.0
    try:
        while chunk := await reader.read(65536):
            last_due = max(last_due, time.monotonic() + (link.delay_s() if link else 0.0))
            queue.put_nowait((last_due, chunk))
    except (ConnectionError, OSError):
        pass
    finally:
        queue.put_nowait(None)
        try:
            await sender
        except (ConnectionError, OSError):
            pass


async def relay(link: Link, client_reader, client_writer) -> None:
    sock = client_writer.get_extra_info("socket")
    raw = sock.getsockopt(socket.SOL_IP, SO_ORIGINAL_DST, 16)
    port, address = struct.unpack_from("!2xH4s", raw)
    upstream = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    upstream.setsockopt(socket.SOL_SOCKET, socket.SO_MARK, MARK)
    upstream.setblocking(False)
    try:
        await asyncio.get_running_loop().sock_connect(upstream, (socket.inet_ntoa(address), port))
        server_reader, server_writer = await asyncio.open_connection(sock=upstream)
    except OSError:
        upstream.close()
        client_writer.close()
        return
    await asyncio.gather(pipe(client_reader, server_writer, link), pipe(server_reader, client_writer, None))


async def main(port: int, delay_ms: float, jitter_ms: float) -> None:
    link = Link(delay_ms, jitter_ms)
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGUSR1, lambda: setattr(link, "slow", True))
    loop.add_signal_handler(signal.SIGUSR2, lambda: setattr(link, "slow", False))
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    server = await asyncio.start_server(lambda r, w: relay(link, r, w), "127.0.0.1", port)
    async with server:
        await stop.wait()


class SlowLink(Server):
    """The relay as a server of the stack's (spawn, wait until it listens, stop), run in a host's namespace."""

    name = "slowlink"

    def __init__(self, data_dir: Path, netns: str, delay_ms: float, jitter_ms: float) -> None:
        super().__init__(data_dir, free_port())
        self.netns, self.delay_ms, self.jitter_ms = netns, delay_ms, jitter_ms

    def command(self) -> list[str]:
        return [sys.executable, "-m", "tests.netfaults.slowlink", str(self.port), str(self.delay_ms),
                str(self.jitter_ms)]

    def slow(self, on: bool) -> None:
        self.process.send_signal(signal.SIGUSR1 if on else signal.SIGUSR2)


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3])))
