"""Rate limits: the window rules as plain functions, then on the session's Redis through the
gateway app, shared by two instances, and across a Redis outage (a throw-away Redis we kill)."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import redis.asyncio as aioredis

from core.config import Settings
from core.embedded import start_redis
from gateway.auth.key_store import KeyStore
from gateway.middleware.rate_limit import (
    TIER_LIMITS,
    Decision,
    Limits,
    LocalWindows,
    RateLimiter,
    WindowState,
    counter_keys,
    decide,
    is_exempt,
)
from tests.auth.helpers import bearer, running_gateway, user_token
from tests.helpers import wait_for

WHOAMI = "/api/v1/auth/whoami"


# --- the rules, without services ------------------------------------------------------------


def test_tier_numbers_are_the_domain_ones() -> None:
    assert {str(t): (v.per_second, v.per_minute) for t, v in TIER_LIMITS.items()} == {
        "anonymous": (5, 100),
        "free": (10, 200),
        "pro": (50, 1000),
        "enterprise": (200, 5000),
    }


def test_decide_reports_the_tighter_window() -> None:
    second = WindowState(limit=10, count=3, reset_ms=400)
    minute = WindowState(limit=200, count=195, reset_ms=30_000)
    assert decide(True, [second, minute]) == Decision(True, 200, 5, 30)
    fresh_minute = WindowState(limit=200, count=3, reset_ms=59_000)
    assert decide(True, [second, fresh_minute]) == Decision(True, 10, 7, 1)


def test_decide_refused_waits_for_the_last_full_window() -> None:
    full_second = WindowState(limit=10, count=10, reset_ms=250)
    open_minute = WindowState(limit=200, count=50, reset_ms=40_000)
    assert decide(False, [full_second, open_minute]) == Decision(False, 10, 0, 1, 1)
    full_minute = WindowState(limit=200, count=200, reset_ms=40_001)
    assert decide(False, [full_second, full_minute]) == Decision(False, 200, 0, 41, 41)


def test_local_windows() -> None:
    local = LocalWindows()
    limits = Limits(per_second=3, per_minute=5)
    t = 1000.0
    results = [local.hit("a", limits, t + i * 0.01) for i in range(4)]
    assert [r.allowed for r in results] == [True, True, True, False]
    assert [r.remaining for r in results] == [2, 1, 0, 0]
    assert results[3].retry_after_s == 1
    # Another caller has buckets of its own.
    assert local.hit("b", limits, t).allowed
    # The second window reset; the refused request was not counted, so 3 of 5 are used.
    later = [local.hit("a", limits, t + 1.5 + i * 0.01) for i in range(3)]
    assert [r.allowed for r in later] == [True, True, False]
    assert later[2].limit == 5 and later[2].retry_after_s == 59
    # And the minute window resets too.
    assert local.hit("a", limits, t + 60.5).allowed


def test_local_windows_forget_expired_callers() -> None:
    local = LocalWindows()
    for i in range(LocalWindows.PRUNE_EVERY - 1):
        local.hit(f"caller-{i}", Limits(1, 1), 0.0)
    local.hit("last", Limits(1, 1), 120.0)
    assert len(local._counters) == 2  # only "last", both windows


def test_counter_keys_share_a_cluster_slot() -> None:
    keys = counter_keys("pfx", "user:{evil}", Limits(1, 1))
    assert keys == ["pfx:ratelimit:{user:%7Bevil%7D}:1s", "pfx:ratelimit:{user:%7Bevil%7D}:1m"]


def test_exempt_paths() -> None:
    assert all(is_exempt(p) for p in ("/health/live", "/health/ready", "/metrics", "/docs"))
    assert not any(is_exempt(p) for p in ("/api/v1/content", "/healthz", "/"))


# --- on the session's Redis -----------------------------------------------------------------


async def test_script_counts_both_windows_atomically(
    settings: Settings, redis_client: aioredis.Redis
) -> None:
    limiter = RateLimiter(lambda: redis_client, settings.redis.key_prefix)
    identity = f"user:{uuid.uuid4().hex}"
    limits = Limits(per_second=100, per_minute=3)
    decisions = [await limiter.hit(identity, limits) for _ in range(5)]
    assert [d.allowed for d in decisions] == [True, True, True, False, False]
    refused = decisions[3]
    assert refused.limit == 3 and 55 <= refused.retry_after_s <= 60
    second_key, minute_key = counter_keys(settings.redis.key_prefix, identity, limits)
    # Refused requests were not counted in either window.
    assert int(await redis_client.get(minute_key)) == 3
    assert 0 < await redis_client.pttl(minute_key) <= 60_000
    assert await redis_client.pttl(second_key) <= 1000
    assert not limiter.using_fallback


async def test_per_second_limit_gives_429_with_headers(
    settings: Settings, topics_created: None
) -> None:
    headers = bearer(user_token(settings, scopes=[], tier="free"))
    async with running_gateway(settings) as (_, client):
        first = await client.get(WHOAMI, headers=headers)
        assert first.status_code == 200
        assert first.headers["X-RateLimit-Limit"] == "10"
        assert first.headers["X-RateLimit-Remaining"] == "9"
        assert int(first.headers["X-RateLimit-Reset"]) == 1
        # Ten more at once: nine fit in the second, the last is refused.
        rest = await asyncio.gather(*(client.get(WHOAMI, headers=headers) for _ in range(10)))
    statuses = sorted(r.status_code for r in rest)
    assert statuses == [200] * 9 + [429]
    limited = next(r for r in rest if r.status_code == 429)
    assert int(limited.headers["Retry-After"]) >= 1
    assert limited.headers["X-RateLimit-Limit"] == "10"
    assert limited.headers["X-RateLimit-Remaining"] == "0"
    body = limited.json()
    assert body["error"] == "rate_limited" and body["request_id"]
    remaining = sorted(
        int(r.headers["X-RateLimit-Remaining"]) for r in rest if r.status_code == 200
    )
    assert remaining == list(range(9))


async def test_anonymous_callers_are_limited_by_address(
    settings: Settings, topics_created: None
) -> None:
    async with running_gateway(settings) as (_, client):
        replies = await asyncio.gather(*(client.get(WHOAMI) for _ in range(6)))
    # Counted (then refused 401 by the route) up to the anonymous 5/s; then 429.
    assert sorted(r.status_code for r in replies) == [401] * 5 + [429]
    assert all(r.headers["X-RateLimit-Limit"] == "5" for r in replies)


async def test_two_instances_share_the_count(settings: Settings, topics_created: None) -> None:
    headers = bearer(user_token(settings, scopes=[], tier="free"))
    async with (
        running_gateway(settings) as (_, one),
        running_gateway(settings) as (_, two),
    ):
        replies = await asyncio.gather(*(c.get(WHOAMI, headers=headers) for c in [one, two] * 6))
    by_instance = {
        name: [r.status_code for r in replies[i::2]] for i, name in enumerate(["one", "two"])
    }
    assert sorted(s for codes in by_instance.values() for s in codes) == [200] * 10 + [429] * 2
    # Both instances served some: the count, not the instance, decided.
    assert all(200 in codes for codes in by_instance.values())


# --- Redis goes away ------------------------------------------------------------------------


async def test_redis_outage_falls_back_to_local_limits_and_recovers(
    settings: Settings, topics_created: None, tmp_path: Path, log_messages: list[str]
) -> None:
    redis_service = start_redis(tmp_path / "redis")
    port = redis_service.port
    local = settings.model_copy(
        update={
            "redis": settings.redis.model_copy(update={"url": redis_service.url}),
            "rate_limit": settings.rate_limit.model_copy(update={"redis_retry_s": 0.2}),
        }
    )
    prefix = local.redis.key_prefix
    restarted = None
    try:
        async with KeyStore.open(local) as store:
            _, api_key = await store.create("outage-producer", ["content:read"])
        async with running_gateway(local) as (app, client):
            throwaway = aioredis.from_url(redis_service.url)
            user = bearer(user_token(local, scopes=[], tier="free"))
            assert (await client.get(WHOAMI, headers=user)).status_code == 200
            assert (await client.get(WHOAMI, headers={"X-API-Key": api_key})).status_code == 200
            assert [k async for k in throwaway.scan_iter(match=f"{prefix}:ratelimit:*")]
            await throwaway.aclose()

            assert redis_service.process is not None
            redis_service.process.kill()
            redis_service.process.wait()

            # A caller new to this process: the local limiter applies the same 10/s.
            other = bearer(user_token(local, scopes=[], tier="free"))
            replies = await asyncio.gather(*(client.get(WHOAMI, headers=other) for _ in range(11)))
            assert sorted(r.status_code for r in replies) == [200] * 10 + [429]
            limited = next(r for r in replies if r.status_code == 429)
            assert int(limited.headers["Retry-After"]) >= 1
            assert app.state.rate_limiter.using_fallback
            # API keys live in Redis: they cannot be checked now, and the caller is told so.
            unchecked = await client.get(WHOAMI, headers={"X-API-Key": api_key})
            assert unchecked.status_code == 503 and unchecked.json()["error"] == "auth_unavailable"
            assert int(unchecked.headers["Retry-After"]) >= 1
            # Tokens go on working; one warning for the whole outage.
            await asyncio.sleep(0.3)  # past the retry interval: Redis is tried (and fails) again
            for _ in range(3):
                assert (await client.get(WHOAMI, headers=user)).status_code in (200, 429)
            warnings = [m for m in log_messages if m.startswith("rate limits: Redis unreachable")]
            assert len(warnings) == 1, warnings

            restarted = start_redis(tmp_path / "redis2", port=port)

            async def back_on_redis() -> bool:
                await client.get(WHOAMI, headers=user)
                return not app.state.rate_limiter.using_fallback

            await wait_for(back_on_redis, timeout=10, interval=0.1)
            assert any(m.startswith("rate limits: Redis is back") for m in log_messages)
            fresh = aioredis.from_url(restarted.url)
            try:
                assert [k async for k in fresh.scan_iter(match=f"{prefix}:ratelimit:*")]
            finally:
                await fresh.aclose()
    finally:
        redis_service.stop()
        if restarted is not None:
            restarted.stop()


async def test_rate_limiting_can_be_switched_off(settings: Settings, topics_created: None) -> None:
    off = settings.model_copy(
        update={"rate_limit": settings.rate_limit.model_copy(update={"enabled": False})}
    )
    async with running_gateway(off) as (_, client):
        replies = await asyncio.gather(*(client.get(WHOAMI) for _ in range(8)))
    assert {r.status_code for r in replies} == {401}
    assert all("X-RateLimit-Limit" not in r.headers for r in replies)
