"""PostgreSQL writes for the canonical catalog."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

import asyncpg

from schemas.content import CanonicalContent

_UPSERT = """
INSERT INTO content AS c
    (canonical_id, content_type, title, release_year, doc, source_updated_at, last_event_id)
SELECT * FROM unnest(
    $1::uuid[], $2::text[], $3::text[], $4::int[], $5::jsonb[], $6::timestamptz[], $7::uuid[]
)
ON CONFLICT (canonical_id) DO UPDATE SET
    content_type      = EXCLUDED.content_type,
    title             = EXCLUDED.title,
    release_year      = EXCLUDED.release_year,
    doc               = EXCLUDED.doc,
    source_updated_at = EXCLUDED.source_updated_at,
    last_event_id     = EXCLUDED.last_event_id,
    updated_at        = now()
WHERE c.source_updated_at < EXCLUDED.source_updated_at
RETURNING canonical_id, (xmax = 0) AS inserted
"""


@dataclass(frozen=True)
class Versioned:
    content: CanonicalContent
    event_id: uuid.UUID


@dataclass(frozen=True)
class UpsertOutcome:
    inserted: list[uuid.UUID]
    updated: list[uuid.UUID]
    unchanged: int


def newest_per_title(items: Sequence[Versioned]) -> list[Versioned]:
    """One version per title, the newest by the producer's clock (ties: the later event)."""
    best: dict[uuid.UUID, Versioned] = {}
    for item in items:
        cid = item.content.canonical_id
        held = best.get(cid)
        if held is None or item.content.updated_at >= held.content.updated_at:
            best[cid] = item
    return list(best.values())


async def upsert_contents(
    conn: asyncpg.Connection | asyncpg.Pool, items: Sequence[Versioned]
) -> UpsertOutcome:
    """Insert new titles, replace older versions, leave equal or newer ones untouched."""
    rows = newest_per_title(items)
    if not rows:
        return UpsertOutcome([], [], 0)
    result = await conn.fetch(
        _UPSERT,
        [r.content.canonical_id for r in rows],
        [r.content.content_type.value for r in rows],
        [r.content.title for r in rows],
        [r.content.release_year for r in rows],
        [r.content.model_dump(mode="json") for r in rows],
        [r.content.updated_at for r in rows],
        [r.event_id for r in rows],
    )
    inserted = [r["canonical_id"] for r in result if r["inserted"]]
    updated = [r["canonical_id"] for r in result if not r["inserted"]]
    return UpsertOutcome(inserted, updated, len(items) - len(result))


async def fetch_content(
    conn: asyncpg.Connection | asyncpg.Pool, canonical_id: uuid.UUID
) -> CanonicalContent | None:
    row = await conn.fetchrow("SELECT doc FROM content WHERE canonical_id = $1", canonical_id)
    return CanonicalContent.model_validate(row["doc"]) if row else None
