"""The read-model guard repairs what needs no human: a Redis that lost the read model, and a
rebuild that died midway (its state left at `rebuilding`), but never races a live rebuild."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest

from agents.framework.context import AgentContext, ContextHolder
from agents.readmodel.handlers import guard_read_model
from agents.readmodel.store import REBUILD_LOCK, read_state
from agents.titles.store import Versioned, upsert_contents
from agreements.read_model import STATE_READY, STATE_REBUILDING, document_key, state_key
from schemas.content import CanonicalContent
from tests.conftest import Isolated


@pytest.fixture
async def ctx(isolated: Isolated) -> AsyncIterator[AgentContext]:
    holder = ContextHolder(isolated.settings, source="test")
    yield await holder.get()
    await holder.close()


async def test_a_rebuild_that_died_midway_is_done_again_but_a_live_one_is_left_alone(
    ctx: AgentContext,
) -> None:
    docs = [
        CanonicalContent(
            canonical_id=uuid.uuid4(),
            content_type="movie",
            title=f"Guarded {i}",
            genres=["drama"],
            updated_at=datetime(2026, 1, 1, tzinfo=UTC),
        )
        for i in range(3)
    ]
    await upsert_contents(ctx.pool, [Versioned(d, uuid.uuid4()) for d in docs])
    await ctx.redis.set(state_key(ctx.prefix), STATE_REBUILDING)

    # Another process is rebuilding (it holds the lock): the guard waits its turn.
    async with ctx.pool.acquire() as other:
        await other.execute("SELECT pg_advisory_lock($1)", REBUILD_LOCK)
        try:
            assert await guard_read_model(ctx) == 0
            assert await read_state(ctx.redis, ctx.prefix) == STATE_REBUILDING
        finally:
            await other.execute("SELECT pg_advisory_unlock($1)", REBUILD_LOCK)

    # Nobody holds the lock and the state still says rebuilding: that rebuild died.
    assert await guard_read_model(ctx) == 3
    assert await read_state(ctx.redis, ctx.prefix) == STATE_READY
    keys = [document_key(ctx.prefix, d.canonical_id) for d in docs]
    assert await ctx.redis.exists(*keys) == 3
    assert await guard_read_model(ctx) == 0  # ready: nothing to do
