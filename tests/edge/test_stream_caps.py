"""The bounds of the realtime streams: per user across gateway processes (429), per process
(503), each with its metric; a stream ends with `expired` when its credential does."""

from __future__ import annotations

import asyncio
import time
import uuid

import httpx
import redis.asyncio as aioredis

from core.config import Settings
from core.observability.metrics import REALTIME_ENDED, REALTIME_OPEN, REALTIME_REFUSED
from gateway.realtime.lifecycle import CapRefused, StreamLeases, leases_key
from tests.auth.helpers import bearer, register_devices, user_token
from tests.edge.stream_clients import EventSourceLike, served_gateway
from tests.edge.test_stream_tickets import counter, with_realtime

SCOPES = ["devices:read", "watchlist:read"]


async def open_stream(base: str, http: httpx.AsyncClient, user: str, token: str) -> EventSourceLike:
    """A browser-shaped stream of `user` (by ticket); the caller checks its status."""
    answer = await http.post(
        f"/api/v1/users/{user}/stream/ticket", headers={**bearer(token), "X-Device-ID": "d-1"}
    )
    assert answer.status_code == 200, answer.text
    source = EventSourceLike(base + answer.json()["stream_url"])
    await source.open()
    return source


async def test_each_cap_crossing_is_answered_and_counted(
    settings: Settings, topics_created: None
) -> None:
    capped = with_realtime(settings, streams_per_user=2, streams_per_process=3)
    alice, bob, carol = (f"cap-{n}-{uuid.uuid4().hex[:6]}" for n in ("a", "b", "c"))
    tokens = {u: user_token(settings, subject=u, scopes=SCOPES) for u in (alice, bob, carol)}
    opened: list[EventSourceLike] = []
    async with served_gateway(capped) as (app, base), httpx.AsyncClient(base_url=base) as http:
        for user in (alice, bob, carol):
            await register_devices(http, settings, user, "d-1")
        try:
            for _ in range(2):
                source = await open_stream(base, http, alice, tokens[alice])
                opened.append(source)
                assert source.response is not None and source.response.status_code == 200
                await source.wait_event("ready")
            per_user = counter(REALTIME_REFUSED, "user")
            third = await open_stream(base, http, alice, tokens[alice])
            await third.close()
            assert third.response is not None and third.response.status_code == 429
            problem = third.response.json()
            assert problem["error"] == "too_many_streams" and problem["status"] == 429
            assert third.response.headers["retry-after"] == "5"
            assert counter(REALTIME_REFUSED, "user") == per_user + 1
            # With a bearer token the same.
            by_token = await http.get(
                f"/api/v1/users/{alice}/stream", headers=bearer(tokens[alice])
            )
            assert by_token.status_code == 429

            source = await open_stream(base, http, bob, tokens[bob])
            opened.append(source)
            await source.wait_event("ready")
            assert app.state.stream_leases.open == 3
            assert counter(REALTIME_OPEN, "stream") >= 3
            per_process = counter(REALTIME_REFUSED, "process")
            fourth = await open_stream(base, http, carol, tokens[carol])
            await fourth.close()
            assert fourth.response is not None and fourth.response.status_code == 503
            assert fourth.response.json()["error"] == "stream_capacity"
            assert fourth.response.headers["retry-after"] == "2"
            assert counter(REALTIME_REFUSED, "process") == per_process + 1

            # Closing a stream gives its slot back at once.
            await opened.pop(0).close()
            for _ in range(100):
                if app.state.stream_leases.open == 2:
                    break
                await asyncio.sleep(0.05)
            again = await open_stream(base, http, alice, tokens[alice])
            opened.append(again)
            assert again.response is not None and again.response.status_code == 200
        finally:
            for source in opened:
                await source.close()


async def test_the_user_cap_holds_across_processes_and_a_dead_ones_leases_lapse(
    settings: Settings, redis_client: aioredis.Redis
) -> None:
    """Two processes' lease sets on one Redis: together at most the cap; the leases of one
    that stops refreshing (killed) lapse after the lease TTL."""
    prefix, user = settings.redis.key_prefix, f"lease-{uuid.uuid4().hex[:6]}"
    first = StreamLeases(redis_client, prefix, per_user=2, per_process=100, lease_ttl_s=1.0)
    second = StreamLeases(redis_client, prefix, per_user=2, per_process=100, lease_ttl_s=1.0)
    far = time.time() + 3600
    try:
        dead = await first.acquire(user, "tv", "stream", far)
        kept = await second.acquire(user, "phone", "socket", far)
        try:
            await second.acquire(user, "web", "stream", far)
            raise AssertionError("a third lease across two processes was granted")
        except CapRefused as exc:
            assert (exc.status, exc.code) == (429, "too_many_streams")
        # `second` keeps refreshing (every third of the TTL); `first` is "killed": its task
        # stops and its lease is never released.
        await first.close()
        first._leases.clear()
        await asyncio.sleep(1.6)
        assert await redis_client.zscore(leases_key(prefix, user), kept.lease_id) is not None
        seconds, micros = await redis_client.time()
        now_ms = seconds * 1000 + micros // 1000
        lapsed_at = await redis_client.zscore(leases_key(prefix, user), dead.lease_id)
        assert lapsed_at is not None and lapsed_at < now_ms  # lapsed; dropped on the next open
        await second.acquire(user, "web", "stream", far)
    finally:
        await first.close()
        await second.close()


async def test_a_stream_ends_with_expired_when_its_token_does(
    settings: Settings, topics_created: None
) -> None:
    user = f"exp-{uuid.uuid4().hex[:6]}"
    ended_before = counter(REALTIME_ENDED, "expired")
    async with served_gateway(settings) as (app, base), httpx.AsyncClient(base_url=base) as http:
        await register_devices(http, settings, user, "d-1")
        for how in ("ticket", "token"):
            token = user_token(settings, subject=user, scopes=SCOPES, ttl_s=3)
            expires_at = int(time.time()) + 3
            if how == "ticket":
                source = await open_stream(base, http, user, token)
            else:
                source = await open_with_token(base, user, token)
            try:
                await source.wait_event("ready")
                expired = await source.wait_event("expired", wait_s=10)
                heard_at = time.time()
                assert expired.data["reason"] == "credential_expired"  # type: ignore[index]
                assert expired.event_id is None
                # At the token's exp, not before, and within a beat after it.
                assert expires_at - 0.05 <= heard_at <= expires_at + 1.0, (how, heard_at)
                assert await source.next_event(wait_s=5) is None  # then the stream ends
            finally:
                await source.close()
        assert counter(REALTIME_ENDED, "expired") >= ended_before + 2
        for _ in range(100):
            if app.state.stream_leases.open == 0:
                break
            await asyncio.sleep(0.05)
        assert app.state.stream_leases.open == 0


async def open_with_token(base: str, user: str, token: str) -> EventSourceLike:
    """A stream opened the way a fetch-based client does: with the Authorization header."""
    source = EventSourceLike(f"{base}/api/v1/users/{user}/stream")
    await source._stack.enter_async_context(source._client)
    request = source._client.build_request("GET", source._url, headers=bearer(token))
    source.response = await source._client.send(request, stream=True)
    source._stack.push_async_callback(source.response.aclose)
    assert source.response.status_code == 200
    source._lines = source.response.aiter_lines()
    return source
