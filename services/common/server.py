"""The HTTP server both services run on: aiohttp's, hardened against clients that hold it hostage.

- A connection that has not sent a whole request head within HEADER_TIMEOUT_S is closed (slowloris);
  idle keep-alive connections close after KEEPALIVE_TIMEOUT_S. Request bodies have their own read timeout,
  applied by the handlers that read one (`read_body`).
- At most `max_connections` at once: one more is answered a short JSON 503 and closed, before any parsing, so a
  flood cannot take the process to its descriptor limit and starve the clients already connected.
- The process may hold that many: its soft descriptor limit is raised to cover `max_connections` (as a normal
  user it is often 1,024, and web then failed ~4,000 of a 5,000-connection burst with errors, not 503s).
- A listen backlog of BACKLOG, not 128: a burst of connections waits in the kernel instead of being dropped.
- Request heads are bounded as a common proxy bounds them: a header line at most MAX_HEADER_LINE (8 KiB), but an
  Authorization line (a bearer token) MAX_AUTHORIZATION_LINE (16 KiB), and a whole head MAX_HEAD (32 KiB). aiohttp's
  parser bounds each line and the number of lines (128), and keeps every line twice while it parses: with lines of
  32 KiB that was ~8 MiB held per connection for up to HEADER_TIMEOUT_S. The head is counted as it arrives, so one
  over MAX_HEAD is answered 431 and closed before aiohttp has parsed (or held) more of it; a line over its limit is
  431 JSON too.
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
from aiohttp.http_exceptions import LineTooLong
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

MAX_HEADER_LINE = 8 * 1024
MAX_AUTHORIZATION_LINE = 16 * 1024 + len("Authorization: Bearer ")
MAX_HEAD = 32 * 1024

_MESSAGES = {
    400: "malformed HTTP request",
    413: "request too large",
    431: "request header fields too large",
    500: "internal error",
}
_FULL = orjson.dumps({"error": "too many connections; try again shortly"})


def _closing_response(status: bytes, body: bytes, extra: bytes = b"") -> bytes:
    """A whole JSON answer, written before aiohttp has made a request of what came in; the connection closes."""
    return (b"HTTP/1.1 " + status + b"\r\nContent-Type: application/json\r\n" + extra + b"Server: " +
            SERVER_NAME.encode() + b"\r\nConnection: close\r\nContent-Length: " + str(len(body)).encode() +
            b"\r\n\r\n" + body)


_FULL_RESPONSE = _closing_response(b"503 Service Unavailable", _FULL, b"Retry-After: 1\r\n")
_HEAD_TOO_LARGE = _closing_response(b"431 Request Header Fields Too Large", orjson.dumps(
    {"error": f"request head larger than {MAX_HEAD // 1024} KiB"}))


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
    if request.content.is_eof():  # all of it arrived (with the head, as a small buy's does): nothing to wait for
        return await request.read()
    try:
        async with asyncio.timeout(BODY_TIMEOUT_S):
            return await request.read()
    except TimeoutError:
        raise web.HTTPRequestTimeout(reason=f"request body not received within {BODY_TIMEOUT_S:.0f} s") from None


class GuardedRequestHandler(RequestHandler):
    # The head being received: its bytes so far, and the last 3 (its end, \r\n\r\n, may straddle two reads).
    _head_bytes = 0
    _head_tail = b""
    _last_payload = None  # the body of the last request parsed: while it arrives, bytes are no head's

    def data_received(self, data: bytes) -> None:
        if self._last_payload is None or self._last_payload.is_eof():
            window = self._head_tail + data
            end = window.find(b"\r\n\r\n")
            self._head_bytes += len(data) if end < 0 else max(end + 4 - len(self._head_tail), 0)
            self._head_tail = window[-3:]
            if self._head_bytes > MAX_HEAD and self.transport is not None:
                self.transport.write(_HEAD_TOO_LARGE)
                self.force_close()
                self.transport.close()
                return
        count = self._request_count
        super().data_received(data)
        if self._request_count != count:  # a head was parsed: the next one counts from nothing
            self._head_bytes, self._head_tail = 0, b""
            self._last_payload = self._messages[-1][1] if self._messages else None

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
        if isinstance(exc, LineTooLong):  # aiohttp says 400: a header line over its limit is a 431
            status = 431
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


@web.middleware
async def header_lines_bounded(request: web.Request, handler) -> web.StreamResponse:
    """Every header line but Authorization at most MAX_HEADER_LINE (aiohttp reads lines up to an Authorization
    line's limit); 431 JSON otherwise, naming the header, never echoing it."""
    for name, value in request.raw_headers:
        if len(name) + len(value) + 4 > MAX_HEADER_LINE and name.lower() != b"authorization":  # ": " and CRLF
            return web.Response(status=431, body=orjson.dumps({"error": "request header fields too large", "header":
                                                              name[:64].decode("latin-1")}),
                                content_type="application/json")
    return await handler(request)


def guard(app: web.Application) -> None:
    """Before the app starts: every response of the app names no versions, and its header lines are bounded."""
    app.on_response_prepare.append(_server_header)
    app.middlewares.insert(0, header_lines_bounded)


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
