"""One device's Server-Sent Events stream: the device's events (gateway/realtime/events.py)
written as text/event-stream.

Wire format: each message is an event whose type is its channel name (`user.alice.sync`,
...), whose data is the message body exactly as PubNub subscribers get it, and whose id is its
place in the user's stream. Besides messages:
- `ready`: the stream is live (its id, on a fresh start, is where the device stands);
- `resync`: messages may have been missed (older than the replay window, or Redis lost them),
  or the id the device resumed from is ahead of the stream: reload state with the GETs, then
  carry on with the stream;
- `problem`: the stream ends because of a failure (Redis lost while catching up, or the
  gateway shutting down); its data is the problem object every HTTP error has
  (gateway/problems.py). Reconnect after it with Last-Event-ID; nothing is missed. (Not named
  `error`: EventSource reserves that name for its own connection errors.)
- `expired`: the stream ends because the credential it was opened with (the token, or the
  token the ticket was issued with) expired; data `{"reason": "credential_expired",
  "expired_at"}`. Reconnect with a fresh token (or ticket) and Last-Event-ID: nothing is missed.
- `revoked`: the stream ends because its device was removed; data `{"reason":
  "device_removed", "device_id"}`. Do not reconnect as that device.
- comments (`: ping`) every 15 s keep proxies from closing an idle stream.

A command (and its result) is addressed to one device: only the stream of that device
(X-Device-ID) receives it; a stream without a device id receives none.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import aclosing
from datetime import UTC, datetime
from typing import Any

import orjson
import redis.asyncio as aioredis

from core.observability import correlation
from gateway.problems import problem_bytes
from gateway.realtime.events import (
    KEEPALIVE_S,
    Ended,
    Event,
    EventSource,
    Idle,
    StreamRequest,
    wanted,
)
from gateway.realtime.hub import RealtimeHub
from gateway.realtime.lifecycle import EXPIRED, Lease
from schemas.sync import wire_time

__all__ = [
    "KEEPALIVE_S",
    "RETRY_MS",
    "STREAM_CONTENT",
    "EventStream",
    "StreamRequest",
    "end_event",
    "event",
    "wanted",
]

RETRY_MS = 2000

# What each end says, and how to carry on.
_ENDINGS = {
    "redis_unavailable": (
        "redis_unavailable",
        "the stream lost Redis; reconnect with Last-Event-ID after the retry delay",
    ),
    "shutdown": (
        "service_unavailable",
        "this gateway is shutting down; reconnect with Last-Event-ID",
    ),
}


def event(kind: str, data: bytes, event_id: str | None = None) -> bytes:
    head = f"id: {event_id}\n" if event_id is not None else ""
    return f"{head}event: {kind}\n".encode() + b"data: " + data + b"\n\n"


def problem_event(request: StreamRequest, status: int, code: str, detail: str) -> bytes:
    body = problem_bytes(
        status,
        code,
        detail,
        f"/api/v1/users/{request.user_id}/stream",
        request_id=correlation.current(),
    )
    return event("problem", body)


def end_event(reason: str, request: StreamRequest, expires_at: float | None) -> bytes:
    """The last event of a stream the gateway ends (no id: the device resumes from the last
    message it saw)."""
    if reason == EXPIRED:
        at = wire_time(datetime.fromtimestamp(expires_at or 0, UTC))
        body = {"reason": "credential_expired", "expired_at": at}
    else:
        body = {"reason": "device_removed", "device_id": request.device_id}
    return event(reason, orjson.dumps(body))


class EventStream:
    """The generator behind one SSE response."""

    def __init__(
        self,
        hub: RealtimeHub,
        redis: aioredis.Redis,
        prefix: str,
        request: StreamRequest,
        lease: Lease | None = None,
    ) -> None:
        self._source = EventSource(hub, redis, prefix, request, lease)

    async def __aiter__(self) -> AsyncIterator[bytes]:
        yield f"retry: {RETRY_MS}\n\n".encode()
        # aclosing: a client that goes away unsubscribes now, not when the collector runs.
        async with aclosing(self._source.__aiter__()) as items:
            async for item in items:
                if isinstance(item, Event):
                    yield event(item.kind, item.data, item.event_id)
                elif isinstance(item, Idle):
                    yield b": ping\n\n"
                elif isinstance(item, Ended):
                    request = self._source.request
                    if item.cause in _ENDINGS:
                        # The answer's status is long gone: the stream's last event says why.
                        code, detail = _ENDINGS[item.cause]
                        yield problem_event(request, 503, code, detail)
                    else:
                        yield end_event(item.cause, request, self._source.expires_at)
                    return


def _data(required: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "required": list(required), "properties": required}


_STRING = {"type": "string"}
_CHANNELS = {"type": "array", "items": _STRING}
# What each non-message event's data holds (the JSON the generator above writes); a message's
# data is its channel's message, as the AsyncAPI document (/asyncapi.json) describes it. Ids:
# a message has one, `ready` on a fresh start (where the device stands), `resync` (where to
# carry on); the ends have none.
EVENT_DATA: dict[str, dict[str, Any]] = {
    "ready": _data(
        {
            "channels": _CHANNELS,
            "device_id": {"type": ["string", "null"]},
            "replay_window_s": {"type": "integer"},
        }
    ),
    "resync": _data({"reason": _STRING, "replay_window_s": {"type": "integer"}}),
    "problem": _data(
        {
            "type": _STRING,
            "title": _STRING,
            "status": {"type": "integer"},
            "detail": _STRING,
            "error": _STRING,
        }
    ),
    "expired": _data({"reason": {"const": "credential_expired"}, "expired_at": _STRING}),
    "revoked": _data({"reason": {"const": "device_removed"}, "device_id": _STRING}),
}

# The OpenAPI content of GET .../stream's 200. Before OpenAPI 3.2 (FastAPI writes 3.1) the
# `schema` of text/event-stream is read as the schema of each event, its fields parsed from
# the wire (what 3.2 calls itemSchema; schemathesis checks every event against it). Each
# event's data is JSON whose schema depends on its name: listed under x-events. The example,
# the stream on the wire, is written by the same functions that write the stream.
STREAM_CONTENT: dict[str, Any] = {
    "text/event-stream": {
        "schema": {
            "type": "object",
            "description": "One Server-Sent Event (WHATWG HTML section 9.2): the stream starts "
            "with `retry:`, then events of `id:` (a message's place in the user's stream, for "
            "Last-Event-ID), `event:` (a channel name such as user.{user_id}.sync, or ready, "
            "resync, problem, expired, revoked) and one `data:` line of JSON, each ended by a "
            f"blank line; `: ping` comments every {KEEPALIVE_S:g} s",
            "properties": {
                "event": {"type": "string", "minLength": 1},
                "data": {"type": "string", "description": "JSON: x-events gives its schema"},
                "id": {"type": "string"},
                "retry": {"type": "integer", "minimum": 0},
            },
        },
        "example": (
            f"retry: {RETRY_MS}\n\n".encode()
            + event(
                "ready",
                b'{"channels":["sync"],"device_id":"tv-1","replay_window_s":3600}',
                "0:1765090000000-0",
            )
            + event("user.u-1.sync", b'{"type":"progress_updated"}', "0:1765090000001-0")
            + b": ping\n\n"
        ).decode(),
        "x-events": {
            "{channel name}": {
                "data": "the message, as PubNub subscribers get it (see /asyncapi.json)",
                "id": "always",
            },
            **{name: {"data": schema} for name, schema in EVENT_DATA.items()},
        },
    }
}
