"""Series in sync against the real PostgreSQL, Redis and broker (no Faust): finishing an episode
on one device puts the next one in continue watching and on another device's stream; the
watchlist holds a series like any title."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest

from agents.framework.context import AgentContext, ContextHolder
from agents.sync.handlers import answer_lookups, merge_progress, merge_watchlist, realtime_delivery
from agreements.read_model import reply_channel
from agreements.sync_read_model import read_document
from core.config import Settings
from gateway.realtime.events import position
from gateway.realtime.hub import RealtimeHub
from gateway.realtime.sse import EventStream, StreamRequest
from schemas.envelope import Envelope
from schemas.sync import (
    ProgressUpdate,
    SyncLookupRequested,
    SyncView,
    WatchlistUpdate,
    sync_channel,
)
from tests.integration.test_sync_agents import env, realtime, stamp

RUNTIME_MIN = 42


@pytest.fixture
async def ctx(settings: Settings, topics_created: None) -> AsyncIterator[AgentContext]:
    holder = ContextHolder(settings, source="test")
    yield (await holder.get()).for_agent("sync-series-test")
    await holder.close()


@pytest.fixture
def user() -> str:
    return f"series-{uuid.uuid4().hex[:10]}"


async def _content(ctx: AgentContext, cid: uuid.UUID, kind: str, title: str) -> None:
    await ctx.pool.execute(
        "INSERT INTO content (canonical_id, content_type, title, doc, source_updated_at, "
        "last_event_id) VALUES ($1, $2, $3, $4, now(), $5)",
        cid,
        kind,
        title,
        {"canonical_id": str(cid), "title": title, "runtime_minutes": RUNTIME_MIN},
        uuid.uuid4(),
    )


@pytest.fixture
async def series(ctx: AgentContext) -> AsyncIterator[dict[tuple[int, int], uuid.UUID]]:
    """A series as ingestion stores it (migration 0040): S1E1-2, S2E1-4, S3E1 and a special,
    S2E4's number listed after S3E1 in the table, to show order is not the table's."""
    series_id = uuid.uuid4()
    await _content(ctx, series_id, "series", "Next Episode Test")
    places = [(1, 1), (1, 2), (2, 1), (2, 2), (2, 3), (3, 1), (2, 4), (0, 1)]
    ids = {p: uuid.uuid4() for p in places}
    for (season, number), cid in ids.items():
        await _content(ctx, cid, "episode", f"S{season}E{number}")
        season_id = uuid.uuid5(series_id, str(season))
        await ctx.pool.execute(
            "INSERT INTO seasons (season_id, series_id, season_number) VALUES ($1, $2, $3) "
            "ON CONFLICT DO NOTHING",
            season_id,
            series_id,
            season,
        )
        await ctx.pool.execute(
            "INSERT INTO episodes (canonical_id, series_id, season_id, season_number, "
            "episode_number) VALUES ($1, $2, $3, $4, $5)",
            cid,
            series_id,
            season_id,
            season,
            number,
        )
    yield {**ids, (0, 0): series_id}
    await ctx.pool.execute(
        "DELETE FROM content WHERE canonical_id = ANY($1::uuid[])",
        [
            series_id,
            *ids.values(),
        ],
    )


def report(user: str, cid: uuid.UUID, pos: float, at: float, device: str) -> Envelope[Any]:
    update = ProgressUpdate(
        user_id=user,
        content_id=cid,
        position_seconds=pos,
        duration_seconds=100,
        state="stopped" if pos > 90 else "paused",
        timestamp=stamp(at),
        device_id=device,
    )
    return env(update, user)


async def continue_watching(ctx: AgentContext, user: str) -> list[dict[str, Any]]:
    raw = await read_document(ctx.redis, ctx.prefix, SyncView.progress, user)
    assert raw is not None
    items: list[dict[str, Any]] = orjson.loads(raw)["items"]
    return items


async def test_finishing_s2e3_on_the_phone_puts_s2e4_in_continue_watching_on_every_device(
    ctx: AgentContext, user: str, series: dict[tuple[int, int], uuid.UUID]
) -> None:
    series_id = series[(0, 0)]
    # The tablet listens on the user's sync channel, as a device's /stream does.
    hub = RealtimeHub(ctx.settings.redis.require_url(), ctx.prefix)
    since = await position(ctx.redis, ctx.prefix, user)
    request = StreamRequest(user, "tablet-1", frozenset({sync_channel(user)}), since)
    chunks = EventStream(hub, ctx.redis, ctx.prefix, request).__aiter__()
    try:
        assert (await anext(chunks)).startswith(b"retry:")
        assert b"event: ready\n" in await anext(chunks)

        # Earlier: S2E1 left half-watched on the TV, S2E2 finished.
        await merge_progress(ctx, [report(user, series[(2, 1)], 50, 1, "tv-1")])
        await merge_progress(ctx, [report(user, series[(2, 2)], 99, 2, "tv-1")])
        items = await continue_watching(ctx, user)
        assert [(i["content_id"], i["up_next"]) for i in items] == [(str(series[(2, 3)]), True)]

        # The phone finishes S2E3.
        await merge_progress(ctx, [report(user, series[(2, 3)], 96, 10, "phone-1")])
        items = await continue_watching(ctx, user)
        assert len(items) == 1, "the series is listed once"
        line = items[0]
        assert (line["content_id"], line["series_id"]) == (str(series[(2, 4)]), str(series_id))
        assert (line["season_number"], line["episode_number"], line["up_next"]) == (2, 4, True)
        assert (line["position_seconds"], line["duration_seconds"]) == (0, RUNTIME_MIN * 60)
        assert line["device_id"] == "phone-1"

        # The realtime messages the merges staged, delivered through the fan-out.
        events = await realtime(ctx, user)
        await realtime_delivery()(ctx, [env(e, user) for e in events])
        heard = []
        while len(heard) < 3:
            chunk = await asyncio.wait_for(anext(chunks), 5)
            if chunk.startswith(b"id:") or b"data: " in chunk:
                heard.append(orjson.loads(chunk.split(b"data: ")[1]))
        last = heard[-1]
        assert last["content_id"] == str(series[(2, 3)]) and last["device_id"] == "phone-1"
        assert last["up_next"] == {
            "series_id": str(series_id),
            "content_id": str(series[(2, 4)]),
            "season_number": 2,
            "episode_number": 4,
            "absolute_number": None,
        }
        assert heard[0]["up_next"] is None, "a half-watched episode announces no next one"
    finally:
        await chunks.aclose()
        await hub.close()

    # The TV finishes S2E4 (the season's end): S3E1, whose number the table lists first.
    await merge_progress(ctx, [report(user, series[(2, 4)], 97, 20, "tv-1")])
    assert [
        (i["season_number"], i["episode_number"]) for i in await continue_watching(ctx, user)
    ] == [(3, 1)]
    # A read-model miss rebuilds the same document from PostgreSQL.
    held = await continue_watching(ctx, user)
    await ctx.redis.delete(f"{ctx.prefix}:sync:progress:{user}")
    lookup = SyncLookupRequested(
        user_id=user, view="progress", reply_channel=reply_channel(ctx.prefix, uuid.uuid4().hex)
    )
    await answer_lookups(ctx, [env(lookup, user)])
    assert await continue_watching(ctx, user) == held
    # And the series' last episode finished: the series leaves continue watching.
    await merge_progress(ctx, [report(user, series[(3, 1)], 99, 30, "phone-1")])
    assert await continue_watching(ctx, user) == []


async def test_the_watchlist_holds_a_series(
    ctx: AgentContext, user: str, series: dict[tuple[int, int], uuid.UUID]
) -> None:
    series_id = series[(0, 0)]
    add = WatchlistUpdate(
        user_id=user,
        operation="add",
        content_id=series_id,
        unique_tag=uuid.uuid4(),
        timestamp=stamp(1),
        device_id="phone-1",
    )
    await merge_watchlist(ctx, [env(add, user)])
    raw = await read_document(ctx.redis, ctx.prefix, SyncView.watchlist, user)
    assert raw is not None
    assert [i["content_id"] for i in orjson.loads(raw)["items"]] == [str(series_id)]
