"""PostgreSQL reads and writes of the ingestion pipeline: mappings, candidates, parked
availability updates, expiry notices. A title's row and its offers' rows are written through
agents/titles/store.py, which the content-store writes them with too."""

from __future__ import annotations

import uuid
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

import asyncpg
import orjson

from agents.ingestion.availability import SAME_EXPIRY, AvailabilityRow, ExpiryNotice
from agents.ingestion.mappings import ItemKey, Mapping, MappingRow
from agents.ingestion.pipeline import Plan
from agents.ingestion.resolution import KnownTitle, LookupKeys, normalized_originals
from agents.ingestion.title_match import people
from agents.titles.names import normalize_title, title_words
from agents.titles.store import Versioned, apply_availability_diffs, upsert_contents
from agreements.catalog_warnings import ItemWarning, parse_warnings
from schemas.content import (
    AvailabilityType,
    CanonicalContent,
    ContentExpiring,
    ContentType,
    ExternalIds,
)


async def lock_titles(conn: asyncpg.Connection, keys: Iterable[str]) -> None:
    """Serialize concurrent batches that could create the same title (two workers, two
    platforms, one film): transaction-scoped locks, taken in a fixed order so they never
    deadlock."""
    await conn.execute(
        "SELECT pg_advisory_xact_lock(h) FROM "
        "(SELECT DISTINCT hashtext(k) AS h FROM unnest($1::text[]) AS k ORDER BY h) AS locks",
        sorted(set(keys)),
    )


async def load_mappings(
    conn: asyncpg.Connection, keys: Iterable[ItemKey]
) -> dict[ItemKey, Mapping]:
    wanted = sorted(set(keys))
    if not wanted:
        return {}
    rows = await conn.fetch(
        """
        SELECT m.platform, m.platform_item_id, m.canonical_id, m.source_updated_at,
               m.offers_as_of
        FROM entity_mappings m
        JOIN unnest($1::text[], $2::text[]) AS k(platform, item)
          ON m.platform = k.platform AND m.platform_item_id = k.item
        """,
        [k[0] for k in wanted],
        [k[1] for k in wanted],
    )
    return {
        (r["platform"], r["platform_item_id"]): Mapping(
            r["canonical_id"], r["source_updated_at"], r["offers_as_of"]
        )
        for r in rows
    }


# Who an item of the batch could resolve to: ids, exact titles, and titles sharing a word and
# a year with any item of the batch. Locked for the transaction, so concurrent batches that
# could touch the same titles run one after the other.
_CANDIDATE_IDS = """
SELECT canonical_id, xmin::text AS version FROM content
WHERE canonical_id = ANY($1::uuid[])
   OR eidr = ANY($2::text[]) OR imdb_id = ANY($3::text[]) OR tmdb_id = ANY($4::text[])
   OR normalized_title = ANY($5::text[])
   OR (title_words && $6::text[] AND release_year = ANY($7::int[]))
ORDER BY canonical_id
FOR UPDATE
"""
_CANDIDATE_FIELDS = """
SELECT canonical_id, xmin::text AS version, doc->>'content_type' AS content_type,
       doc->>'title' AS title, doc->'alternate_titles' AS alternate_titles,
       doc->>'original_title' AS original_title, (doc->>'release_year')::int AS year,
       doc->'external_ids' AS external_ids, (doc->>'runtime_minutes')::int AS runtime,
       ARRAY(SELECT c->>'name' FROM jsonb_array_elements(doc->'credits') AS c) AS credit_names
FROM content WHERE canonical_id = ANY($1::uuid[])
"""
# Candidates as parsed before, by title, with the row version (xmin) they were parsed from.
# A batch's candidates are mostly the previous batch's, unchanged; any write to a row gives it
# a new xmin, and only committed versions (or this transaction's own, before it writes) are
# ever read, so an equal xmin means an equal row. Bounded, oldest entries dropped first.
# One per worker (handlers.py declares it as a resource of the worker).
KnownTitleCache = OrderedDict[uuid.UUID, tuple[str, KnownTitle]]
KNOWN_TITLE_CACHE_SIZE = 100_000


async def load_known_titles(
    conn: asyncpg.Connection, keys: LookupKeys, ids: Iterable[uuid.UUID], cache: KnownTitleCache
) -> list[KnownTitle]:
    """What resolution needs of each title an item of the batch could resolve to, in id order.

    Only names, ids, year, runtime and credited names: a batch's candidates can be most of the
    catalog (any title sharing a word and a year with any item), and parsing their full records
    was most of the pipeline's time. `load_contents` fetches the full records of the titles
    resolved to.
    """
    titles = sorted({t for _, t in keys.titles})
    rows = await conn.fetch(
        _CANDIDATE_IDS,
        sorted(set(ids)),
        sorted(keys.eidr),
        sorted(keys.imdb),
        sorted(keys.tmdb),
        titles,
        sorted({w for t in titles for w in title_words(t)}),
        sorted({y for _, y in keys.years}),
    )
    missing = [
        r["canonical_id"]
        for r in rows
        if (held := cache.get(r["canonical_id"])) is None or held[0] != r["version"]
    ]
    if missing:
        for r in await conn.fetch(_CANDIDATE_FIELDS, missing):
            cache[r["canonical_id"]] = (r["version"], _known_title(r))
    out = []
    for r in rows:
        cache.move_to_end(r["canonical_id"])
        out.append(cache[r["canonical_id"]][1])
    while len(cache) > KNOWN_TITLE_CACHE_SIZE:
        cache.popitem(last=False)
    return out


def _known_title(row: asyncpg.Record) -> KnownTitle:
    """The same KnownTitle as `KnownTitle.from_content` of the stored record."""
    names = [row["title"], *row["alternate_titles"]]
    if row["original_title"]:
        names.append(row["original_title"])
    external_ids = ExternalIds.model_validate(row["external_ids"])
    return KnownTitle(
        canonical_id=row["canonical_id"],
        content_type=ContentType(row["content_type"]),
        titles={normalize_title(n) for n in names},
        year=row["year"],
        external_ids=external_ids,
        platform_ids=dict(external_ids.platform_ids),
        runtime_minutes=row["runtime"],
        credits=people(row["credit_names"]),
        original_titles=normalized_originals(row["original_title"]),
    )


async def load_contents(
    conn: asyncpg.Connection, ids: Iterable[uuid.UUID]
) -> dict[uuid.UUID, CanonicalContent]:
    """Full records of `ids` (already locked by `load_known_titles` in this transaction)."""
    wanted = sorted(set(ids))
    if not wanted:
        return {}
    rows = await conn.fetch(
        "SELECT canonical_id, doc::text AS doc FROM content WHERE canonical_id = ANY($1::uuid[])",
        wanted,
    )
    # Parsed and validated in one pass by pydantic's JSON parser, not json -> dict -> model.
    return {r["canonical_id"]: CanonicalContent.model_validate_json(r["doc"]) for r in rows}


async def upsert_mappings(conn: asyncpg.Connection, rows: Sequence[MappingRow]) -> None:
    if not rows:
        return
    await conn.execute(
        """
        INSERT INTO entity_mappings AS m
            (platform, platform_item_id, canonical_id, method, confidence, source_updated_at,
             warnings, offers_as_of)
        SELECT p, i, c, m, f, t, w::jsonb, o
        FROM unnest($1::text[], $2::text[], $3::uuid[], $4::text[], $5::real[],
                    $6::timestamptz[], $7::text[], $8::timestamptz[]) AS u(p, i, c, m, f, t, w, o)
        ON CONFLICT (platform, platform_item_id) DO UPDATE SET
            canonical_id = EXCLUDED.canonical_id,
            method = EXCLUDED.method,
            confidence = EXCLUDED.confidence,
            source_updated_at = EXCLUDED.source_updated_at,
            warnings = EXCLUDED.warnings,
            -- An item without availability leaves the offers, and their clock, as they were.
            offers_as_of = GREATEST(m.offers_as_of, EXCLUDED.offers_as_of),
            updated_at = now()
        WHERE m.source_updated_at < EXCLUDED.source_updated_at
        """,
        [r.platform for r in rows],
        [r.platform_item_id for r in rows],
        [r.canonical_id for r in rows],
        [r.method for r in rows],
        [r.confidence for r in rows],
        [r.source_updated_at for r in rows],
        # As JSON text: asyncpg would read a list of lists as a two-dimensional array.
        [orjson.dumps([w.as_dict() for w in r.warnings]).decode() for r in rows],
        [r.offers_as_of for r in rows],
    )


@dataclass(frozen=True)
class WarnedItem:
    platform: str
    platform_item_id: str
    canonical_id: uuid.UUID
    source_updated_at: datetime
    warnings: list[ItemWarning]


_WARNED_FILTER = """
m.warnings <> '[]'::jsonb AND ($1::text IS NULL OR m.platform = $1)
"""


async def warning_counts(
    conn: asyncpg.Connection, platform: str | None = None, kind: str | None = None
) -> dict[str, tuple[int, int]]:
    """kind -> (items, warnings) over the stored mappings (the applied version of each item)."""
    rows = await conn.fetch(
        f"""
        SELECT w->>'kind' AS kind, count(DISTINCT (m.platform, m.platform_item_id)) AS items,
               count(*) AS warnings
        FROM entity_mappings m, jsonb_array_elements(m.warnings) AS w
        WHERE {_WARNED_FILTER} AND ($2::text IS NULL OR w->>'kind' = $2)
        GROUP BY 1
        """,
        platform,
        kind,
    )
    return {r["kind"]: (r["items"], r["warnings"]) for r in rows}


async def warned_items(
    conn: asyncpg.Connection, platform: str | None, kind: str | None, limit: int
) -> list[WarnedItem]:
    """Stored items whose applied version has warnings (of `kind`), most recently applied first."""
    rows = await conn.fetch(
        f"""
        SELECT m.platform, m.platform_item_id, m.canonical_id, m.source_updated_at,
               m.warnings::text AS warnings
        FROM entity_mappings m
        WHERE {_WARNED_FILTER}
          AND ($2::text IS NULL
               OR m.warnings @> jsonb_build_array(jsonb_build_object('kind', $2::text)))
        ORDER BY m.updated_at DESC, m.platform, m.platform_item_id
        LIMIT $3
        """,
        platform,
        kind,
        limit,
    )
    return [
        WarnedItem(
            r["platform"],
            r["platform_item_id"],
            r["canonical_id"],
            r["source_updated_at"],
            parse_warnings(orjson.loads(r["warnings"])),
        )
        for r in rows
    ]


# Hands parked availability over between availability-sync (exclusive, while it parks) and
# process-batch (shared, for its whole transaction): whichever commits second sees the other's
# work, so an update is never parked for an item that was mapped meanwhile. Taken first in both
# transactions, before any row lock, so the two never deadlock.
_PENDING_AVAILABILITY_LOCK = 0x6D67770004


async def guard_pending_availability(conn: asyncpg.Connection, *, exclusive: bool) -> None:
    fn = "pg_advisory_xact_lock" if exclusive else "pg_advisory_xact_lock_shared"
    await conn.execute(f"SELECT {fn}($1)", _PENDING_AVAILABILITY_LOCK)


async def park_availability(
    conn: asyncpg.Connection, parked: Sequence[tuple[ItemKey, datetime, bytes]]
) -> None:
    """Keep availability updates of unknown items, the newest per item."""
    if not parked:
        return
    await conn.execute(
        """
        INSERT INTO pending_availability AS p
            (platform, platform_item_id, source_updated_at, envelope)
        SELECT * FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::bytea[])
        ON CONFLICT (platform, platform_item_id) DO UPDATE SET
            source_updated_at = EXCLUDED.source_updated_at, envelope = EXCLUDED.envelope,
            parked_at = now()
        WHERE p.source_updated_at < EXCLUDED.source_updated_at
        """,
        [key[0] for key, _, _ in parked],
        [key[1] for key, _, _ in parked],
        [at for _, at, _ in parked],
        [envelope for _, _, envelope in parked],
    )


async def take_pending_availability(
    conn: asyncpg.Connection, keys: Iterable[ItemKey]
) -> list[bytes]:
    """Remove and return the parked envelopes of these items, oldest first."""
    wanted = sorted(set(keys))
    if not wanted:
        return []
    rows = await conn.fetch(
        """
        DELETE FROM pending_availability p
        USING unnest($1::text[], $2::text[]) AS k(platform, item)
        WHERE p.platform = k.platform AND p.platform_item_id = k.item
        RETURNING p.source_updated_at, p.envelope
        """,
        [k[0] for k in wanted],
        [k[1] for k in wanted],
    )
    return [bytes(r["envelope"]) for r in sorted(rows, key=lambda r: r["source_updated_at"])]


async def mark_availability_applied(
    conn: asyncpg.Connection, key: ItemKey, source_updated_at: datetime
) -> None:
    await conn.execute(
        "UPDATE entity_mappings SET availability_updated_at = $3, "
        "offers_as_of = GREATEST(offers_as_of, $3), updated_at = now() "
        "WHERE platform = $1 AND platform_item_id = $2",
        key[0],
        key[1],
        source_updated_at,
    )


async def rows_expiring_within(
    conn: asyncpg.Connection | asyncpg.Pool, now: datetime, days: int
) -> list[AvailabilityRow]:
    rows = await conn.fetch(
        "SELECT canonical_id AS content_id, platform, region, availability_type, price_cents, "
        "currency, deep_link, web_fallback, available_from, expires_at "
        "FROM platform_availability WHERE expires_at > $1 "
        "AND expires_at <= $1 + make_interval(days => $2)",
        now,
        days,
    )
    return [
        AvailabilityRow(**{**r, "availability_type": AvailabilityType(r["availability_type"])})
        for r in rows
    ]


_EXPIRY_LOCK = 0x6D67770003


async def try_expiry_lock(conn: asyncpg.Connection) -> bool:
    """One expiry check at a time across processes (held until the transaction ends)."""
    return bool(await conn.fetchval("SELECT pg_try_advisory_xact_lock($1)", _EXPIRY_LOCK))


async def record_expiry_notices(
    conn: asyncpg.Connection, notices: Sequence[ExpiryNotice]
) -> list[ContentExpiring]:
    """Remember one notice per offer and window (ExpiryNotice.dedupe_key); returns those not
    sent before, or sent for an expiry SAME_EXPIRY or more away (a new round), as payloads."""
    if not notices:
        return []
    fresh = await conn.fetch(
        """
        INSERT INTO expiration_notifications AS n
            (canonical_id, platform, region, availability_type, window_days, expires_at)
        SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::int[],
                             $6::timestamptz[])
        ON CONFLICT (canonical_id, platform, region, availability_type, window_days)
        DO UPDATE SET expires_at = EXCLUDED.expires_at, notified_at = now()
        WHERE abs(extract(epoch FROM EXCLUDED.expires_at - n.expires_at)) >= $7
        RETURNING canonical_id, platform, region, availability_type, window_days, expires_at
        """,
        [n.content_id for n in notices],
        [n.platform for n in notices],
        [n.region for n in notices],
        [n.availability_type.value for n in notices],
        [n.window_days for n in notices],
        [n.expires_at for n in notices],
        SAME_EXPIRY.total_seconds(),
    )
    return [ContentExpiring(**r) for r in fresh]


async def write_plan(
    conn: asyncpg.Connection, plan: Plan, event_ids: Sequence[uuid.UUID], now: datetime
) -> None:
    """Write what a batch plan changed: canonical titles (each versioned by the event of the
    item behind it), availability rows and the items' mappings."""
    written = plan.written
    if written:
        await upsert_contents(
            conn,
            [Versioned(doc, event_ids[plan.cause[cid]]) for cid, doc in written.items()],
            same_version_merges=True,
        )
    await apply_availability_diffs(
        conn, [(cid, diff) for (cid, _), diff in plan.availability.items()], now
    )
    await upsert_mappings(conn, plan.mappings)
