"""Keeps each gateway process's verifier current: the built-in token service's public keys and
the deny-list of revoked tokens from Redis (agreements/auth_state.py), and external providers'
JWKS once they are older than AUTH_JWKS_CACHE_S.

A cheap GET of the version, and a full read only when it moved: when the auth agents announce
a change (agreements/auth_state.py, `{prefix}:auth:changed`), right after (re)subscribing to
those announcements, every QUIET_POLL_S besides, and every AUTH_REVOCATION_POLL_S while no
subscription holds. So a revocation is refused by every process at once (within
AUTH_REVOCATION_POLL_S while it cannot subscribe, QUIET_POLL_S if its subscription died without
an error), even for a token the process has already verified and cached, and the request path
itself never waits on Redis for it. (A GET every 0.5 s in each process
was most of an idle gateway's own work: docs/OPERATIONS.md, "An idle stack".)
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator

import redis.asyncio as aioredis
from loguru import logger
from redis.exceptions import RedisError

from agreements.auth_state import changes_channel, read_state, read_version
from gateway.auth.key_sets import signing_keys
from gateway.auth.tokens import TokenVerifier

BUILTIN = "built-in"
# The poll beside the announcements: bounds what a subscription that died without an error
# (a half-open connection) could leave unseen.
QUIET_POLL_S = 5.0


class KeySync:
    def __init__(
        self,
        verifier: TokenVerifier,
        redis: aioredis.Redis,
        prefix: str,
        poll_s: float,
        url: str | None = None,
        quiet_poll_s: float = QUIET_POLL_S,
    ) -> None:
        self.verifier = verifier
        self.redis = redis
        self.prefix = prefix
        self.poll_s = poll_s
        # Where to subscribe to the announcements (None: poll every poll_s only).
        self.url = url
        self.quiet_poll_s = max(poll_s, quiet_poll_s)
        self.subscribed = False
        self._version: bytes | None = None
        self._loaded = False
        self._failing = False
        self._forced_at = float("-inf")
        self.stopped = False

    async def reload(self) -> bool:
        """Read the Redis state now (a token names a kid we do not know); at most once per
        poll interval, so made-up kids cannot turn into a Redis read each."""
        now = time.monotonic()
        if now - self._forced_at < self.poll_s:
            return False
        self._forced_at = now
        self._loaded = False
        await self.once(external=False)
        return True

    async def once(self, external: bool = True) -> None:
        """One poll: reload the Redis state if its version moved; refetch stale JWKS."""
        try:
            version = await read_version(self.redis, self.prefix)
            if not self._loaded or version != self._version:
                version, keys, denied = await read_state(self.redis, self.prefix)
                now = time.time()
                live = {kid: jwk for kid, jwk in keys.items() if jwk.get("exp_after", now) >= now}
                self.verifier.builtin_keys = signing_keys({"keys": list(live.values())}, BUILTIN)
                self.verifier.denied = denied
                self._version, self._loaded = version, True
            if self._failing:
                logger.info("auth state: Redis answers again")
                self._failing = False
        except (RedisError, OSError) as exc:
            # The last known keys and deny-list stay in force.
            if not self._failing:
                logger.warning("auth state: Redis unreachable, last known keys kept: {}", exc)
                self._failing = True
        jwks = self.verifier.external
        if external and jwks is not None and jwks.stale():
            await asyncio.to_thread(jwks.refresh)

    async def run(self) -> None:
        while not self.stopped:
            if self.url is not None:
                try:
                    await self._listen(self.url)
                except (RedisError, OSError):
                    pass  # polled every poll_s below until the subscription holds again
                finally:
                    self.subscribed = False
                if self.stopped:
                    return
            await self.once()
            await asyncio.sleep(self.poll_s)

    async def _listen(self, url: str) -> None:
        """Reload on each announcement while subscribed; poll every quiet_poll_s besides."""
        # A connection of its own without a socket timeout: it idles between messages.
        client = aioredis.from_url(url, socket_connect_timeout=2.0)
        pubsub = client.pubsub()
        try:
            await pubsub.subscribe(changes_channel(self.prefix))
            self.subscribed = True
            # What changed before the subscription took (or while it was down) is read now.
            await self.once()
            while not self.stopped:
                await pubsub.get_message(ignore_subscribe_messages=True, timeout=self.quiet_poll_s)
                await self.once()
        finally:
            await pubsub.aclose()
            await client.aclose()


@contextlib.asynccontextmanager
async def key_sync(
    verifier: TokenVerifier,
    redis: aioredis.Redis,
    prefix: str,
    poll_s: float,
    url: str | None = None,
) -> AsyncIterator[KeySync]:
    """Runs the sync for the lifespan of the app (the first poll before it serves)."""
    sync = KeySync(verifier, redis, prefix, poll_s, url)
    verifier.builtin_keys_expected = True
    verifier.reload_builtin = sync.reload
    await sync.once()
    task = asyncio.create_task(sync.run(), name="auth-key-sync")
    try:
        yield sync
    finally:
        # The flag as well as the cancel: a cancel that lands inside a poll's Redis call was
        # seen swallowed there (the task went back to sleep, "cancelling", and the app's
        # shutdown waited on it forever). Bounded wait: shutdown never hangs on this poll.
        sync.stopped = True
        task.cancel()
        done, _ = await asyncio.wait({task}, timeout=sync.poll_s + 2.0)
        if not done:
            logger.warning("auth key sync did not stop in time; left to end at its next poll")
