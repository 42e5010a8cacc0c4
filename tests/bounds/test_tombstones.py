"""A DELETE storm cannot grow a user's watchlist for good: tombstones and clears are compacted
after SYNC_TOMBSTONE_RETENTION_S (by the timer for titles left alone, by the merge for titles
it writes), empty titles lose their rows, what the list shows is what a replica that never
compacted shows, and redelivered operations still change nothing. Real PostgreSQL, Redis and
broker; the sync handlers without Faust."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from prometheus_client import REGISTRY

from agents.framework.context import AgentContext, ContextHolder
from agents.sync.clock import to_physical_us
from agents.sync.handlers import _load_view, compact_tombstones, merge_watchlist
from agents.sync.watchlist import WatchlistState, apply, items
from core.config import Settings
from schemas.envelope import Envelope, wrap
from schemas.sync import HLC, SyncView, WatchlistUpdate
from tests.helpers import catalog_title, catalog_titles

# Long enough that nothing expires while the test builds and merges its storm (a loaded
# machine takes seconds); `expired` then looks at the same rows with a retention of 1 ms.
RETENTION_S = 3600.0


@pytest.fixture
async def ctx(settings: Settings, topics_created: None) -> AsyncIterator[AgentContext]:
    sync = settings.sync.model_copy(update={"tombstone_retention_s": RETENTION_S})
    holder = ContextHolder(settings.model_copy(update={"sync": sync}), source="test")
    yield (await holder.get()).for_agent("sync-watchlist")
    await holder.close()


def expired(ctx: AgentContext) -> AgentContext:
    """The same worker, as it would be once the retention has passed."""
    sync = ctx.settings.sync.model_copy(update={"tombstone_retention_s": 0.001})
    return dataclasses.replace(ctx, settings=ctx.settings.model_copy(update={"sync": sync}))


def stamp(ago_s: float = 0.0) -> HLC:
    at = datetime.now(UTC) - timedelta(seconds=ago_s)
    return HLC(physical_us=to_physical_us(at), logical=0)


def env(update: WatchlistUpdate) -> Envelope[Any]:
    return wrap(update, key=update.user_id, source="test", correlation_id="storm")


def add(user: str, title: uuid.UUID, tag: uuid.UUID) -> Envelope[Any]:
    return env(
        WatchlistUpdate(
            user_id=user, operation="add", content_id=title, unique_tag=tag, timestamp=stamp()
        )
    )


def remove(user: str, title: uuid.UUID, tags: list[uuid.UUID], ago_s: float = 0.0) -> Envelope[Any]:
    return env(
        WatchlistUpdate(
            user_id=user,
            operation="remove",
            content_id=title,
            removed_tags=tags,
            timestamp=stamp(ago_s),
        )
    )


async def storage(ctx: AgentContext, user: str) -> tuple[int, int]:
    """(rows, tombstones) the user's watchlist holds in PostgreSQL."""
    row = await ctx.pool.fetchrow(
        """
        SELECT count(*) AS n_rows,
               coalesce(sum(CASE jsonb_typeof(state->'tombstones')
                   WHEN 'object' THEN (SELECT count(*) FROM jsonb_object_keys(state->'tombstones'))
                   ELSE jsonb_array_length(state->'tombstones') END), 0) AS n_tombstones
        FROM sync_watchlist WHERE user_id = $1
        """,
        user,
    )
    return int(row["n_rows"]), int(row["n_tombstones"])


async def shown(ctx: AgentContext, user: str) -> list[Any]:
    """The list as the read model renders it from PostgreSQL (its items, not its version)."""
    _, body = await _load_view(ctx, SyncView.watchlist, user)
    return list(orjson.loads(body)["items"])


def compacted() -> float:
    return REGISTRY.get_sample_value("mgw_sync_tombstones_compacted_total") or 0.0


async def test_a_delete_storm_is_compacted_and_the_list_is_unchanged(ctx: AgentContext) -> None:
    user = f"storm-{uuid.uuid4().hex[:10]}"
    kept, gone = await catalog_titles(ctx.settings, 2)
    kept_tag, gone_tag = uuid.uuid4(), uuid.uuid4()
    first = [add(user, kept, kept_tag), add(user, gone, gone_tag), remove(user, gone, [gone_tag])]
    # The storm: 100 removes of 50 made-up tags each on a title on the list, and 300 removes of
    # titles never added (each a clear that would otherwise be kept).
    storm = [remove(user, kept, [uuid.uuid4() for _ in range(50)]) for _ in range(100)]
    storm += [remove(user, uuid.uuid4(), []) for _ in range(300)]
    operations = first + storm
    for start in range(0, len(operations), 100):
        await merge_watchlist(ctx, operations[start : start + 100])
    assert await storage(ctx, user) == (302, 5001)
    before = await shown(ctx, user)
    assert [uuid.UUID(i["content_id"]) for i in before] == [kept]

    # Past the retention, and the rows left alone that long (their updated_at moved back).
    later = expired(ctx)
    await asyncio.sleep(0.01)
    await ctx.pool.execute(
        "UPDATE sync_watchlist SET updated_at = now() - interval '1 hour' WHERE user_id = $1", user
    )
    counted = compacted()
    for _ in range(50):  # other tests' old rows may come first in a batch
        await compact_tombstones(later)
        if await storage(ctx, user) == (1, 0):
            break
    assert await storage(ctx, user) == (1, 0)
    assert compacted() - counted >= 5001 + 300
    assert await shown(ctx, user) == before

    # The same as a replica that applied everything and never compacted.
    replica = WatchlistState(user_id=user)
    for operation in operations:
        apply(replica, operation.payload)
    assert [i.content_id for i in items(replica)] == [kept]

    # Redelivered operations (same event ids) change nothing, the storm and the adds alike.
    await merge_watchlist(later, [first[0], first[1], storm[0], storm[-1]])
    assert await storage(ctx, user) == (1, 0)
    assert await shown(ctx, user) == before


async def test_the_merge_compacts_what_it_writes(ctx: AgentContext) -> None:
    user = f"storm-{uuid.uuid4().hex[:10]}"
    title, tag = await catalog_title(ctx.settings), uuid.uuid4()
    await merge_watchlist(ctx, [add(user, title, tag)])
    counted = compacted()
    # Removes stamped before the retention (a client's own old stamps): kept by nobody.
    ago_s = 2 * RETENTION_S
    old = [remove(user, title, [uuid.uuid4() for _ in range(100)], ago_s) for _ in range(5)]
    old += [remove(user, uuid.uuid4(), [], ago_s) for _ in range(20)]
    await merge_watchlist(ctx, old)
    assert await storage(ctx, user) == (1, 0)
    assert compacted() - counted == 500 + 20
    # A fresh remove of the live tag still takes the title off.
    await merge_watchlist(ctx, [remove(user, title, [tag])])
    assert await storage(ctx, user) == (1, 1)
    assert await shown(ctx, user) == []
