"""The Redis read model: refreshed on change, rebuilt after Redis loses it."""

from __future__ import annotations

import uuid

import httpx
import pytest
import redis.asyncio as aioredis

from agents.readmodel.store import read_state
from agreements.read_model import document_key
from tests.conftest import Isolated
from tests.helpers import run_cli, wait_for

pytestmark = pytest.mark.slow


async def test_redis_loss_is_rebuilt_from_postgres(spawn, isolated: Isolated, tmp_path) -> None:
    path = tmp_path / "catalog.jsonl"
    code, _, err = await run_cli(
        "sample-catalog", str(path), "--titles", "80", "--invalid", "0", env=isolated.env
    )
    assert code == 0, err
    spawn("worker", "ingestion", "readmodel", extra_env=isolated.env)
    code, _, err = await run_cli("ingest", str(path), env=isolated.env)
    assert code == 0, err
    pool, settings = isolated.pool, isolated.settings
    prefix = settings.redis.key_prefix
    redis = aioredis.from_url(settings.redis.require_url())
    try:

        async def all_documents() -> bool:
            ids = [r["canonical_id"] for r in await pool.fetch("SELECT canonical_id FROM content")]
            if not ids:
                return False
            found = await redis.exists(*(document_key(prefix, i) for i in ids))
            return found == len(ids)

        await wait_for(all_documents, timeout=60)
        # Redis restarts empty: every key of this deployment is gone, the state key too.
        keys = [k async for k in redis.scan_iter(match=f"{prefix}:*", count=1000)]
        await redis.delete(*keys)
        assert await read_state(redis, prefix) is None

        # The read-model guard notices and rebuilds from PostgreSQL, then marks it ready.
        await wait_for(all_documents, timeout=40)
        await wait_for(lambda: _is_ready(redis, prefix), timeout=20)

        # The manual command does the same, with progress, and ends ready.
        code, out, err = await run_cli("readmodel", "rebuild", env=isolated.env)
        assert code == 0, err
        titles = await pool.fetchval("SELECT count(*) FROM content")
        assert f"{titles} document(s) written" in out
        gateway = spawn("gateway", extra_env=isolated.env)
        some = await pool.fetchval("SELECT canonical_id FROM content LIMIT 1")
        async with httpx.AsyncClient(base_url=gateway.url) as http:
            assert (await http.get(f"/api/v1/content/{some}")).status_code == 200
            assert (await http.get(f"/api/v1/content/{uuid.uuid4()}")).status_code == 404
    finally:
        await redis.aclose()


async def _is_ready(redis: aioredis.Redis, prefix: str) -> bool:
    return await read_state(redis, prefix) == "ready"
