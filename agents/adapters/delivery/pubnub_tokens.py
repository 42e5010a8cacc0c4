"""Revoking the PubNub tokens of removed devices (the SDK's revoke_token, PAM v3), once their
removal is durable in PostgreSQL; the gateway recorded each token it granted in Redis
(agreements/realtime_tokens.py).

Idempotent: a token is forgotten only once PubNub revoked it (or said it is no token to revoke:
revoked before, expired), so a redelivered removal revokes what is left and nothing twice. A
transient PubNub failure fails the batch (the agent loop retries it); a permanent refusal (token
revocation disabled on the keyset) is logged and counted, and the tokens stay on record, so the
removal itself is not held up: they end at their TTL.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import redis.asyncio as aioredis
from loguru import logger

from agreements import realtime_tokens
from agreements.pubnub_access import AccessRefused, PubNubAccess
from core.config import PubNubSettings
from core.observability.metrics import REALTIME_TOKENS


class TokenRevoker:
    """Revokes removed devices' tokens; does nothing without Access Manager (no tokens)."""

    def __init__(self, settings: PubNubSettings, redis: aioredis.Redis, prefix: str) -> None:
        self._access = PubNubAccess(settings, "sync") if settings.access_manager else None
        self._redis = redis
        self._prefix = prefix

    async def revoke_devices(self, devices: Sequence[tuple[str, str]]) -> int:
        """Revoke every live token of these (user, device) pairs; how many were revoked."""
        if self._access is None:
            return 0
        revoked = 0
        for user_id, device_id in devices:
            tokens = await realtime_tokens.live(
                self._redis, self._prefix, user_id, device_id, time.time()
            )
            done = []
            for token in tokens:
                try:
                    if await self._access.revoke(token):
                        revoked += 1
                except AccessRefused as exc:
                    REALTIME_TOKENS.labels(outcome="revoke_refused").inc()
                    logger.error(
                        "PubNub refused to revoke a token of device {} of {} (is token "
                        "revocation enabled on the keyset?): {}; it ends at its TTL",
                        device_id,
                        user_id,
                        exc,
                    )
                    continue
                done.append(token)
            await realtime_tokens.forget(self._redis, self._prefix, user_id, device_id, done)
            if done:
                logger.info(
                    "revoked {} realtime token(s) of removed device {} of {}",
                    len(done),
                    device_id,
                    user_id,
                )
        REALTIME_TOKENS.labels(outcome="revoked").inc(revoked)
        return revoked

    async def close(self) -> None:
        if self._access is not None:
            await self._access.close()
