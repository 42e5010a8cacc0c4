"""The gateway's edge over real sockets (gateway/edge_protocol.py): a slowloris and a stalled
body get 408 and their connections closed, oversized headers 431, and a process holding its
connection cap answers 503 too_many_connections while it serves again once connections close."""

from __future__ import annotations

import socket
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from urllib.parse import urlsplit

import httpx
import orjson

from core.config import Settings
from tests.auth.helpers import user_token
from tests.conftest import Proc


def _address(proc: Proc) -> tuple[str, int]:
    url = urlsplit(proc.url)
    assert url.hostname and url.port
    return url.hostname, url.port


@contextmanager
def _connections(address: tuple[str, int], count: int) -> Iterator[list[socket.socket]]:
    with ExitStack() as stack:
        socks = []
        for _ in range(count):
            sock = stack.enter_context(socket.create_connection(address, timeout=5))
            socks.append(sock)
        yield socks


def _read_until_closed(sock: socket.socket, timeout: float) -> bytes:
    """Everything the server sends until it closes the connection; fails if it does not."""
    sock.settimeout(timeout)
    data = b""
    while True:
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            raise AssertionError(f"still open after {timeout} s; got {data!r}") from None
        except ConnectionResetError:
            return data
        if not chunk:
            return data
        data += chunk


def _status_and_error(response: bytes) -> tuple[int, dict[str, str], dict[str, str]]:
    head, _, body = response.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:])
    return (
        int(lines[0].split(" ")[1]),
        {k.lower(): v for k, v in headers.items()},
        orjson.loads(body),
    )


def test_a_slowloris_gets_408_and_its_connections_closed(spawn: Callable[..., Proc]) -> None:
    gateway = spawn("gateway", extra_env={"GATEWAY_HEADER_TIMEOUT_S": "1"})
    with _connections(_address(gateway), 20) as socks:
        began = time.monotonic()
        for sock in socks:
            sock.sendall(b"GET /health/live HTTP/1.1\r\nHost: gateway\r\nX-Slow: ")
        # One more header byte a second per connection, as a slowloris does, for 3 s.
        closed_by_server = 0
        while time.monotonic() - began < 3:
            for sock in socks:
                try:
                    sock.send(b"a")
                except OSError:
                    closed_by_server += 1
            time.sleep(0.3)
        # Meanwhile the gateway serves others.
        assert httpx.get(f"{gateway.url}/health/live", timeout=5).status_code == 200
        for sock in socks:
            status, headers, body = _status_and_error(_read_until_closed(sock, 5))
            assert status == 408
            assert headers["connection"] == "close"
            assert body["error"] == "request_timeout"
            assert "GATEWAY_HEADER_TIMEOUT_S" in body["detail"]
    metrics = httpx.get(f"{gateway.url}/metrics", timeout=5).text
    assert 'http_request_timeouts_total{phase="headers"} 20.0' in metrics


def test_a_connection_that_sends_nothing_is_closed_without_an_answer(
    spawn: Callable[..., Proc],
) -> None:
    gateway = spawn("gateway", extra_env={"GATEWAY_HEADER_TIMEOUT_S": "1"})
    with _connections(_address(gateway), 1) as (sock,):
        assert _read_until_closed(sock, 5) == b""


def test_a_stalled_body_gets_408_and_its_connection_closed(
    spawn: Callable[..., Proc], settings: Settings
) -> None:
    gateway = spawn("gateway", extra_env={"GATEWAY_BODY_TIMEOUT_S": "1"})
    token = user_token(settings, subject="slow-body", scopes=["progress:write"])
    body = b'{"position_seconds": 10, "duration_seconds": 100, "state": "playing"}'
    with _connections(_address(gateway), 1) as (sock,):
        sock.sendall(
            f"PUT /api/v1/users/slow-body/progress/{uuid.uuid4()} HTTP/1.1\r\n"
            f"Host: gateway\r\nAuthorization: Bearer {token}\r\nX-Device-ID: tv-1\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n".encode()
            + body[:20]
        )
        began = time.monotonic()
        status, _, error = _status_and_error(_read_until_closed(sock, 5))
        assert status == 408 and error["error"] == "request_timeout"
        assert "GATEWAY_BODY_TIMEOUT_S" in error["detail"]
        assert 0.9 < time.monotonic() - began < 4
    # The route saw a disconnect, not a failure of its own.
    assert not [line for line in gateway.log_lines() if "Exception in ASGI application" in line]


def test_headers_beyond_the_limit_get_431(spawn: Callable[..., Proc]) -> None:
    gateway = spawn("gateway", extra_env={"GATEWAY_MAX_HEADER_BYTES": "4096"})
    with _connections(_address(gateway), 1) as (sock,):
        sock.sendall(b"GET /health/live HTTP/1.1\r\nHost: gateway\r\n")
        for _ in range(10):
            sock.sendall(b"X-Filler: " + b"f" * 1000 + b"\r\n")
        status, headers, error = _status_and_error(_read_until_closed(sock, 5))
    assert status == 431 and error["error"] == "headers_too_large"
    assert headers["content-type"] == "application/problem+json" and error["status"] == 431


def test_what_the_parser_refuses_is_a_problem(
    spawn: Callable[..., Proc],
) -> None:
    gateway = spawn("gateway")
    with _connections(_address(gateway), 1) as (sock,):
        sock.sendall(b"GET /health/live HTTP/1.1\r\nHost gateway no colon\r\n\r\n")
        status, headers, error = _status_and_error(_read_until_closed(sock, 5))
    assert status == 400 and headers["content-type"] == "application/problem+json"
    assert error["type"] == "/problems/bad_request" and error["status"] == 400


def test_beyond_the_connection_cap_a_request_gets_503_until_connections_close(
    spawn: Callable[..., Proc],
) -> None:
    gateway = spawn(
        "gateway",
        extra_env={"GATEWAY_MAX_CONNECTIONS": "5", "GATEWAY_HEADER_TIMEOUT_S": "60"},
    )
    request = b"GET /health/live HTTP/1.1\r\nHost: gateway\r\n\r\n"
    with _connections(_address(gateway), 5) as held:
        with _connections(_address(gateway), 1) as (extra,):
            extra.sendall(request)
            status, headers, error = _status_and_error(_read_until_closed(extra, 5))
        assert status == 503
        assert headers["retry-after"] == "1" and headers["connection"] == "close"
        assert error["error"] == "too_many_connections"
        assert "GATEWAY_MAX_CONNECTIONS" in error["detail"]
        # Those within the cap are served.
        held[0].sendall(request)
        held[0].settimeout(5)
        assert held[0].recv(65536).startswith(b"HTTP/1.1 200")
    # Once they are closed, there is room again.
    deadline = time.monotonic() + 5
    while True:
        status_code = httpx.get(f"{gateway.url}/health/live", timeout=5).status_code
        if status_code == 200 or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert status_code == 200
    metrics = httpx.get(f"{gateway.url}/metrics", timeout=5).text
    assert "http_connections_refused_total 1.0" in metrics
