"""The profiles read model comes back after Redis lost it, against the real PostgreSQL and
Redis: the accounts agents' timer, as the worker runs it every interval.

Found by hand on `mgw up`: after the embedded Redis was emptied (docs/OPERATIONS.md, "Redis
lost or emptied: nothing to do"), every other read model came back within seconds, but the
account's profiles stayed empty until the hourly render: the parent saw no profiles, and a
kids TV (a token bound to its profile) was refused `unknown_profile` on every request."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest

from agents.accounts.handlers import TIMERS, apply_profiles
from agents.framework.context import AgentContext, ContextHolder
from agreements.profiles_read_model import profiles_key, read_profiles
from schemas.accounts import ProfileChanged
from schemas.envelope import wrap
from tests.conftest import Isolated

RENDER = next(t for t in TIMERS if t.name == "accounts-profiles-render")


@pytest.fixture
async def ctx(isolated: Isolated) -> AsyncIterator[AgentContext]:
    holder = ContextHolder(isolated.settings, source="test")
    yield (await holder.get()).for_agent("accounts-profiles")
    await holder.close()


async def test_profiles_lost_by_redis_are_rendered_again_within_the_guard_interval(
    ctx: AgentContext,
) -> None:
    user = f"parent-{uuid.uuid4().hex[:8]}"
    kid = ProfileChanged(
        user_id=user,
        profile_id="kid",
        name="Kid",
        kind="kids",
        limits={"content_rating_limit": "PG"},
        changed_by=user,
        changed_at=datetime.now(UTC),
    )
    await apply_profiles(ctx, [wrap(kid, key=user, source="test")])
    await RENDER.run(ctx)  # as at the worker's start
    assert [p.profile_id for p in await read_profiles(ctx.redis, ctx.prefix, user)] == ["kid"]

    # Redis restarted empty (it keeps nothing on disk): this prefix's keys are gone.
    keys = [k async for k in ctx.redis.scan_iter(match=f"{ctx.prefix}:*")]
    await ctx.redis.delete(*keys)
    assert await ctx.redis.exists(profiles_key(ctx.prefix, user)) == 0

    # The timer's next run (every 10 s, not hourly) renders the account again...
    assert RENDER.interval_s <= 10
    assert await RENDER.run(ctx) >= 1
    assert [p.profile_id for p in await read_profiles(ctx.redis, ctx.prefix, user)] == ["kid"]
    # ... and at rest its runs read one key and render nothing.
    assert await RENDER.run(ctx) == 0
