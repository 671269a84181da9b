"""The HTTP server both services run on: aiohttp's, hardened against clients that hold it hostage.

- A connection that has not sent a whole request head within HEADER_TIMEOUT_S is closed (slowloris);
  idle keep-alive connections close after KEEPALIVE_TIMEOUT_S. Request bodies have their own read timeout,
  applied by the handlers that read one (`read_body`).
- At most `max_connections` at once: one more is answered a short JSON 503 and closed, before any parsing, so a
  flood cannot take the process to its descriptor limit and starve the clients already connected.
- The process may hold that many: its soft descriptor limit is raised to cover `max_connections` (as a normal
  user it is often 1,024, and web then failed ~4,000 of a 5,000-connection burst with errors, not 503s).
- A listen backlog of BACKLOG, not 128: a burst of connections waits in the kernel instead of being dropped.
- aiohttp's own errors (a request it cannot parse, a header too large) are JSON like ours, and never echo the
  input back; no response names Python's or aiohttp's version.
- Memory is handed back to the system after a burst: when the connections drop back after a peak, the heap is
  trimmed (malloc_trim). This works with PYTHONMALLOC=malloc (the Dockerfiles and scripts/stack/service.py set it):
  CPython's own allocator keeps 1 MiB arenas that a few surviving objects pin, so after a 5,000-connection burst
  web stayed at ~90 MiB; on glibc's allocator the trim gives back all but ~10 MiB (measured, 139 -> 63 MiB).

The hooks are aiohttp's `RequestHandler.handle_error` and `Server.__call__`/`connection_made`, reached by
subclassing; aiohttp is pinned, and tests/web/test_hostile_clients.py proves each behaviour on a real socket.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import gc
import logging
import os
import resource
from http import HTTPStatus

import orjson
from aiohttp import web
from aiohttp.web_protocol import RequestHandler

log = logging.getLogger(__name__)

SERVER_NAME = "purchase-system"
HEADER_TIMEOUT_S = 10.0
KEEPALIVE_TIMEOUT_S = 75.0
BODY_TIMEOUT_S = 10.0
LINGER_S = 2.0
BACKLOG = 4096
MAX_CONNECTIONS = 4000
TRIM_CHECK_S = 5.0
DESCRIPTORS_BESIDE_CONNECTIONS = 256  # Kafka and MongoDB sockets, the listening socket, files, the loop's own
TRIM_AFTER_PEAK = 200  # connections: a peak at least this high is followed by a trim once it has passed

_MESSAGES = {
    400: "malformed HTTP request",
    413: "request too large",
    431: "request header fields too large",
    500: "internal error",
}
_FULL = orjson.dumps({"error": "too many connections; try again shortly"})
_FULL_RESPONSE = (b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nRetry-After: 1\r\n"
                  b"Server: " + SERVER_NAME.encode() + b"\r\nConnection: close\r\n"
                  b"Content-Length: " + str(len(_FULL)).encode() + b"\r\n\r\n" + _FULL)


def allow_descriptors(max_connections: int) -> int:
    """Raise the soft limit on open descriptors to what `max_connections` needs, within the hard limit; the
    limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    needed = max_connections + DESCRIPTORS_BESIDE_CONNECTIONS
    if soft == resource.RLIM_INFINITY or soft >= needed:
        return soft
    soft = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    if soft < needed:
        log.warning("too few descriptors for the connection limit: connections beyond it fail instead of a 503",
                    extra={"descriptor_limit": soft, "max_connections": max_connections})
    return soft


async def read_body(request: web.Request) -> bytes:
    """The request body, or a 408 if the client has not sent it all within BODY_TIMEOUT_S."""
    try:
        async with asyncio.timeout(BODY_TIMEOUT_S):
            return await request.read()
    except TimeoutError:
        raise web.HTTPRequestTimeout(reason=f"request body not received within {BODY_TIMEOUT_S:.0f} s") from None


class GuardedRequestHandler(RequestHandler):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        server = self._manager
        if isinstance(server, GuardedServer) and server.full:
            # Answered and closed before aiohttp sets anything up for it: no parser, no task, no registration.
            transport.write(_FULL_RESPONSE)
            transport.close()
            return
        super().connection_made(transport)
        self._head_timer = self._loop.call_later(HEADER_TIMEOUT_S, self._close_if_no_request_yet)

    def connection_lost(self, exc: BaseException | None) -> None:
        super().connection_lost(exc)
        head_timer = getattr(self, "_head_timer", None)
        if head_timer is not None:  # else it would keep this handler (and its buffers) alive for its 10 s
            head_timer.cancel()
            self._head_timer = None

    def _close_if_no_request_yet(self) -> None:
        self._head_timer = None
        if self._request_count == 0 and self.transport is not None:
            self.force_close()
            self.transport.close()

    def handle_error(self, request, status: int = 500, exc: BaseException | None = None,
                     message: str | None = None) -> web.StreamResponse:
        if status >= 500:
            log.error("error handling a request", exc_info=exc)
        if request.writer.output_size > 0:  # a response was under way: the connection is broken
            raise ConnectionError("response already started; cannot send an error")
        text = _MESSAGES.get(status) or HTTPStatus(status).phrase.lower()
        response = web.Response(status=status, body=orjson.dumps({"error": text}), content_type="application/json",
                                headers={"Server": SERVER_NAME})
        response.force_close()
        return response


class GuardedServer(web.Server):
    max_connections = MAX_CONNECTIONS
    peak_connections = 0

    def __call__(self) -> RequestHandler:
        return GuardedRequestHandler(self, loop=self._loop, **self._kwargs)

    @property
    def full(self) -> bool:
        return len(self._connections) >= self.max_connections

    def connection_made(self, handler: RequestHandler, transport: asyncio.Transport) -> None:
        super().connection_made(handler, transport)
        self.peak_connections = max(self.peak_connections, len(self._connections))


class GuardedAppRunner(web.AppRunner):
    """aiohttp's AppRunner, serving with GuardedServer."""

    def __init__(self, app: web.Application, max_connections: int = MAX_CONNECTIONS, **kwargs) -> None:
        # After an error answer, aiohttp reads what is left of a body for `lingering_time` before closing:
        # short, so a slow-body client does not keep the connection for long after its 408.
        super().__init__(app, keepalive_timeout=KEEPALIVE_TIMEOUT_S, lingering_time=LINGER_S, **kwargs)
        self._max_connections = max_connections

    async def _make_server(self) -> web.Server:
        server = await super()._make_server()  # the app's own Server: its handler, request factory, options
        server.__class__ = GuardedServer
        server.max_connections = self._max_connections
        return server


async def _server_header(request: web.Request, response: web.StreamResponse) -> None:
    response.headers["Server"] = SERVER_NAME


def guard(app: web.Application) -> None:
    """Before the app starts: every response of the app names no versions."""
    app.on_response_prepare.append(_server_header)


def _malloc_trim() -> None:
    libc_name = ctypes.util.find_library("c")
    if libc_name:
        try:
            ctypes.CDLL(libc_name).malloc_trim(0)
        except (OSError, AttributeError):  # not glibc (musl, macOS): nothing to trim
            pass


async def give_memory_back(server: GuardedServer) -> None:
    """Trim the heap after each burst of connections has passed (see the module's docstring): on two checks in
    a row, for what the connections' last tasks and callbacks release in between."""
    trims_due = 0
    while True:
        await asyncio.sleep(TRIM_CHECK_S)
        connections = len(server.connections)
        if server.peak_connections >= TRIM_AFTER_PEAK and connections < TRIM_AFTER_PEAK // 4:
            peak, server.peak_connections, trims_due = server.peak_connections, connections, 2
            log.info("a burst of connections has passed", extra={"peak_connections": peak})
        if trims_due:
            trims_due -= 1
            before = _rss_mib()
            gc.collect()
            _malloc_trim()
            log.info("memory handed back", extra={"rss_mib_before": before, "rss_mib_after": _rss_mib()})


def _rss_mib() -> float | None:
    try:
        with open("/proc/self/statm") as statm:
            return round(int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20, 1)
    except (OSError, ValueError, IndexError):  # not Linux
        return None
