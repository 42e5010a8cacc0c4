"""The gateway's HTTP/1.1 protocol: uvicorn's (httptools) with the limits it lacks at the edge.

uvicorn closes a connection that stays idle after a response (`timeout_keep_alive`), but has no
deadline for a request that is being sent: a client trickling one header byte a second (a
slowloris) or stalling its body holds a connection and its buffers forever, and nothing caps
how many connections one process holds. So this protocol adds, per connection:

- a deadline for a request's headers (GATEWAY_HEADER_TIMEOUT_S, from the moment the server
  waits for them): a client that started a request and did not finish its headers in time gets
  `408 request_timeout` and its connection is closed; one that sent nothing is closed silently,
  as the keep-alive timeout does;
- a limit on their size (GATEWAY_MAX_HEADER_BYTES): `431 headers_too_large`, closed;
- an idle timeout while the body is read (GATEWAY_BODY_TIMEOUT_S between two arrivals of body
  bytes): `408 request_timeout` if no response has started, and the connection is closed;
- a cap on open connections per process (GATEWAY_MAX_CONNECTIONS, at most the process's open
  file limit less a reserve): a request on a connection beyond it gets `503
  too_many_connections` with Retry-After, and that connection is closed.

They are counted in `http_request_timeouts_total{phase}` and `http_connections_refused_total`,
and `http_connections_open` is the gauge of open connections. Behind a reverse proxy, the proxy's
own timeouts come first (docs/OPERATIONS.md, "The HTTP edge").
"""

from __future__ import annotations

import asyncio
import resource
from dataclasses import dataclass
from typing import Any

from loguru import logger
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from core.config import GatewaySettings
from core.observability.metrics import (
    HTTP_CONNECTIONS_OPEN,
    HTTP_CONNECTIONS_REFUSED,
    HTTP_REQUEST_TIMEOUTS,
)
from gateway.problems import MEDIA_TYPE, problem_bytes

# Descriptors kept free for what a process opens besides client sockets (Redis, the broker,
# logs, the ops server).
FD_RESERVE = 64
# After refusing a request, what the client still sends is read and dropped for this long
# before the connection is closed: closing with unread input would reset the connection, and
# the client could lose the answer that says why (a "lingering close", as nginx does).
LINGER_S = 2.0


@dataclass(frozen=True)
class EdgeLimits:
    header_timeout_s: float
    body_timeout_s: float
    max_header_bytes: int
    max_connections: int


def limits_for(settings: GatewaySettings) -> EdgeLimits:
    """The limits of this process; the connection cap is lowered to what its open-file limit
    allows, since accepting beyond it fails in the server's accept loop instead."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    cap = settings.max_connections
    if soft != resource.RLIM_INFINITY and cap > soft - FD_RESERVE:
        lowered = max(1, soft - FD_RESERVE)
        logger.warning(
            "GATEWAY_MAX_CONNECTIONS={} is above this process's open-file limit ({}); "
            "capping at {} (raise `ulimit -n` to allow more)",
            cap,
            soft,
            lowered,
        )
        cap = lowered
    return EdgeLimits(
        header_timeout_s=settings.header_timeout_s,
        body_timeout_s=settings.body_timeout_s,
        max_header_bytes=settings.max_header_bytes,
        max_connections=cap,
    )


_limits: EdgeLimits | None = None


def use_limits(limits: EdgeLimits) -> None:
    """Set the limits of this process's connections (before the server starts)."""
    global _limits
    _limits = limits


def _raw_response(status: int, reason: bytes, code: str, message: str, extra: bytes = b"") -> bytes:
    # No instance: the request line may not even have arrived.
    body = problem_bytes(status, code, message)
    return (
        b"HTTP/1.1 %d %s\r\ncontent-type: application/problem+json\r\ncontent-length: %d\r\n"
        b"%sconnection: close\r\n\r\n" % (status, reason, len(body), extra)
    ) + body


async def _too_many_connections(scope: Any, receive: Any, send: Any) -> None:
    limit = _limits.max_connections if _limits is not None else 0
    body = problem_bytes(
        503,
        "too_many_connections",
        f"this gateway process holds its limit of {limit} open connections "
        "(GATEWAY_MAX_CONNECTIONS); retry in a second, or through another instance",
        scope.get("path"),
    )
    await send(
        {
            "type": "http.response.start",
            "status": 503,
            "headers": [
                (b"content-type", MEDIA_TYPE.encode()),
                (b"content-length", str(len(body)).encode()),
                (b"retry-after", b"1"),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class EdgeHttpProtocol(HttpToolsProtocol):
    """uvicorn's HttpToolsProtocol with header/body deadlines and a connection cap."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._edge = _limits or limits_for(GatewaySettings())
        self._deadline: asyncio.TimerHandle | None = None
        self._awaiting_headers = False
        self._request_began = False
        self._header_bytes = 0
        self._counted = False
        self._refused = False

    def send_400_response(self, msg: str) -> None:
        # uvicorn answers what its parser refuses in plain text: a problem, like every error.
        self.transport.write(_raw_response(400, b"Bad Request", "bad_request", msg))
        self.transport.close()

    # --- connection ------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        HTTP_CONNECTIONS_OPEN.inc()
        self._counted = True
        self._await_headers()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        if self._counted:
            HTTP_CONNECTIONS_OPEN.dec()
            self._counted = False
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return  # lingering: read and dropped
        super().data_received(data)
        # Counted once parsed: a chunk that completes the headers also carries body bytes.
        if not self._awaiting_headers or self.transport.is_closing():
            return
        self._header_bytes += len(data)
        if self._header_bytes > self._edge.max_header_bytes:
            self._refuse(
                _raw_response(
                    431,
                    b"Request Header Fields Too Large",
                    "headers_too_large",
                    f"the request line and headers exceed {self._edge.max_header_bytes} "
                    "bytes (GATEWAY_MAX_HEADER_BYTES)",
                )
            )

    def handle_websocket_upgrade(self) -> None:
        # The connection leaves this protocol for the WebSocket's: no deadline of ours may fire
        # on it, and it is counted as a device socket (device_sockets_open), no longer here.
        self._disarm()
        if self._counted:
            HTTP_CONNECTIONS_OPEN.dec()
            self._counted = False
        super().handle_websocket_upgrade()

    # --- parser callbacks ------------------------------------------------------------------

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._request_began = True

    def on_headers_complete(self) -> None:
        self._disarm()
        self._awaiting_headers = False
        if len(self.connections) > self._edge.max_connections:
            HTTP_CONNECTIONS_REFUSED.inc()
            app, self.app = self.app, _too_many_connections
            try:
                super().on_headers_complete()
            finally:
                self.app = app
        else:
            super().on_headers_complete()
        # Disarmed again by on_message_complete, which for a request without a body follows
        # at once, in the same feed of data.
        self._arm(self._edge.body_timeout_s, self._body_late)

    def on_body(self, body: bytes) -> None:
        super().on_body(body)
        self._arm(self._edge.body_timeout_s, self._body_late)

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._disarm()

    def on_response_complete(self) -> None:
        pipelined = bool(self.pipeline)
        super().on_response_complete()
        if not pipelined and not self.transport.is_closing():
            self._await_headers()

    # --- deadlines -------------------------------------------------------------------------

    def _await_headers(self) -> None:
        self._awaiting_headers = True
        self._request_began = False
        self._header_bytes = 0
        self._arm(self._edge.header_timeout_s, self._headers_late)

    def _arm(self, seconds: float, callback: Any) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(seconds, callback)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _headers_late(self) -> None:
        self._deadline = None
        if self.transport.is_closing():
            return
        if not self._request_began and self._header_bytes == 0:
            self.transport.close()  # an idle connection, as the keep-alive timeout closes it
            return
        HTTP_REQUEST_TIMEOUTS.labels("headers").inc()
        self._refuse(
            _raw_response(
                408,
                b"Request Timeout",
                "request_timeout",
                f"the request's headers did not arrive within {self._edge.header_timeout_s:g} s "
                "(GATEWAY_HEADER_TIMEOUT_S)",
            )
        )

    def _body_late(self) -> None:
        self._deadline = None
        cycle = self.cycle
        if self.transport.is_closing() or cycle is None or cycle.response_complete:
            return
        HTTP_REQUEST_TIMEOUTS.labels("body").inc()
        response = b""
        if not cycle.response_started:
            response = _raw_response(
                408,
                b"Request Timeout",
                "request_timeout",
                f"no byte of the request's body arrived for {self._edge.body_timeout_s:g} s "
                "(GATEWAY_BODY_TIMEOUT_S)",
            )
        # The application waiting for the body hears a disconnect; whatever it sends after
        # is dropped (uvicorn ignores a disconnected cycle's sends).
        cycle.disconnected = True
        cycle.message_event.set()
        self._refuse(response)

    def _refuse(self, response: bytes) -> None:
        """Answer (when there is something to say) and end the connection: our side at once,
        the whole of it once the client closes too or LINGER_S passed."""
        self._refused = True
        if response:
            self.transport.write(response)
        if self.transport.can_write_eof():
            self.transport.write_eof()
            self._arm(LINGER_S, self.transport.close)
        else:
            self._disarm()
            self.transport.close()
