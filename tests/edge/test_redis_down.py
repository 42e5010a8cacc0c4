"""Redis away while the gateway serves reads: 503 with Retry-After, never a 500."""

from __future__ import annotations

import uuid

import redis.asyncio as aioredis

from core.config import Settings
from core.embedded import free_port
from tests.auth.helpers import running_gateway


async def test_a_read_while_redis_is_down_is_503_with_retry_after(settings: Settings) -> None:
    async with running_gateway(settings) as (app, http):
        live = app.state.redis
        # Nothing listens there: the read model's reads fail the way a dead Redis fails.
        app.state.redis = aioredis.from_url(f"redis://127.0.0.1:{free_port()}/0")
        try:
            resp = await http.get(f"/api/v1/content/{uuid.uuid4()}")
        finally:
            await app.state.redis.aclose()
            app.state.redis = live
    assert resp.status_code == 503, resp.text
    assert resp.json()["error"] == "redis_unavailable"
    assert int(resp.headers["Retry-After"]) >= 1
