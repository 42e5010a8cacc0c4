"""One Redis pub/sub connection per gateway process, fanned out to the event streams it serves.

The hub listens to every user's live channel (one pattern subscription) and hands each message
to the local streams of that user. A stream whose queue is full, or every stream when the hub
lost Redis for a moment, is told it may have missed messages (`Gap`); it then catches up from
the user's Redis stream (agreements/sync_realtime.py), so neither case leaves a silent gap.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field

import orjson
import redis.asyncio as aioredis
from loguru import logger

from agreements.sync_realtime import Delivered, live_pattern, parse_live, segment_of
from core.resilience.fastredis import REDIS_ERRORS
from schemas.sync import channel_segment

QUEUE_SIZE = 1000
_RECONNECT_FIRST_S = 0.2
_RECONNECT_MAX_S = 5.0
_READY_TIMEOUT_S = 3.0


class Gap:
    """Messages may have been missed: catch up from the stream."""


class Closed:
    """The gateway is shutting down: end the stream."""


@dataclass(frozen=True, slots=True)
class LeaseEnded:
    """The gateway ends this stream: its credential `expired`, or its device was `revoked`."""

    reason: str


Item = Delivered | Gap | Closed | LeaseEnded
GAP, CLOSED = Gap(), Closed()


@dataclass(eq=False)
class Subscription:
    segment: str
    queue: asyncio.Queue[Item] = field(default_factory=lambda: asyncio.Queue(QUEUE_SIZE))

    def offer(self, item: Item) -> None:
        try:
            self.queue.put_nowait(item)
        except asyncio.QueueFull:
            # Drop what is queued: the stream re-reads all of it from Redis anyway.
            while not self.queue.empty():
                self.queue.get_nowait()
            self.queue.put_nowait(GAP)

    def end(self, reason: str) -> None:
        """Queue the end of the stream; what is queued before it is still sent when there is
        room (a full queue is dropped: the stream ends anyway, and resumes by id)."""
        if self.queue.full():
            while not self.queue.empty():
                self.queue.get_nowait()
        self.queue.put_nowait(LeaseEnded(reason))


def removed_device(item: Delivered) -> str | None:
    """The device a `device_presence` `removed` message reports, else None (cheap for every
    other message: most are ruled out without parsing)."""
    if not item.channel.endswith(".devices") or b'"removed"' not in item.body:
        return None
    try:
        body = orjson.loads(item.body)
    except orjson.JSONDecodeError:
        return None
    if body.get("kind") == "device_presence" and body.get("presence") == "removed":
        device = body.get("device_id")
        return device if isinstance(device, str) else None
    return None


class HubUnavailable(ConnectionError):
    """The hub has no Redis subscription: a stream opened now could miss messages."""


class RealtimeHub:
    def __init__(self, redis_url: str, prefix: str) -> None:
        self._url = redis_url
        self._prefix = prefix
        self._subscribers: dict[str, set[Subscription]] = {}
        self._listening = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        # Told (channel segment, device id) when a device of a user with local streams is
        # removed (gateway/realtime/lifecycle.py ends its streams and sockets).
        self.on_device_removed: Callable[[str, str], None] | None = None

    def subscribe(self, user_id: str) -> Subscription:
        sub = Subscription(channel_segment(user_id))
        self._subscribers.setdefault(sub.segment, set()).add(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        subs = self._subscribers.get(sub.segment)
        if subs is not None:
            subs.discard(sub)
            if not subs:
                del self._subscribers[sub.segment]

    @property
    def streams(self) -> int:
        return sum(len(s) for s in self._subscribers.values())

    async def ready(self) -> None:
        """Wait until the hub is subscribed (started on first use)."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="realtime-hub")
        try:
            await asyncio.wait_for(self._listening.wait(), _READY_TIMEOUT_S)
        except TimeoutError:
            raise HubUnavailable("the realtime hub cannot subscribe to Redis") from None

    def _broadcast(self, item: Item) -> None:
        for subs in self._subscribers.values():
            for sub in subs:
                sub.offer(item)

    async def _run(self) -> None:
        delay = _RECONNECT_FIRST_S
        while True:
            # No socket timeout: the connection idles between messages by design.
            client = aioredis.from_url(self._url, socket_connect_timeout=2.0)
            pubsub = client.pubsub()
            try:
                await pubsub.psubscribe(live_pattern(self._prefix))
                if not self._listening.is_set():
                    self._listening.set()
                    # Streams opened while Redis was away may have missed messages.
                    self._broadcast(GAP)
                delay = _RECONNECT_FIRST_S
                while True:
                    message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=5.0)
                    if message is None or message["type"] != "pmessage":
                        continue
                    channel = message["channel"].decode()
                    segment = segment_of(self._prefix, channel)
                    subs = self._subscribers.get(segment)
                    if not subs:
                        continue
                    try:
                        item = parse_live(message["data"])
                    except ValueError:
                        logger.error("realtime hub: malformed message on {}", channel)
                        continue
                    for sub in list(subs):
                        sub.offer(item)
                    if self.on_device_removed is not None:
                        removed = removed_device(item)
                        if removed is not None:
                            self.on_device_removed(segment, removed)
            except asyncio.CancelledError:
                raise
            except REDIS_ERRORS as exc:
                if self._listening.is_set():
                    logger.warning("realtime hub lost Redis ({}); reconnecting", exc)
                self._listening.clear()
                await asyncio.sleep(delay)
                delay = min(delay * 2, _RECONNECT_MAX_S)
            finally:
                with contextlib.suppress(*REDIS_ERRORS):
                    await pubsub.aclose()
                with contextlib.suppress(*REDIS_ERRORS):
                    await client.aclose()

    async def close(self) -> None:
        self._broadcast(CLOSED)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
