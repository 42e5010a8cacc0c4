"""process-batch's television step: place episodes and season listings in their series,
with the loads and writes around the pure rules (series_plan.py, series.py; I/O in
series_store.py)."""

from __future__ import annotations

import uuid
from collections.abc import Mapping as MappingT
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg

from agents.ingestion import series_store, store
from agents.ingestion.mappings import ItemKey, Mapping
from agents.ingestion.normalize import NormalizedItem
from agents.ingestion.pipeline import Resolved
from agents.ingestion.series_plan import (
    ChildPlan,
    find_series,
    parked_rows,
    plan_children,
    release_keys,
    season_offers,
)
from schemas.content import CanonicalContent
from schemas.envelope import Envelope, encode


@dataclass(frozen=True)
class Television:
    plan: ChildPlan
    known_episodes: set[uuid.UUID]  # stored episodes of the series the batch touches


async def plan(
    conn: asyncpg.Connection,
    items: Sequence[NormalizedItem],
    resolved: Resolved,
    mappings: MappingT[ItemKey, Mapping],
) -> Television:
    """Find each child's series, load what the series hold, and place each child in it."""
    if not resolved.children or resolved.index is None:
        return Television(ChildPlan(), set())
    series_ids = {
        found.canonical_id
        for i in resolved.children
        if (found := find_series(items[i], resolved.index, mappings)) is not None
        and found.canonical_id is not None
    }
    # Two batches placing episodes into one series serialize: both would mint S1E1's id.
    await store.lock_titles(conn, [f"series:{sid}" for sid in series_ids])
    episodes = await series_store.load_episodes(conn, series_ids)
    maps = await series_store.load_season_maps(conn, series_ids)
    child = plan_children(items, resolved.children, mappings, resolved.index, episodes, maps)
    return Television(child, {e.canonical_id for e in episodes})


async def write(
    conn: asyncpg.Connection,
    items: Sequence[NormalizedItem],
    batch: Sequence[Envelope[Any]],
    child: ChildPlan,
    docs: MappingT[uuid.UUID, CanonicalContent],
    mappings: MappingT[ItemKey, Mapping],
) -> list[bytes]:
    """Write the relations and season offers, park the children whose series is unknown, and
    return the parked envelopes a series in `docs` (or a season listing) now releases."""
    await series_store.write_episodes(conn, child.episodes, child.season_maps)
    await series_store.record_season_listings(
        conn,
        [
            (
                (items[s.index].platform, items[s.index].platform_item_id),
                s.series_id,
                s.season_number,
            )
            for s in child.season_listings
        ],
    )
    for series_id, season, platform, offers in season_offers(items, child, mappings):
        await series_store.replace_season_offers(conn, series_id, season, platform, offers)
    # Taken before this batch parks its own: what it parks waits for a later series.
    released = await series_store.take_pending_episodes(
        conn, release_keys(docs.values(), items, child)
    )
    await series_store.park_episodes(
        conn,
        [
            (key, clock, keys, encode(batch[i]))
            for i, (key, clock, keys) in zip(child.parked, parked_rows(items, child), strict=True)
        ],
    )
    return released
