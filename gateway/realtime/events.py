"""One device's realtime events, whatever carries them: catch-up, then live messages, in the
user's order. The Server-Sent Events stream (gateway/realtime/sse.py) and the device WebSocket
(gateway/realtime/socket.py) both read an `EventSource` and only differ in how they write an
item, so a device gets the same events, ids, `ready` and `resync` over either.

Items, in order:
- `Event(kind=<channel name>)`: one message, its body exactly as PubNub subscribers get it,
  its id its place in the user's stream;
- `Event(kind="ready")`: the stream is live (its id, on a fresh start, is where the device
  stands);
- `Event(kind="resync")`: messages may have been missed (older than the replay window, or
  Redis lost them), or the id the device resumed from is ahead of the stream: reload state
  with the GETs, then carry on;
- `Idle`: nothing for KEEPALIVE_S (a transport may send a keep-alive);
- `Ended`: the last item: Redis was lost while catching up, or the gateway shuts down (the
  device resumes from its last id; nothing is missed); or the gateway ends the connection
  through its lease (gateway/realtime/lifecycle.py): the credential `expired`, or the device
  was removed (`revoked`).

A command (and its result) is addressed to one device: only that device's source yields it; a
source without a device id yields none. A source acting as a profile with parental limits
yields no notification of a title they refuse (a digest loses its refused entries); its id is
passed all the same, so a resumed source does not see it either.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator, Collection
from dataclasses import dataclass
from typing import Literal

import orjson
import redis.asyncio as aioredis
from loguru import logger
from redis.exceptions import RedisError

from agreements.notification_controls import visible_body
from agreements.sync_realtime import (
    AHEAD,
    GONE,
    MAX_ID_PART,
    REPLAY_WINDOW_S,
    Delivered,
    Replay,
    epoch_key,
    floor_key,
    following,
    log_key,
    newer,
    redis_id,
    stream_id,
)
from gateway.realtime.hub import Closed, Gap, HubUnavailable, LeaseEnded, RealtimeHub, Subscription
from gateway.realtime.lifecycle import Lease
from schemas.accounts import ProfileLimits

KEEPALIVE_S = 15.0


@dataclass(frozen=True, slots=True)
class StreamRequest:
    user_id: str
    device_id: str | None
    channels: frozenset[str]
    last_event_id: str | None
    # The acting profile's parental limits (read once at open); None: none. A notification
    # of a title they refuse is not sent (agreements/notification_controls.py).
    limits: ProfileLimits | None = None


@dataclass(frozen=True, slots=True)
class Event:
    kind: str  # a channel name, `ready` or `resync`
    data: bytes  # JSON
    event_id: str | None = None


@dataclass(frozen=True, slots=True)
class Idle:
    pass


@dataclass(frozen=True, slots=True)
class Ended:
    """Why the source stops: Redis lost (`redis_unavailable`), shutdown (`shutdown`), or the
    lease's end: `expired` (the credential) or `revoked` (the device removed)."""

    cause: Literal["redis_unavailable", "shutdown", "expired", "revoked"]


Item = Event | Idle | Ended
IDLE = Idle()


def wanted(message: Delivered, channels: Collection[str], device_id: str | None) -> bool:
    if message.channel not in channels:
        return False
    return not message.addressed_to or message.addressed_to == device_id


class EventSource:
    """The events of one device's connection, as an async iterator of items."""

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

    @property
    def request(self) -> StreamRequest:
        return self._request

    @property
    def lease(self) -> Lease | None:
        return self._lease

    @property
    def expires_at(self) -> float | None:
        """When the credential this source was opened with expires (epoch seconds)."""
        return self._lease.expires_at if self._lease is not None else None

    @property
    def last(self) -> str | None:
        """The newest id this source has passed (sent or skipped), or was told."""
        return self._last

    def _send(self, message: Delivered) -> Event | None:
        """The event for `message`, if this source wants it and has not yielded it yet."""
        if self._last is not None and not newer(message.event_id, self._last):
            return None
        self._last = message.event_id
        if not wanted(message, self._request.channels, self._request.device_id):
            return None
        body = visible_body(message.body, self._request.limits)
        if body is None:
            return None
        return Event(message.channel, body, message.event_id)

    async def _resync(self, reason: str) -> Event:
        self._last = await position(self._redis, self._prefix, self._request.user_id)
        body = orjson.dumps({"reason": reason, "replay_window_s": REPLAY_WINDOW_S})
        return Event("resync", body, self._last)

    async def _catch_up(self) -> list[Event]:
        """Everything after the last id this source yielded (or was told), or a resync."""
        if self._last is None:
            return []
        missed = await replay(self._redis, self._prefix, self._request.user_id, self._last)
        if missed.gap is not None:
            return [await self._resync(missed.gap)]
        return [e for m in missed.messages if (e := self._send(m)) is not None]

    async def _opening(self) -> list[Event]:
        hello = orjson.dumps(
            {
                "channels": sorted(self._request.channels),
                "device_id": self._request.device_id,
                "replay_window_s": REPLAY_WINDOW_S,
            }
        )
        if self._last is None:
            self._last = await position(self._redis, self._prefix, self._request.user_id)
            return [Event("ready", hello, self._last)]
        return [*await self._catch_up(), Event("ready", hello)]

    async def __aiter__(self) -> AsyncIterator[Item]:
        # Subscribed before reading the stream's position: nothing falls in between.
        sub: Subscription = self._hub.subscribe(self._request.user_id)
        if self._lease is not None:
            # Its end (expiry, removal) is queued behind what the source already has.
            self._lease.on_end(sub.end)
        try:
            await self._hub.ready()
            for item in await self._opening():
                yield item
            async for live in self._live(sub):
                yield live
        except (RedisError, HubUnavailable) as exc:
            logger.warning("event source of {} ends, Redis lost: {!r}", self._request.user_id, exc)
            yield Ended("redis_unavailable")
        finally:
            self._hub.unsubscribe(sub)

    async def _live(self, sub: Subscription) -> AsyncIterator[Item]:
        while True:
            try:
                item = await asyncio.wait_for(sub.queue.get(), KEEPALIVE_S)
            except TimeoutError:
                yield IDLE
                continue
            if isinstance(item, Closed):
                yield Ended("shutdown")
                return
            if isinstance(item, LeaseEnded):
                yield Ended("expired" if item.reason == "expired" else "revoked")
                return
            if isinstance(item, Gap):
                for caught in await self._catch_up():
                    yield caught
                continue
            if isinstance(item, Delivered):
                sent = self._send(item)
                if sent is not None:
                    yield sent


async def replay(redis: aioredis.Redis, prefix: str, user_id: str, after: str) -> Replay:
    """What the user's stream holds after event id `after` (one pipeline), or why a device
    that last saw it must resync (agreements/sync_realtime.py `Replay`)."""
    parsed = stream_id(after)
    if parsed is None:
        return Replay([], GONE)
    epoch, sid = parsed
    start = following(sid)
    if start is None:
        return Replay([], AHEAD)
    async with redis.pipeline(transaction=False) as pipe:
        pipe.get(epoch_key(prefix, user_id))
        pipe.get(floor_key(prefix, user_id))
        pipe.time()
        pipe.xrevrange(log_key(prefix, user_id), max="+", min="-", count=1)
        pipe.xrange(log_key(prefix, user_id), min=f"{start[0]}-{start[1]}", max="+")
        held_epoch, floor, (now_s, now_us), newest, entries = await pipe.execute()
    now_ms = now_s * 1000 + now_us // 1000
    if held_epoch is None or held_epoch.decode() != epoch:
        return Replay([], GONE)
    # Past the newest message, or with none, not before now: the next message would not be
    # newer than `after`.
    if sid > (redis_id(newest[0][0]) if newest else (now_ms - 1, MAX_ID_PART)):
        return Replay([], AHEAD)
    if sid[0] < now_ms - REPLAY_WINDOW_S * 1000:
        return Replay([], GONE)
    if floor is not None and sid < redis_id(floor):
        return Replay([], GONE)
    messages = [
        Delivered(f"{epoch}:{raw.decode()}", f[b"c"].decode(), f[b"a"].decode(), f[b"m"])
        for raw, f in entries
    ]
    return Replay(messages)


async def position(redis: aioredis.Redis, prefix: str, user_id: str) -> str:
    """The event id of the user's newest message: where a device that starts listening now
    stands (so its first reconnect can be caught up). Starts an epoch if there is none."""
    async with redis.pipeline(transaction=False) as pipe:
        pipe.set(
            epoch_key(prefix, user_id), secrets.token_hex(4), nx=True, px=REPLAY_WINDOW_S * 1000
        )
        pipe.get(epoch_key(prefix, user_id))
        pipe.xrevrange(log_key(prefix, user_id), max="+", min="-", count=1)
        pipe.time()
        _, epoch, newest, (now_s, now_us) = await pipe.execute()
    if newest:
        last = newest[0][0].decode()
    else:
        # Nothing yet: just before now, so the first message (stamped now or later) is newer.
        last = f"{now_s * 1000 + now_us // 1000 - 1}-{MAX_ID_PART}"
    return f"{epoch.decode()}:{last}"
