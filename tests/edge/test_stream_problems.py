"""An event stream that ends on a failure says why with a `problem` event: the same object an
HTTP error has (the answer's status is long sent by then)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import orjson
import redis.asyncio as aioredis

from core.config import Settings
from core.embedded import free_port
from core.observability import correlation
from gateway.realtime.hub import RealtimeHub
from gateway.realtime.sse import EventStream, StreamRequest
from schemas.sync import sync_channel


def problem_of(chunk: bytes) -> dict[str, object]:
    assert chunk.startswith(b"event: problem\n"), chunk
    data = chunk.split(b"data: ", 1)[1].strip()
    return orjson.loads(data)  # type: ignore[no-any-return]


def request(user: str, last: str | None = None) -> StreamRequest:
    return StreamRequest(user, None, frozenset({sync_channel(user)}), last)


async def next_chunks(chunks: AsyncIterator[bytes], n: int) -> list[bytes]:
    return [await asyncio.wait_for(anext(chunks), 5) for _ in range(n)]


async def test_a_stream_ended_by_shutdown_sends_a_problem(
    settings: Settings, redis_client: aioredis.Redis
) -> None:
    prefix, user = settings.redis.key_prefix, f"sp-{uuid.uuid4().hex[:8]}"
    hub = RealtimeHub(settings.redis.require_url(), prefix)
    with correlation.bound("req-stream-1"):
        chunks = EventStream(hub, redis_client, prefix, request(user)).__aiter__()
        try:
            _retry, ready = await next_chunks(chunks, 2)
            assert b"event: ready\n" in ready
            await hub.close()
            (ended,) = await next_chunks(chunks, 1)
            problem = problem_of(ended)
            assert (problem["status"], problem["error"]) == (503, "service_unavailable")
            assert problem["type"] == "/problems/service_unavailable"
            assert problem["instance"] == f"/api/v1/users/{user}/stream"
            assert problem["request_id"] == "req-stream-1"
            assert await anext(chunks, None) is None  # and the stream ends
        finally:
            await chunks.aclose()
            await hub.close()


async def test_a_stream_that_loses_redis_sends_a_problem(settings: Settings) -> None:
    prefix, user = settings.redis.key_prefix, f"sp-{uuid.uuid4().hex[:8]}"
    hub = RealtimeHub(settings.redis.require_url(), prefix)
    # Nothing listens there: reading the user's stream fails as with a Redis gone away.
    dead = aioredis.from_url(f"redis://127.0.0.1:{free_port()}/0", socket_connect_timeout=0.5)
    chunks = EventStream(hub, dead, prefix, request(user)).__aiter__()
    try:
        _retry, ended = await next_chunks(chunks, 2)
        problem = problem_of(ended)
        assert (problem["status"], problem["error"]) == (503, "redis_unavailable")
        assert "Last-Event-ID" in str(problem["detail"])
    finally:
        await chunks.aclose()
        await hub.close()
        await dead.aclose()
