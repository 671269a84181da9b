"""Clients that try to hold web hostage, against a real web process (Kafka and FerretDB behind it).

Slow heads and slow bodies are cut, a flood of connections is capped and answered, aiohttp's own errors are
JSON that echo nothing back, no response names a version, and memory is handed back after a burst.
"""

import asyncio
import resource
import socket
import time

import aiohttp
import orjson
import pytest
import requests

from scripts.stack.waiting import until

from ..support import buy_body


def rss_mib(pid: int) -> float:
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def connect(port: int) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=30)


def read_all(sock: socket.socket) -> bytes:
    chunks = []
    while chunk := sock.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks)


def test_an_unparseable_request_gets_a_json_400_that_echoes_nothing(running_system):
    sock = connect(running_system.web_port)
    sock.sendall(b"GET /<script>alert(1)</script> HTTP/1.1\r\nHost: x\r\nBad<script>Header\r\n\r\n")
    answer = read_all(sock)
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith((b"HTTP/1.1 400", b"HTTP/1.0 400")), answer
    assert b"Content-Type: application/json" in head and b"Server: purchase-system" in head
    assert body == b'{"error":"malformed HTTP request"}'


def test_no_response_names_python_or_aiohttp(running_system):
    for url in (f"{running_system.web_url}/healthz", f"{running_system.web_url}/nowhere",
                f"{running_system.api_url}/healthz"):
        server = requests.get(url, timeout=5).headers["Server"]
        assert server == "purchase-system", server


def test_a_request_head_not_finished_within_10s_is_cut(running_system):
    sock = connect(running_system.web_port)
    sock.sendall(b"POST /api/buy HTTP/1.1\r\nHost: x\r\n")  # ... and never the rest
    started = time.monotonic()
    assert read_all(sock) == b""  # closed, nothing answered
    waited = time.monotonic() - started
    print(f"\n[slow head] closed after {waited:.1f}s")
    assert 9 <= waited <= 13


def test_a_body_not_finished_within_10s_gets_a_json_408(running_system):
    sock = connect(running_system.web_port)
    sock.sendall(b"POST /api/buy HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n"
                 b"\r\n{\"username\":")
    started = time.monotonic()
    first = sock.recv(65536)
    waited = time.monotonic() - started
    answer = first + read_all(sock)
    closed = time.monotonic() - started
    print(f"\n[slow body] answered after {waited:.1f}s, closed after {closed:.1f}s: {answer.splitlines()[0]!r}")
    assert answer.startswith(b"HTTP/1.1 408") and b'"error":"request body not received within 10 s"' in answer
    assert 9 <= waited <= 13 and closed <= 16


@pytest.mark.service_env(MAX_CONNECTIONS="40")
def test_connections_beyond_the_limit_get_a_fast_json_503_and_the_others_are_served(system):
    system.start_api()
    system.start_web()
    held = [connect(system.web_port) for _ in range(39)]  # + the one below = the limit
    try:
        with requests.Session() as session:
            assert session.get(f"{system.web_url}/healthz", timeout=5).status_code == 200
            refused = requests.get(f"{system.web_url}/healthz", timeout=5)
            assert refused.status_code == 503 and refused.json()["error"].startswith("too many connections")
            assert refused.headers["Retry-After"] == "1"
            # The connection already open is served as before.
            assert session.post(f"{system.web_url}/api/buy", json=buy_body("cap"), timeout=10).status_code == 202
    finally:
        for sock in held:
            sock.close()
    until(lambda: requests.get(f"{system.web_url}/healthz", timeout=5).status_code == 200, 10,
          "web to take connections again")


async def _burst(url: str, connections: int) -> dict:
    """`connections` connections at once, each one buy, each its own connection."""
    statuses: dict = {}

    async def one(i: int) -> None:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=120)) as session:
            try:
                async with session.post(f"{url}/api/buy", json=buy_body(f"burst-{i % 100}")) as response:
                    body = await response.json()
                    what = response.status if response.status == 202 else f"{response.status} {body['error']}"
                    statuses[what] = statuses.get(what, 0) + 1
            except aiohttp.ClientError as exc:
                statuses[type(exc).__name__] = statuses.get(type(exc).__name__, 0) + 1

    await asyncio.gather(*(one(i) for i in range(connections)))
    return statuses


def test_web_gives_memory_back_after_a_5000_connection_burst(running_system):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 12000)), hard))
    pid = running_system.web.process.pid
    before = rss_mib(pid)
    statuses = asyncio.run(_burst(running_system.web_url, 5000))
    after_burst = rss_mib(pid)
    time.sleep(12)  # the trim runs within a few seconds of the burst's end
    after = rss_mib(pid)
    print(f"\n[5000-connection burst] answers={statuses} web RSS before={before:.1f} MiB "
          f"right after={after_burst:.1f} MiB 12 s later={after:.1f} MiB")
    assert statuses.get(202, 0) >= 3900, statuses  # the rest: fast 503s beyond the 4,000-connection cap
    grew = after_burst - before
    assert after - before <= 0.25 * grew, f"web kept {after - before:.1f} of the {grew:.1f} MiB the burst took"
    assert after <= 70, f"web holds {after:.1f} MiB after the burst (target 60)"


def head_status(port: int, head: bytes, body: bytes = b"") -> tuple[int, bytes]:
    """Send a request head (and body) in one write; the status and body of the answer."""
    sock = connect(port)
    sock.sendall(head + body)
    answer = read_all(sock)
    status_line, _, rest = answer.partition(b"\r\n")
    return int(status_line.split()[1]), rest.partition(b"\r\n\r\n")[2]


def request(*headers: tuple[str, int], path: bytes = b"/healthz") -> bytes:
    """A GET with headers of the given value lengths."""
    lines = b"".join(f"{name}: ".encode() + b"x" * size + b"\r\n" for name, size in headers)
    return b"GET " + path + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n" + lines + b"\r\n"


def test_header_lines_and_the_whole_head_are_bounded_as_a_proxy_bounds_them_with_room_for_a_bearer_token(
        running_system):
    port = running_system.web_port
    line = 8 * 1024 - len("X-Big: ") - 2  # an 8 KiB line, its name and CRLF included
    assert head_status(port, request(("X-Big", line)))[0] == 200
    status, body = head_status(port, request(("X-Big", line + 1)))
    assert status == 431 and orjson.loads(body) == {"error": "request header fields too large", "header": "X-Big"}
    # A bearer token may be twice that: Authorization lines up to 16 KiB are read (sign-in then judges the token).
    assert head_status(port, request(("Authorization", 16 * 1024)))[0] == 200
    assert head_status(port, request(("Authorization", 16 * 1024 + 100)))[0] == 431
    # The whole head: 32 KiB. Four 7-KiB lines pass; five are refused as soon as the head passes 32 KiB.
    assert head_status(port, request(*[(f"X-{i}", 7 * 1024) for i in range(4)]))[0] == 200
    status, body = head_status(port, request(*[(f"X-{i}", 7 * 1024) for i in range(5)]))
    assert status == 431 and b"request head larger than 32 KiB" in body
    # A body is no head: 60 KiB sent with its head in one write is read as the body it is.
    big = orjson.dumps({**buy_body("head-bounds"), "item": "x" * 200, "pad": "y" * 60_000})
    status, body = head_status(port, b"POST /api/buy HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                                     b"Content-Type: application/json\r\nContent-Length: " +
                               str(len(big)).encode() + b"\r\n\r\n", big)
    assert status == 400 and b"item" in body  # judged as a purchase (its item is too long), not as a head


def test_the_head_limit_applies_to_each_request_of_a_kept_alive_connection(running_system):
    sock = connect(running_system.web_port)
    small = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
    sock.sendall(small)
    first = sock.recv(65536)
    assert first.startswith(b"HTTP/1.1 200"), first
    sock.sendall(request(*[(f"X-{i}", 7 * 1024) for i in range(5)]))
    answer = read_all(sock)
    assert answer.startswith(b"HTTP/1.1 431"), answer[:80]
