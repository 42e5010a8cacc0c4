"""One device's WebSocket once accepted (docs/DEVICE_PROTOCOL.md): two loops on one socket.

- Out: the device's EventSource (gateway/realtime/events.py), the very events its SSE stream
  would carry, written as JSON frames (gateway/realtime/device_frames.py).
- In: frames from the device, each budgeted (gateway/realtime/flood.py), validated like the
  HTTP body of the same operation and run through the same core (gateway/device_operations.py);
  the answer is an `accepted` frame (the HTTP 202's body) or an `error` frame (the HTTP
  problem), never a silent close.

`ack` records the newest event id the device confirms, per device, in Redis for the replay
window: a device that reconnects without `last_event_id` resumes from it.

Close codes: 1000 the device closed; 1008 a flood (the device's frame budget); 1009 a frame
over GATEWAY_SOCKET_MAX_FRAME_BYTES; 1011 Redis lost (a `problem` frame first); 1012 the
gateway shuts down (a `problem` frame first); 4001 the credential expired (an `expired` frame
first); 4003 the device was removed (a `revoked` frame first).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from contextlib import aclosing
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
import redis.asyncio as aioredis
from fastapi.exceptions import RequestValidationError
from loguru import logger
from redis.exceptions import RedisError
from starlette.websockets import WebSocket, WebSocketDisconnect

from agreements.sync_realtime import REPLAY_WINDOW_S, newer
from core.observability.metrics import (
    DEVICE_SOCKET_CLOSES,
    DEVICE_SOCKET_ERRORS,
    DEVICE_SOCKET_FRAMES,
    DEVICE_SOCKETS_OPEN,
)
from core.publisher import BrokerUnavailable, Published, PublishOutcomeUnknown
from core.resilience import CircuitOpen
from gateway.device_operations import report_progress, send_command, send_heartbeat
from gateway.errors import field_errors
from gateway.lookup import LookupTimeout
from gateway.realtime.device_frames import (
    AckFrame,
    CommandFrame,
    FrameRefused,
    HeartbeatFrame,
    ProgressFrame,
    accepted_frame,
    error_frame,
    event_frame,
    message_frame,
    parse_frame,
    problem_frame,
)
from gateway.realtime.events import Ended, Event, EventSource
from gateway.realtime.flood import Bucket
from schemas.sync import wire_time

# The `fields` reason of an unknown_device refusal, as over HTTP (gateway/errors.py).
NOT_REGISTERED = "not a device registered to this user"

CLOSE_NORMAL = 1000
CLOSE_POLICY = 1008
CLOSE_TOO_BIG = 1009
CLOSE_INTERNAL = 1011
CLOSE_RESTART = 1012
# Application codes (4000-4999, RFC 6455 7.4.2): the gateway ended the socket on purpose.
CLOSE_EXPIRED = 4001  # the credential expired: reconnect with a fresh one
CLOSE_REVOKED = 4003  # the device was removed: do not reconnect as it

_OP_SCOPES = {
    "heartbeat": "devices:write",
    "progress": "progress:write",
    "command": "devices:command",
}

# Checks a command's target is the user's device (gateway/device_ownership.py, when merged):
# None when it is, else the refusal's (code, detail).
TargetCheck = Callable[[str], Awaitable[tuple[str, str] | None]]


def ack_key(prefix: str, user_id: str, device_id: str) -> str:
    # A fixed word before the user id (user ids may contain ':'), as the read models do.
    return f"{prefix}:sync:ack:{user_id}:{device_id}"


async def acked(redis: aioredis.Redis, prefix: str, user_id: str, device_id: str) -> str | None:
    raw = await redis.get(ack_key(prefix, user_id, device_id))
    return raw.decode() if isinstance(raw, bytes) else raw


@dataclass(frozen=True)
class SocketContext:
    user_id: str
    device_id: str
    scopes: frozenset[str]
    instance: str  # the socket's path: the problems' instance
    max_frame_bytes: int
    check_target: TargetCheck


def _close_code(code: int) -> None:
    DEVICE_SOCKET_CLOSES.labels(str(code)).inc()


class DeviceSocket:
    def __init__(
        self,
        websocket: WebSocket,
        source: EventSource,
        context: SocketContext,
        budget: Bucket,
    ) -> None:
        self.ws = websocket
        self.source = source
        self.ctx = context
        self.budget = budget
        self._send_lock = asyncio.Lock()
        self._closed = False
        app = websocket.app
        self._redis: aioredis.Redis = app.state.redis
        self._prefix: str = app.state.settings.redis.key_prefix

    async def _send(self, kind: str, frame: bytes) -> None:
        async with self._send_lock:
            await self.ws.send_text(frame.decode())
        DEVICE_SOCKET_FRAMES.labels("out", kind).inc()

    async def _close(self, code: int, reason: str) -> None:
        if self._closed:
            return
        self._closed = True
        _close_code(code)
        async with self._send_lock:
            try:
                await self.ws.close(code, reason)
            except (RuntimeError, OSError):
                pass  # already gone

    async def run(self) -> None:
        DEVICE_SOCKETS_OPEN.inc()
        outbound = asyncio.create_task(self._outbound())
        inbound = asyncio.create_task(self._inbound())
        try:
            done, _ = await asyncio.wait({outbound, inbound}, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                if not task.cancelled() and task.exception() is not None:
                    logger.opt(exception=task.exception()).error(
                        "device socket of {}/{} failed", self.ctx.user_id, self.ctx.device_id
                    )
                    await self._close(CLOSE_INTERNAL, "internal error")
        finally:
            for task in (outbound, inbound):
                task.cancel()
            await asyncio.gather(outbound, inbound, return_exceptions=True)
            DEVICE_SOCKETS_OPEN.dec()

    # --- out -----------------------------------------------------------------------------------

    async def _outbound(self) -> None:
        try:
            await self._pump()
        except (WebSocketDisconnect, OSError):
            pass  # the device went away; the inbound loop hears it

    async def _pump(self) -> None:
        async with aclosing(self.source.__aiter__()) as items:
            async for item in items:
                if isinstance(item, Event):
                    if item.kind in ("ready", "resync"):
                        await self._send(
                            item.kind, event_frame(item.kind, item.data, item.event_id)
                        )
                    else:
                        await self._send(
                            "message", message_frame(item.kind, item.data, item.event_id)
                        )
                elif isinstance(item, Ended):
                    await self._end(item)
                    return
                # Idle: nothing; the WebSocket's own pings keep the connection alive.

    async def _end(self, item: Ended) -> None:
        if item.cause in ("expired", "revoked"):
            await self._ended_by_lease(item.cause)
            return
        if item.cause == "shutdown":
            status, code, detail, close = (
                503,
                "service_unavailable",
                "this gateway is shutting down; reconnect with last_event_id",
                CLOSE_RESTART,
            )
        else:
            status, code, detail, close = (
                503,
                "redis_unavailable",
                "the socket lost Redis; reconnect with last_event_id in a few seconds",
                CLOSE_INTERNAL,
            )
        await self._send("problem", problem_frame(status, code, detail, self.ctx.instance))
        await self._close(close, code)

    async def _ended_by_lease(self, cause: str) -> None:
        """The SSE stream's `expired` / `revoked` event, then the close that says the same."""
        if cause == "expired":
            at = wire_time(datetime.fromtimestamp(self.source.expires_at or 0, UTC))
            data = {"reason": "credential_expired", "expired_at": at}
            close, reason = CLOSE_EXPIRED, "credential expired"
        else:
            data = {"reason": "device_removed", "device_id": self.ctx.device_id}
            close, reason = CLOSE_REVOKED, "device removed"
        await self._send(cause, event_frame(cause, orjson.dumps(data), None))
        await self._close(close, reason)

    # --- in ------------------------------------------------------------------------------------

    async def _inbound(self) -> None:
        while True:
            message = await self.ws.receive()
            if message["type"] == "websocket.disconnect":
                code = int(message.get("code") or CLOSE_NORMAL)
                if not self._closed:
                    self._closed = True
                    _close_code(code)
                return
            raw: str | bytes | None = message.get("text")
            if raw is None:
                raw = message.get("bytes") or b""
            if len(raw) > self.ctx.max_frame_bytes:
                # The server refuses such frames itself (ws_max_size); a second line here.
                await self._close(CLOSE_TOO_BIG, f"a frame over {self.ctx.max_frame_bytes} bytes")
                return
            if not self.budget.take():
                await self._close(
                    CLOSE_POLICY,
                    f"more than {self.budget.rate:g} frames/s (burst {self.budget.burst})",
                )
                return
            await self._handle(raw)

    async def _error(
        self,
        status: int,
        code: str,
        detail: str,
        ref: str | None,
        fields: list[dict[str, str]] | None = None,
    ) -> None:
        DEVICE_SOCKET_ERRORS.labels(code).inc()
        await self._send("error", error_frame(status, code, detail, self.ctx.instance, ref, fields))

    async def _handle(self, raw: str | bytes) -> None:
        try:
            frame = parse_frame(raw)
        except FrameRefused as exc:
            DEVICE_SOCKET_FRAMES.labels("in", "invalid").inc()
            await self._error(
                422,
                "validation_failed",
                f"{len(exc.fields)} field(s) failed validation",
                exc.ref,
                exc.fields,
            )
            return
        DEVICE_SOCKET_FRAMES.labels("in", frame.type).inc()
        if isinstance(frame, AckFrame):
            await self._ack(frame)
            return
        scope = _OP_SCOPES[frame.type]
        if scope not in self.ctx.scopes:
            await self._error(403, "forbidden", f"missing scope: {scope}", frame.ref)
            return
        try:
            await self._operate(frame)
        except RequestValidationError as exc:
            fields = field_errors(exc)
            await self._error(
                422,
                "validation_failed",
                f"{len(fields)} field(s) failed validation",
                frame.ref,
                fields,
            )
        except PublishOutcomeUnknown:
            await self._error(
                503,
                "outcome_unknown",
                "the broker did not confirm the event in time, so it may or may not have been "
                "accepted",
                frame.ref,
            )
        except BrokerUnavailable:
            await self._error(
                503,
                "broker_unavailable",
                "the event was not accepted (the broker cannot be reached, or this gateway is "
                "shutting down); nothing was written, so sending the frame again is safe",
                frame.ref,
            )
        except RedisError:
            await self._error(
                503, "redis_unavailable", "Redis (users' clocks) is unavailable; retry", frame.ref
            )
        except LookupTimeout as exc:
            # The ownership check's fallback asked the sync agent and had no answer in time.
            await self._error(503, "lookup_timeout", f"{exc}; retry shortly", frame.ref)
        except CircuitOpen as exc:
            await self._error(
                503,
                "dependency_unavailable",
                f"{exc.service} is failing; calls are paused, retry after "
                f"{max(1, round(exc.retry_after_s))} s",
                frame.ref,
            )

    async def _operate(self, frame: HeartbeatFrame | ProgressFrame | CommandFrame) -> None:
        app, ctx = self.ws.app, self.ctx
        event_id = uuid.uuid4()
        extra: dict[str, Any] = {}
        if isinstance(frame, HeartbeatFrame):
            published: Published = await send_heartbeat(
                app, ctx.user_id, ctx.device_id, frame.body, event_id
            )
        elif isinstance(frame, ProgressFrame):
            published, update = await report_progress(
                app, ctx.user_id, frame.content_id, ctx.device_id, frame.body, event_id, ("body",)
            )
            extra["timestamp"] = update.timestamp.model_dump()
        else:
            if frame.target_device_id != ctx.device_id:
                refused = await ctx.check_target(frame.target_device_id)
                if refused is not None:
                    code, detail = refused
                    await self._error(
                        403,
                        code,
                        detail,
                        frame.ref,
                        [{"field": "target_device_id", "reason": NOT_REGISTERED}],
                    )
                    return
            published, issued = await send_command(
                app,
                ctx.user_id,
                ctx.device_id,
                frame.target_device_id,
                frame.body,
                event_id,
                ("target_device_id",),
                # The first "body" is where (dropped from field names, as for HTTP); the
                # second the frame's field that holds the command.
                ("body", "body"),
            )
            extra |= {
                "command_id": str(issued.command_id),
                "expires_at": wire_time(issued.expires_at),
            }
        await self._send(
            "accepted", accepted_frame(frame.type, frame.ref, {**published.__dict__, **extra})
        )

    async def _ack(self, frame: AckFrame) -> None:
        last = self.source.last
        # Of this stream's lifetime (its epoch) and not past what the socket delivered.
        if last is None or frame.id.split(":")[0] != last.split(":")[0] or newer(frame.id, last):
            await self._error(
                422,
                "validation_failed",
                "1 field(s) failed validation",
                frame.ref,
                [{"field": "id", "reason": "is not an event id this socket delivered"}],
            )
            return
        key = ack_key(self._prefix, self.ctx.user_id, self.ctx.device_id)
        try:
            await self._redis.set(key, frame.id, ex=REPLAY_WINDOW_S)
        except RedisError:
            await self._error(
                503, "redis_unavailable", "the ack was not recorded; send it again", frame.ref
            )
