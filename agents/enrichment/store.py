"""PostgreSQL reads and writes of enrichment: claiming due titles, and marking them done.

A title is due when it changed after its last enrichment (`enriched_version < updated_at`).
Two paths enrich: the agents on content.ingested / .updated and the periodic sweep (which also
runs as the worker starts, when a bulk load's events are still queued). Each claims a title's
version in `enrichment_claims` before embedding it; a claim is an upsert that only one
transaction can win, so the two paths (and several workers) never embed one version twice.
Marking is guarded by the version too: `enriched_version` only moves forward, so one version
is announced once even if a claim expired under a slow worker.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

import asyncpg

# Claims outlive a batch (100 embeddings take seconds), so a live worker's claims are rarely
# taken over; a dead worker's are free again within this, and the sweep (every 30 s) then
# enriches what its redelivered events could not claim. Should a slow batch outlive its claim
# anyway, the version check at write (_MARK) still announces each version once.
CLAIM_LEASE_S = 30.0
QUARANTINE_AGENT = "enrichment"  # the worker group, as quarantine entries are kept


def _due(agent: str) -> str:
    """A `content c` row is due and not quarantined at this version; `agent` is the query
    parameter holding QUARANTINE_AGENT."""
    return f"""
    (c.enriched_version IS NULL OR c.enriched_version < c.updated_at)
    AND NOT EXISTS (
        SELECT 1 FROM quarantine q
        WHERE q.agent = {agent} AND q.entity_id = c.canonical_id::text
          AND q.version = (extract(epoch FROM c.updated_at) * 1000000)::bigint::text)
    """


# Due, and not claimed at this version by a live claim.
# `doc` as text: a document that does not parse must fail for its own row (quarantined), not
# for the whole fetch.
_CLAIM = f"""
WITH due AS (
    SELECT c.canonical_id, c.updated_at, c.doc::text AS doc,
           (extract(epoch FROM c.updated_at) * 1000000)::bigint::text AS version_key
    FROM content c
    WHERE ($1::uuid[] IS NULL OR c.canonical_id = ANY($1::uuid[]))
      AND {_due("$5")}
      AND NOT EXISTS (
          SELECT 1 FROM enrichment_claims k
          WHERE k.canonical_id = c.canonical_id AND k.version >= c.updated_at
            AND k.claimed_until > now())
    ORDER BY c.updated_at
    LIMIT $2
), claimed AS (
    INSERT INTO enrichment_claims AS k (canonical_id, version, claimed_until, claimed_by)
    SELECT canonical_id, updated_at, now() + make_interval(secs => $3), $4 FROM due
    ON CONFLICT (canonical_id) DO UPDATE SET
        version = EXCLUDED.version, claimed_until = EXCLUDED.claimed_until,
        claimed_by = EXCLUDED.claimed_by
    WHERE k.version < EXCLUDED.version OR k.claimed_until <= now()
    RETURNING canonical_id, version
)
SELECT due.canonical_id, due.updated_at, due.doc, due.version_key
FROM due JOIN claimed ON claimed.canonical_id = due.canonical_id
                     AND claimed.version = due.updated_at
ORDER BY due.updated_at
"""
_COUNT_DUE = f"SELECT count(*) FROM content c WHERE {_due('$1')}"
_MARK = """
UPDATE content AS c SET data_quality_score = u.score, enriched_version = u.version,
                        enriched_at = now()
FROM unnest($1::uuid[], $2::real[], $3::timestamptz[]) AS u(id, score, version)
WHERE c.canonical_id = u.id AND c.updated_at = u.version
  AND (c.enriched_version IS NULL OR c.enriched_version < u.version)
RETURNING c.canonical_id
"""


async def claim(
    pool: asyncpg.Pool | asyncpg.Connection,
    owner: str,
    ids: Sequence[uuid.UUID] | None = None,
    limit: int | None = None,
) -> list[asyncpg.Record]:
    """Claim due titles (among `ids`, or any, the longest waiting first, up to `limit`):
    (canonical_id, updated_at, doc as JSON text, version_key) of each version this call won.
    `version_key` (microseconds since the epoch, as text) is what quarantine entries hold."""
    return await pool.fetch(
        _CLAIM,
        None if ids is None else list(ids),
        limit,
        CLAIM_LEASE_S,
        owner,
        QUARANTINE_AGENT,
    )


async def count_due(conn: asyncpg.Pool | asyncpg.Connection) -> int:
    """Titles due (claimed or not) and not quarantined: enrichment work not done yet, which
    `mgw up`'s drain waits for (an event is acknowledged once another path claimed its title)."""
    return int(await conn.fetchval(_COUNT_DUE, QUARANTINE_AGENT))


async def release_claims(
    conn: asyncpg.Pool | asyncpg.Connection, ids: Sequence[uuid.UUID], owner: str
) -> None:
    """Drop this owner's claims (done, quarantined, or given up on a transient failure)."""
    if ids:
        await conn.execute(
            "DELETE FROM enrichment_claims WHERE canonical_id = ANY($1::uuid[]) "
            "AND claimed_by = $2",
            list(ids),
            owner,
        )


async def mark_enriched(
    conn: asyncpg.Connection,
    ids: Sequence[uuid.UUID],
    scores: Sequence[float],
    versions: Sequence[datetime],
) -> set[uuid.UUID]:
    """Record each title's quality score for the version that was enriched; a title that
    changed meanwhile is left due (its own event brings it back), one already marked at this
    version is not marked (nor announced) again. Returns those marked."""
    rows = await conn.fetch(_MARK, list(ids), list(scores), list(versions))
    return {r["canonical_id"] for r in rows}
