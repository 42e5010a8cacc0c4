"""What every open stream and socket goes through: the caps it counts against on open, and
the signal that ends it (its credential expired, or its device was removed).

    leases = leases_of(app)                      # gateway/routes/realtime.py, one per process
    lease = await leases.acquire(user_id, device_id, "socket", credential_expires_at)
    lease.on_end(callback)          # called once, with "expired" or "revoked"
    ...
    await leases.release(lease)     # on close, however it closes

or `async with leases.held(user_id, device_id, "socket", expires_at) as lease: ...`.
`acquire` raises CapRefused (status 429 or 503, `code`, `detail`, `retry_after_s`) at a cap.
The revocation comes from the process's realtime hub (`hub_of(app)`), which reports removals
only for users it holds a subscription of: a stream or socket keeps its hub subscription
open for as long as it holds its lease (both do anyway, to receive the user's messages).

Caps (docs/SYNC.md):
- per gateway process (REALTIME_STREAMS_PER_PROCESS): a count in this process, checked first
  (no Redis round trip); crossing it is 503 `stream_capacity`.
- per user across every gateway process (REALTIME_STREAMS_PER_USER): one Redis sorted set per
  user of leases (member: the lease id, score: when it lapses, in Redis's own clock so gateway
  clocks do not matter). Each process refreshes its leases every third of
  REALTIME_LEASE_TTL_S; a lease of a process that died without closing lapses after that TTL,
  so a crash frees the user's slots within 30 s by default. Taking a lease is one Lua script
  (drop lapsed leases, count, add), so two gateways racing for the last slot cannot both get
  it. Crossing it is 429 `too_many_streams`.

Ends: "expired" fires at the credential's `exp` (a timer per lease); "revoked" fires when this
process's realtime hub hears the device's `device_presence` `removed` message on the user's
devices channel (`device_removed`), i.e. as soon as the sync agents applied the removal, in
every gateway process holding a stream of that device.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Literal

import redis.asyncio as aioredis
from loguru import logger
from redis.commands.core import AsyncScript

from core.observability.metrics import REALTIME_ENDED, REALTIME_OPEN, REALTIME_REFUSED
from core.resilience.fastredis import REDIS_ERRORS
from schemas.sync import channel_segment

Kind = Literal["stream", "socket"]
EXPIRED, REVOKED = "expired", "revoked"
USER_RETRY_AFTER_S = 5
PROCESS_RETRY_AFTER_S = 2
# Users whose leases one pipeline refreshes (see `refresh`).
REFRESH_CHUNK = 200

# KEYS[1]: the user's leases. ARGV: lease id, cap, ttl ms. Returns the count after adding, or
# -1 when the user is at the cap.
_ACQUIRE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local n = redis.call('ZCARD', KEYS[1])
if n >= tonumber(ARGV[2]) then return -1 end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return n + 1
"""
# KEYS[1]: the user's leases. ARGV: ttl ms, then this process's lease ids of that user.
_REFRESH = """
local t = redis.call('TIME')
local until_ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) + tonumber(ARGV[1])
for i = 2, #ARGV do redis.call('ZADD', KEYS[1], until_ms, ARGV[i]) end
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return 1
"""


class CapRefused(Exception):
    """A stream or socket refused at a cap: answer `status` with the problem `code`."""

    def __init__(self, status: int, code: str, detail: str, retry_after_s: int) -> None:
        super().__init__(detail)
        self.status = status
        self.code = code
        self.detail = detail
        self.retry_after_s = retry_after_s


def leases_key(prefix: str, user_id: str) -> str:
    return f"{prefix}:rt:{{{channel_segment(user_id)}}}:leases"


@dataclass(eq=False)
class Lease:
    """One open stream or socket."""

    lease_id: str
    user_id: str
    device_id: str | None
    kind: Kind
    expires_at: float  # the credential's exp, epoch seconds
    reason: str | None = None  # why the gateway ended it, once it did
    _callbacks: list[Callable[[str], None]] = field(default_factory=list)
    _timer: asyncio.TimerHandle | None = None

    def on_end(self, callback: Callable[[str], None]) -> None:
        """Call `callback(reason)` once when the gateway ends this stream (at once if it
        already did). It runs on the event loop: it must not block (put on a queue, set an
        event)."""
        if self.reason is not None:
            callback(self.reason)
        else:
            self._callbacks.append(callback)

    def end(self, reason: str) -> None:
        if self.reason is not None:
            return
        self.reason = reason
        REALTIME_ENDED.labels(reason).inc()
        callbacks, self._callbacks = self._callbacks, []
        for callback in callbacks:
            callback(reason)


class StreamLeases:
    """The open streams and sockets of one gateway process."""

    def __init__(
        self,
        redis: aioredis.Redis,
        prefix: str,
        *,
        per_user: int,
        per_process: int,
        lease_ttl_s: float,
    ) -> None:
        self._redis = redis
        self._prefix = prefix
        self.per_user = per_user
        self.per_process = per_process
        self._ttl_ms = int(lease_ttl_s * 1000)
        self._leases: dict[str, Lease] = {}
        self._by_device: dict[tuple[str, str], set[Lease]] = {}
        self._acquire: AsyncScript = redis.register_script(_ACQUIRE)
        self._refresh: AsyncScript = redis.register_script(_REFRESH)
        self._refresher: asyncio.Task[None] | None = None
        self._open = 0

    @property
    def open(self) -> int:
        """Streams and sockets holding a lease of this process (until fully released)."""
        return self._open

    async def acquire(
        self, user_id: str, device_id: str | None, kind: Kind, expires_at: float
    ) -> Lease:
        """A lease for a new stream or socket; CapRefused at a cap. Redis errors propagate
        (a stream cannot work without Redis anyway)."""
        if self._open >= self.per_process:
            REALTIME_REFUSED.labels("process").inc()
            raise CapRefused(
                503,
                "stream_capacity",
                f"this gateway process holds {self.per_process} streams and sockets "
                "(REALTIME_STREAMS_PER_PROCESS); retry, or through another instance",
                PROCESS_RETRY_AFTER_S,
            )
        lease = Lease(uuid.uuid4().hex, user_id, device_id, kind, expires_at)
        # Counted here before the Redis round trip: concurrent opens cannot overshoot.
        self._open += 1
        try:
            count = await self._acquire(
                keys=[leases_key(self._prefix, user_id)],
                args=[lease.lease_id, self.per_user, self._ttl_ms],
            )
        except BaseException:
            self._open -= 1
            raise
        if int(count) < 0:
            self._open -= 1
            REALTIME_REFUSED.labels("user").inc()
            raise CapRefused(
                429,
                "too_many_streams",
                f"user {user_id} holds {self.per_user} open streams and sockets "
                "(REALTIME_STREAMS_PER_USER); close one first",
                USER_RETRY_AFTER_S,
            )
        self._leases[lease.lease_id] = lease
        REALTIME_OPEN.labels(kind).inc()
        if device_id is not None:
            self._by_device.setdefault((channel_segment(user_id), device_id), set()).add(lease)
        delay = max(0.0, expires_at - time.time())
        lease._timer = asyncio.get_running_loop().call_later(delay, lease.end, EXPIRED)
        if self._refresher is None or self._refresher.done():
            self._refresher = asyncio.create_task(self._refresh_forever(), name="stream-leases")
        return lease

    @asynccontextmanager
    async def held(
        self, user_id: str, device_id: str | None, kind: Kind, expires_at: float
    ) -> AsyncIterator[Lease]:
        """`acquire` on entry, `release` on exit."""
        lease = await self.acquire(user_id, device_id, kind, expires_at)
        try:
            yield lease
        finally:
            await self.release(lease)

    async def release(self, lease: Lease) -> None:
        """Give the lease back (idempotent). A Redis error leaves it to lapse on its own."""
        if self._leases.pop(lease.lease_id, None) is None:
            return
        if lease._timer is not None:
            lease._timer.cancel()
        if lease.device_id is not None:
            key = (channel_segment(lease.user_id), lease.device_id)
            held = self._by_device.get(key)
            if held is not None:
                held.discard(lease)
                if not held:
                    del self._by_device[key]
        try:
            await self._redis.zrem(leases_key(self._prefix, lease.user_id), lease.lease_id)
        except REDIS_ERRORS as exc:
            logger.warning("stream lease not released ({!r}); it lapses on its own", exc)
        finally:
            # Counted down last: once the process shows it closed, the user's slot is free too.
            REALTIME_OPEN.labels(lease.kind).dec()
            self._open -= 1

    def device_removed(self, segment: str, device_id: str) -> None:
        """The device `device_id` of the user whose channel segment is `segment` was removed:
        end its streams and sockets in this process."""
        for lease in list(self._by_device.get((segment, device_id), ())):
            lease.end(REVOKED)

    async def refresh(self) -> None:
        """Push every lease of this process a TTL further (one script per user), in pipelines
        of REFRESH_CHUNK users: the event loop serves the streams between two of them (all
        10,000 of a full process at once held it ~1.6 s on a loaded 2-core machine)."""
        users: dict[str, list[str]] = {}
        for lease in self._leases.values():
            users.setdefault(lease.user_id, []).append(lease.lease_id)
        batch = list(users.items())
        for start in range(0, len(batch), REFRESH_CHUNK):
            pipe = self._redis.pipeline(transaction=False)
            for user_id, ids in batch[start : start + REFRESH_CHUNK]:
                await self._refresh(
                    keys=[leases_key(self._prefix, user_id)],
                    args=[self._ttl_ms, *ids],
                    client=pipe,
                )
            await pipe.execute()

    async def _refresh_forever(self) -> None:
        while self._leases:
            await asyncio.sleep(self._ttl_ms / 3000)
            try:
                await self.refresh()
            except REDIS_ERRORS as exc:
                # The leases may lapse meanwhile (the user's count is then low, never high).
                logger.warning("stream leases not refreshed: {!r}", exc)

    async def close(self) -> None:
        if self._refresher is not None:
            self._refresher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._refresher
            self._refresher = None
