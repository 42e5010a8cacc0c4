"""The gateway's auth key sync (gateway/auth/key_sync.py) against the real Redis: a revocation
announced by the auth agents (agreements/auth_state.py) is in force at once, although the
process no longer polls twice a second; while it cannot subscribe, it polls as before."""

from __future__ import annotations

import asyncio
import time
import uuid

import redis.asyncio as aioredis

from agreements.auth_state import deny
from gateway.auth.key_sync import key_sync
from gateway.auth.tokens import TokenVerifier
from tests.conftest import SESSION


def _verifier() -> TokenVerifier:
    return TokenVerifier(issuer="mgw", audience="mgw", hs256_secret="x" * 32)


async def _denied_within(verifier: TokenVerifier, token_id: str, seconds: float) -> float:
    began = time.monotonic()
    while token_id not in verifier.denied:
        if time.monotonic() - began > seconds:
            raise AssertionError(f"{token_id} not denied within {seconds} s")
        await asyncio.sleep(0.01)
    return time.monotonic() - began


async def test_an_announced_revocation_is_in_force_at_once_without_polling(
    redis_client: aioredis.Redis, redis_url: str
) -> None:
    prefix = f"mgwtest-{SESSION}-keysync-{uuid.uuid4().hex[:8]}"
    verifier = _verifier()
    # Polls far apart: only the announcement can bring the revocation in time.
    async with key_sync(verifier, redis_client, prefix, poll_s=30.0, url=redis_url) as sync:
        for _ in range(500):
            if sync.subscribed:
                break
            await asyncio.sleep(0.01)
        assert sync.subscribed
        await deny(redis_client, prefix, {"jti-1": time.time() + 600})
        assert await _denied_within(verifier, "jti-1", 2.0) < 2.0
        stopping = time.monotonic()
    # Stopping does not wait for the next announcement or poll.
    assert time.monotonic() - stopping < 2.0


async def test_without_a_subscription_it_polls_every_poll_interval(
    redis_client: aioredis.Redis,
) -> None:
    prefix = f"mgwtest-{SESSION}-keysync-{uuid.uuid4().hex[:8]}"
    verifier = _verifier()
    # Nothing listens on port 1: the subscription fails, the poll carries the revocation.
    async with key_sync(
        verifier, redis_client, prefix, poll_s=0.2, url="redis://127.0.0.1:1/0"
    ) as sync:
        await deny(redis_client, prefix, {"jti-2": time.time() + 600})
        await _denied_within(verifier, "jti-2", 3.0)
        assert not sync.subscribed
