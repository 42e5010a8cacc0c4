"""Re-mirror API keys into a Redis that came back empty, while `mgw up` runs.

Redis keeps nothing on disk, and the gateway reads keys only from their Redis mirror, so an
empty Redis answers every write 401 until the keys are copied again from PostgreSQL. After a
sync, a marker key is set; the guard checks for it every few seconds (one EXISTS) and syncs
when it is gone. That covers the embedded Redis the supervisor restarts (checked at once after
the restart) and an external one (REDIS_URL) that restarted or was flushed.
"""

from __future__ import annotations

import asyncio
import time

import redis
from loguru import logger

from core.config import Settings

CHECK_INTERVAL_S = 3.0
SYNC_TIMEOUT_S = 5.0


def marker_key(prefix: str) -> str:
    # Outside `{prefix}:apikey:*`, which KeyStore.sync scans for stale mirrors.
    return f"{prefix}:mgw-up:keys-mirrored"


class KeyMirrorGuard:
    def __init__(self, settings: Settings, interval_s: float = CHECK_INTERVAL_S) -> None:
        self._settings = settings
        self._interval_s = interval_s
        self._next = 0.0
        self._marker = marker_key(settings.redis.key_prefix)

    def mark(self) -> None:
        """Record that the keys were just mirrored (by `mgw up`'s own start)."""
        client = redis.Redis.from_url(self._settings.redis.require_url(), socket_timeout=1)
        try:
            client.set(self._marker, "1")
        finally:
            client.close()

    def due(self) -> None:
        """Check now if the interval has passed; never raises (Redis may be down)."""
        if time.monotonic() >= self._next:
            self.check()

    def check(self) -> int | None:
        """Sync the keys if the marker is missing; the number mirrored, or None if no sync ran."""
        self._next = time.monotonic() + self._interval_s
        try:
            client = redis.Redis.from_url(
                self._settings.redis.require_url(), socket_timeout=1, socket_connect_timeout=1
            )
            try:
                if client.exists(self._marker):
                    return None
                # Bounded: this runs in the supervisor's loop, which must not hang on a
                # PostgreSQL that is down too.
                mirrored = asyncio.run(asyncio.wait_for(self._sync(), SYNC_TIMEOUT_S))
                client.set(self._marker, "1")
            finally:
                client.close()
        except Exception as exc:  # Redis or PostgreSQL down: the next check tries again
            logger.debug("key mirror check skipped: {!r}", exc)
            return None
        logger.warning(
            "Redis had no API keys (restarted empty?): mirrored {} live key(s) from PostgreSQL",
            mirrored,
        )
        return mirrored

    async def _sync(self) -> int:
        from gateway.auth.key_store import KeyStore

        async with KeyStore.open(self._settings) as store:
            return (await store.sync()).mirrored
