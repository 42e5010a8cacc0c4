"""PostgreSQL reads and writes of the canonical catalog: the titles (`content`), their offers
as rows (`platform_availability`, what the expiry check reads), and which platforms feed each
title (read from ingestion's `entity_mappings`). Both writers of titles use it: the
content-store (agents/titles/handlers.py) and the ingestion pipeline (agents/ingestion/)."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from agents.ingestion.availability import AvailabilityDiff, AvailabilityRow, Slot, ended_at
from agents.titles.names import normalize_title
from agents.titles.versions import newest_per_key
from schemas.content import CanonicalContent

_UPSERT = """
INSERT INTO content AS c
    (canonical_id, content_type, title, release_year, doc, source_updated_at, last_event_id,
     normalized_title, title_words, eidr, imdb_id, tmdb_id)
SELECT u.id, u.type, u.title, u.year, u.doc::jsonb, u.version, u.event, u.norm,
       string_to_array(u.norm, ' '), u.eidr, u.imdb, u.tmdb
FROM unnest(
    $1::uuid[], $2::text[], $3::text[], $4::int[], $5::text[], $6::timestamptz[], $7::uuid[],
    $8::text[], $9::text[], $10::text[], $11::text[]
) AS u(id, type, title, year, doc, version, event, norm, eidr, imdb, tmdb)
ON CONFLICT (canonical_id) DO UPDATE SET
    content_type      = EXCLUDED.content_type,
    title             = EXCLUDED.title,
    release_year      = EXCLUDED.release_year,
    doc               = EXCLUDED.doc,
    source_updated_at = EXCLUDED.source_updated_at,
    last_event_id     = EXCLUDED.last_event_id,
    normalized_title  = EXCLUDED.normalized_title,
    title_words       = EXCLUDED.title_words,
    eidr              = EXCLUDED.eidr,
    imdb_id           = EXCLUDED.imdb_id,
    tmdb_id           = EXCLUDED.tmdb_id,
    updated_at        = now()
WHERE c.source_updated_at < EXCLUDED.source_updated_at
   OR (c.source_updated_at = EXCLUDED.source_updated_at AND c.doc <> EXCLUDED.doc
       AND $12::bool)
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
    """One version per title, the newest by the producer's clock (ties: the first, as the
    upsert's guard keeps across batches: agents/titles/versions.py)."""
    return list(
        newest_per_key(
            items, key=lambda v: v.content.canonical_id, clock=lambda v: v.content.updated_at
        ).values()
    )


async def upsert_contents(
    conn: asyncpg.Connection | asyncpg.Pool,
    items: Sequence[Versioned],
    same_version_merges: bool = False,
) -> UpsertOutcome:
    """Insert new titles, replace older versions, leave equal or newer ones untouched.

    `same_version_merges`: a merged record (several platforms folded into one title) can change
    while its newest source clock stays the same; the pipeline then replaces on content change.
    """
    rows = newest_per_title(items)
    if not rows:
        return UpsertOutcome([], [], 0)
    contents = [r.content for r in rows]
    normalized = [normalize_title(c.title) for c in contents]
    result = await conn.fetch(
        _UPSERT,
        [c.canonical_id for c in contents],
        [c.content_type.value for c in contents],
        [c.title for c in contents],
        [c.release_year for c in contents],
        # JSON text from pydantic's serializer, parsed by PostgreSQL: no dict in between.
        [c.model_dump_json() for c in contents],
        [c.updated_at for c in contents],
        [r.event_id for r in rows],
        normalized,
        [c.external_ids.eidr for c in contents],
        [c.external_ids.imdb for c in contents],
        [c.external_ids.tmdb for c in contents],
        same_version_merges,
    )
    inserted = [r["canonical_id"] for r in result if r["inserted"]]
    updated = [r["canonical_id"] for r in result if not r["inserted"]]
    return UpsertOutcome(inserted, updated, len(items) - len(result))


async def fetch_contents(
    conn: asyncpg.Connection | asyncpg.Pool, ids: Iterable[uuid.UUID], lock: bool = False
) -> dict[uuid.UUID, CanonicalContent]:
    """Current records of `ids`; `lock` holds their rows until the transaction ends."""
    query = "SELECT canonical_id, doc FROM content WHERE canonical_id = ANY($1::uuid[])"
    if lock:
        query += " ORDER BY canonical_id FOR UPDATE"
    rows = await conn.fetch(query, list(ids))
    return {r["canonical_id"]: CanonicalContent.model_validate(r["doc"]) for r in rows}


async def fetch_content(
    conn: asyncpg.Connection | asyncpg.Pool, canonical_id: uuid.UUID
) -> CanonicalContent | None:
    return (await fetch_contents(conn, [canonical_id])).get(canonical_id)


async def fed_platforms(
    conn: asyncpg.Connection, ids: Iterable[uuid.UUID]
) -> dict[uuid.UUID, set[str]]:
    """The platforms feeding each title: those with a platform item mapped to it."""
    rows = await conn.fetch(
        "SELECT DISTINCT canonical_id, platform FROM entity_mappings "
        "WHERE canonical_id = ANY($1::uuid[])",
        sorted(set(ids)),
    )
    out: dict[uuid.UUID, set[str]] = {}
    for r in rows:
        out.setdefault(r["canonical_id"], set()).add(r["platform"])
    return out


def _slot_rows(content_id: uuid.UUID, slots: Iterable[Slot]) -> list[AvailabilityRow]:
    return [s.of(content_id) for s in slots]


async def apply_availability(
    conn: asyncpg.Connection, content_id: uuid.UUID, diff: AvailabilityDiff, now: datetime
) -> None:
    """Write one platform's diff: upsert what appeared or changed, expire what left (now)."""
    await apply_availability_diffs(conn, [(content_id, diff)], now)


async def apply_availability_diffs(
    conn: asyncpg.Connection,
    diffs: Iterable[tuple[uuid.UUID, AvailabilityDiff]],
    now: datetime,
) -> None:
    """Write many diffs in two statements (a round trip per diff was most of a batch's wait).

    Each (title, platform) diff touches its own rows, so one statement may carry them all.
    """
    current: list[AvailabilityRow] = []
    expired: list[AvailabilityRow] = []
    for content_id, diff in diffs:
        current += _slot_rows(content_id, [*diff.appeared, *(new for _, new in diff.changed)])
        expired += _slot_rows(content_id, diff.expired)
    if current:
        await conn.execute(
            """
            INSERT INTO platform_availability AS a
                (canonical_id, platform, region, availability_type, price_cents, currency,
                 deep_link, web_fallback, available_from, expires_at)
            SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::int[],
                                 $6::text[], $7::text[], $8::text[], $9::timestamptz[],
                                 $10::timestamptz[])
            ON CONFLICT (canonical_id, platform, region, availability_type) DO UPDATE SET
                price_cents = EXCLUDED.price_cents, currency = EXCLUDED.currency,
                deep_link = EXCLUDED.deep_link, web_fallback = EXCLUDED.web_fallback,
                available_from = EXCLUDED.available_from, expires_at = EXCLUDED.expires_at,
                updated_at = now()
            """,
            [r.content_id for r in current],
            [r.platform for r in current],
            [r.region for r in current],
            [r.availability_type.value for r in current],
            [r.price_cents for r in current],
            [r.currency for r in current],
            [r.deep_link for r in current],
            [r.web_fallback for r in current],
            [r.available_from for r in current],
            [r.expires_at for r in current],
        )
    if expired:
        await conn.execute(
            """
            UPDATE platform_availability AS a SET expires_at = e.ended, updated_at = now()
            FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::timestamptz[])
                AS e(c, p, r, t, ended)
            WHERE a.canonical_id = e.c AND a.platform = e.p AND a.region = e.r
              AND a.availability_type = e.t AND a.expires_at IS DISTINCT FROM e.ended
            """,
            [r.content_id for r in expired],
            [r.platform for r in expired],
            [r.region for r in expired],
            [r.availability_type.value for r in expired],
            [ended_at(r.expires_at, now) for r in expired],
        )
