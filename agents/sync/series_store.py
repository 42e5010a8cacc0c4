"""PostgreSQL reads of the catalog's series for sync (the tables of migration 0040): which of a
user's titles are episodes, the episode lists of their series, and runtimes. Read-only: the
ingestion agents own these tables (agents/ingestion/series_store.py)."""

from __future__ import annotations

import uuid
from collections.abc import Collection, Mapping
from typing import Any

import asyncpg

from agents.sync.next_episode import Episode
from agents.sync.progress import Position
from agents.sync.store import position_of


def _episode(r: Mapping[str, Any]) -> Episode:
    return Episode(
        content_id=r["canonical_id"],
        series_id=r["series_id"],
        season_number=r["season_number"],
        episode_number=r["episode_number"],
        absolute_number=r["absolute_number"],
    )


async def episode_lists_of(
    conn: asyncpg.Connection, content_ids: Collection[uuid.UUID]
) -> dict[uuid.UUID, list[Episode]]:
    """The whole episode list of each series that any of `content_ids` is an episode of."""
    if not content_ids:
        return {}
    rows = await conn.fetch(
        """
        SELECT e.canonical_id, e.series_id, e.season_number, e.episode_number, e.absolute_number
        FROM episodes e
        WHERE e.series_id IN (SELECT series_id FROM episodes WHERE canonical_id = ANY($1::uuid[]))
        """,
        list(content_ids),
    )
    out: dict[uuid.UUID, list[Episode]] = {}
    for r in rows:
        out.setdefault(r["series_id"], []).append(_episode(r))
    return out


async def series_episodes(
    conn: asyncpg.Connection, series_ids: Collection[uuid.UUID]
) -> dict[uuid.UUID, list[Episode]]:
    if not series_ids:
        return {}
    rows = await conn.fetch(
        "SELECT canonical_id, series_id, season_number, episode_number, absolute_number "
        "FROM episodes "
        "WHERE series_id = ANY($1::uuid[])",
        list(series_ids),
    )
    out: dict[uuid.UUID, list[Episode]] = {}
    for r in rows:
        out.setdefault(r["series_id"], []).append(_episode(r))
    return out


async def episode_positions(
    conn: asyncpg.Connection, user_id: str
) -> list[tuple[Position, Episode]]:
    """Every position of the user in an episode, complete ones included: a finished episode is
    what moves its series on."""
    rows = await conn.fetch(
        """
        SELECT p.*, e.canonical_id, e.series_id, e.season_number, e.episode_number,
               e.absolute_number
        FROM sync_progress p JOIN episodes e ON e.canonical_id = p.content_id
        WHERE p.user_id = $1
        """,
        user_id,
    )
    return [(position_of(r), _episode(r)) for r in rows]


async def runtimes_s(
    conn: asyncpg.Connection, content_ids: Collection[uuid.UUID]
) -> dict[uuid.UUID, float]:
    """The catalog's runtime of each title that has one, in seconds."""
    if not content_ids:
        return {}
    rows = await conn.fetch(
        "SELECT canonical_id, (doc->>'runtime_minutes')::float8 AS minutes FROM content "
        "WHERE canonical_id = ANY($1::uuid[]) AND (doc->>'runtime_minutes')::float8 > 0",
        list(content_ids),
    )
    return {r["canonical_id"]: r["minutes"] * 60.0 for r in rows}
