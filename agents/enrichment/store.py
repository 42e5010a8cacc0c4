"""PostgreSQL reads and writes of enrichment: which titles are due, and marking them done.

A title is due when it changed after its last enrichment (`enriched_version < updated_at`).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

import asyncpg

_DUE = """
SELECT canonical_id, doc, updated_at FROM content
WHERE canonical_id = ANY($1::uuid[])
  AND (enriched_version IS NULL OR enriched_version < updated_at)
"""
_DUE_ANY = """
SELECT canonical_id, doc, updated_at FROM content
WHERE enriched_version IS NULL OR enriched_version < updated_at
ORDER BY updated_at LIMIT $1
"""
_MARK = """
UPDATE content AS c SET data_quality_score = u.score, enriched_version = u.version,
                        enriched_at = now()
FROM unnest($1::uuid[], $2::real[], $3::timestamptz[]) AS u(id, score, version)
WHERE c.canonical_id = u.id AND c.updated_at = u.version
RETURNING c.canonical_id
"""


async def due_among(pool: asyncpg.Pool, ids: Sequence[uuid.UUID]) -> list[asyncpg.Record]:
    """The titles among `ids` that are due, with their current document and version."""
    return await pool.fetch(_DUE, list(ids))


async def due_any(pool: asyncpg.Pool, limit: int) -> list[asyncpg.Record]:
    """Up to `limit` due titles, the longest waiting first."""
    return await pool.fetch(_DUE_ANY, limit)


async def mark_enriched(
    conn: asyncpg.Connection,
    ids: Sequence[uuid.UUID],
    scores: Sequence[float],
    versions: Sequence[datetime],
) -> set[uuid.UUID]:
    """Record each title's quality score for the version that was enriched; a title that
    changed meanwhile is left due (its own event brings it back). Returns those marked."""
    rows = await conn.fetch(_MARK, list(ids), list(scores), list(versions))
    return {r["canonical_id"] for r in rows}
