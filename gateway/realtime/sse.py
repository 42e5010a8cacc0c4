"""One device's Server-Sent Events stream: catch-up, then live messages, in the user's order.

Wire format (text/event-stream): each message is an event whose type is its channel name
(`user.alice.sync`, ...), whose data is the message body exactly as PubNub subscribers get
it, and whose id is its place in the user's stream. Besides messages:
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

import asyncio
from collections.abc import AsyncIterator, Collection
from dataclasses import dataclass
from datetime import UTC, datetime

import orjson
import redis.asyncio as aioredis
from loguru import logger
from redis.exceptions import RedisError

from agreements.sync_realtime import REPLAY_WINDOW_S, Delivered, newer, position, replay
from core.observability import correlation
from gateway.problems import problem_bytes
from gateway.realtime.hub import Closed, Ended, Gap, HubUnavailable, RealtimeHub, Subscription
from gateway.realtime.lifecycle import EXPIRED, Lease
from schemas.sync import wire_time

KEEPALIVE_S = 15.0
RETRY_MS = 2000


@dataclass(frozen=True, slots=True)
class StreamRequest:
    user_id: str
    device_id: str | None
    channels: frozenset[str]
    last_event_id: str | None


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


def wanted(message: Delivered, channels: Collection[str], device_id: str | None) -> bool:
    if message.channel not in channels:
        return False
    return not message.addressed_to or message.addressed_to == device_id


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
        self._lease = lease
        self._hub = hub
        self._redis = redis
        self._prefix = prefix
        self._request = request
        self._last: str | None = request.last_event_id

    def _send(self, message: Delivered) -> bytes | None:
        """The event for `message`, if this stream wants it and has not sent it yet."""
        if self._last is not None and not newer(message.event_id, self._last):
            return None
        self._last = message.event_id
        if not wanted(message, self._request.channels, self._request.device_id):
            return None
        return event(message.channel, message.body, message.event_id)

    async def _resync(self, reason: str) -> bytes:
        self._last = await position(self._redis, self._prefix, self._request.user_id)
        body = orjson.dumps({"reason": reason, "replay_window_s": REPLAY_WINDOW_S})
        return event("resync", body, self._last)

    async def _catch_up(self) -> list[bytes]:
        """Everything after the last id this stream sent (or was told), or a resync."""
        if self._last is None:
            return []
        missed = await replay(self._redis, self._prefix, self._request.user_id, self._last)
        if missed.gap is not None:
            return [await self._resync(missed.gap)]
        return [chunk for m in missed.messages if (chunk := self._send(m)) is not None]

    async def _opening(self) -> list[bytes]:
        hello = orjson.dumps(
            {
                "channels": sorted(self._request.channels),
                "device_id": self._request.device_id,
                "replay_window_s": REPLAY_WINDOW_S,
            }
        )
        if self._last is None:
            self._last = await position(self._redis, self._prefix, self._request.user_id)
            return [event("ready", hello, self._last)]
        return [*await self._catch_up(), event("ready", hello)]

    async def __aiter__(self) -> AsyncIterator[bytes]:
        yield f"retry: {RETRY_MS}\n\n".encode()
        # Subscribed before reading the stream's position: nothing falls in between.
        sub: Subscription = self._hub.subscribe(self._request.user_id)
        if self._lease is not None:
            # Its end (expiry, removal) is queued behind what the stream already has.
            self._lease.on_end(sub.end)
        try:
            await self._hub.ready()
            for chunk in await self._opening():
                yield chunk
            async for chunk in self._live(sub):
                yield chunk
        except (RedisError, HubUnavailable) as exc:
            # The answer's status is long gone: the stream's last event says why it ends.
            logger.warning("event stream of {} ends, Redis lost: {!r}", self._request.user_id, exc)
            yield problem_event(
                self._request,
                503,
                "redis_unavailable",
                "the stream lost Redis; reconnect with Last-Event-ID after the retry delay",
            )
        finally:
            self._hub.unsubscribe(sub)

    async def _live(self, sub: Subscription) -> AsyncIterator[bytes]:
        while True:
            try:
                item = await asyncio.wait_for(sub.queue.get(), KEEPALIVE_S)
            except TimeoutError:
                yield b": ping\n\n"
                continue
            if isinstance(item, Closed):
                yield problem_event(
                    self._request,
                    503,
                    "service_unavailable",
                    "this gateway is shutting down; reconnect with Last-Event-ID",
                )
                return
            if isinstance(item, Ended):
                expires_at = self._lease.expires_at if self._lease is not None else None
                yield end_event(item.reason, self._request, expires_at)
                return
            if isinstance(item, Gap):
                for chunk in await self._catch_up():
                    yield chunk
                continue
            if isinstance(item, Delivered):
                chunk = self._send(item)
                if chunk is not None:
                    yield chunk
