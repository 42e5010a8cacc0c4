"""PostgreSQL reads of discovery: keyword search, browsing by popularity, references, the
payloads of found titles, and the catalog counts behind the selectivity estimate.

The SQL filters only narrow what is fetched (so a selective filter still fills a page); the
filter test of agents.discovery.filters, run on every payload afterwards, is what decides.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

import asyncpg

from agents.discovery.filters import MATURITY_LEVEL
from agents.discovery.selectivity import CatalogStats
from schemas.discovery import SearchFilters

# $1.. are the filter parameters of filter_args(); the caller's own start after them.
_FILTERS = """
    ($1::text[] IS NULL OR c.doc->'genres' ?| $1)
AND ($2::text[] IS NULL OR NOT (c.doc->'genres' ?| $2))
AND ($3::int IS NULL OR c.release_year >= $3)
AND ($4::int IS NULL OR c.release_year <= $4)
AND (($5::text[] IS NULL AND $6::text IS NULL) OR EXISTS (
        SELECT 1 FROM jsonb_array_elements(c.doc->'availability') o
        WHERE jsonb_array_length(o->'regions') > 0
          AND ($5::text[] IS NULL OR o->>'platform' = ANY($5))
          AND ($6::text IS NULL OR o->'regions' ? $6)))
AND ($7::float8 IS NULL OR (c.doc->>'average_rating')::float8 BETWEEN $7 AND $8)
AND ($9::text[] IS NULL OR c.doc->>'maturity_rating' = ANY($9))
"""

# Two candidate sets, each bounded, then joined:
# - the words, ORed ("funny animated shrek" finds titles with any of them; more of them rank
#   higher), each stemmed by the english configuration. A common word matches thousands of
#   titles, and ranking them all would cost more than the whole search may take: at most
#   $13 matches are ranked, those the index yields first;
# - titles closest to the words by trigram distance (typos: "shawshank redemtion"), nearest
#   first straight from the GiST index, only when the words are short enough to be a title.
_KEYWORD = f"""
WITH q AS (
    SELECT replace(plainto_tsquery('english', $10)::text, ' & ', ' | ')::tsquery AS words
),
text_hits AS (
    SELECT c.canonical_id, ts_rank(c.search_document, q.words, 1) AS score
    FROM content c, q
    WHERE c.search_document @@ q.words AND {_FILTERS}
    LIMIT $13
),
title_hits AS (
    SELECT c.canonical_id, similarity(c.normalized_title, $11) AS score
    FROM content c
    WHERE $11 <> '' AND c.normalized_title % $11 AND {_FILTERS}
    ORDER BY c.normalized_title <-> $11
    LIMIT $12
)
SELECT canonical_id, coalesce(t.score, 0) + coalesce(n.score, 0) AS score
FROM text_hits t FULL OUTER JOIN title_hits n USING (canonical_id)
ORDER BY score DESC, canonical_id
LIMIT $12
"""
# Words matching more titles than this are ranked among the first this many the index yields.
TEXT_RANK_CAP = 2000

_POPULAR = f"""
SELECT c.canonical_id FROM content c
WHERE {_FILTERS}
ORDER BY c.popularity DESC, c.canonical_id
LIMIT $10
"""

# The closest title of each reference by trigram distance of the matching forms (GiST order);
# among equally close ones (a remake, a namesake), the most popular.
_REFERENCES = """
SELECT r.reference, m.canonical_id, m.score
FROM unnest($1::text[]) AS r(reference)
CROSS JOIN LATERAL (
    SELECT canonical_id, score FROM (
        SELECT c.canonical_id, c.popularity, similarity(c.normalized_title, r.reference) AS score
        FROM content c
        ORDER BY c.normalized_title <-> r.reference
        LIMIT 10
    ) AS nearest
    ORDER BY score DESC, popularity DESC, canonical_id
    LIMIT 1
) AS m
"""

# What filtering, fusion, boosts and the result need of a title, and nothing more: offers
# that are not current (not yet started, or ended) are left out, so a title is never shown on
# a platform it left even before the feed says so.
_PAYLOADS = """
SELECT c.canonical_id, jsonb_build_object(
    'title', c.doc->'title',
    'release_year', c.doc->'release_year',
    'genres', c.doc->'genres',
    'keywords', c.doc->'keywords',
    'maturity_rating', c.doc->'maturity_rating',
    'average_rating', c.doc->'average_rating',
    'popularity_score', c.doc->'popularity_score',
    'rating_count', c.doc->'rating_count',
    'availability', coalesce((
        SELECT jsonb_agg(jsonb_build_object('platform', o->'platform', 'regions', o->'regions'))
        FROM jsonb_array_elements(c.doc->'availability') o
        WHERE (o->>'available_until' IS NULL OR (o->>'available_until')::timestamptz > now())
          AND (o->>'available_from' IS NULL OR (o->>'available_from')::timestamptz <= now())
    ), '[]'::jsonb)
) AS payload
FROM content c WHERE c.canonical_id = ANY($1::uuid[])
"""

_STATS_TOTAL = "SELECT count(*) FROM content"
_STATS_GENRES = """
SELECT g AS value, count(*) AS n FROM content c, jsonb_array_elements_text(c.doc->'genres') g
GROUP BY g
"""
_STATS_PLATFORMS = """
SELECT o->>'platform' AS value, count(DISTINCT c.canonical_id) AS n
FROM content c, jsonb_array_elements(c.doc->'availability') o
WHERE jsonb_array_length(o->'regions') > 0
GROUP BY 1
"""
_STATS_REGIONS = """
SELECT r AS value, count(DISTINCT c.canonical_id) AS n
FROM content c, jsonb_array_elements(c.doc->'availability') o,
     jsonb_array_elements_text(o->'regions') r
GROUP BY r
"""
_STATS_YEARS = """
SELECT release_year AS value, count(*) AS n FROM content
WHERE release_year IS NOT NULL GROUP BY release_year
"""


def filter_args(filters: SearchFilters) -> list[Any]:
    """The nine parameters of the SQL filter, None for each condition not set."""
    years = filters.year_range
    ratings = filters.rating_range
    limit = filters.content_rating_limit
    allowed = (
        sorted(r.value for r, level in MATURITY_LEVEL.items() if level <= MATURITY_LEVEL[limit])
        if limit is not None
        else None
    )
    return [
        filters.genres or None,
        filters.blocked_genres or None,
        years[0] if years else None,
        years[1] if years else None,
        filters.platforms or None,
        filters.region,
        ratings[0] if ratings else None,
        ratings[1] if ratings else None,
        allowed,
    ]


async def keyword_search(
    pool: asyncpg.Pool, text: str, title_form: str, filters: SearchFilters, limit: int
) -> list[tuple[uuid.UUID, float]]:
    """Titles matching the words or resembling the title, best first, with their score."""
    rows = await pool.fetch(_KEYWORD, *filter_args(filters), text, title_form, limit, TEXT_RANK_CAP)
    return [(r["canonical_id"], float(r["score"])) for r in rows]


async def popular(pool: asyncpg.Pool, filters: SearchFilters, limit: int) -> list[uuid.UUID]:
    """The most popular titles passing the filters."""
    rows = await pool.fetch(_POPULAR, *filter_args(filters), limit)
    return [r["canonical_id"] for r in rows]


async def resolve_references(
    pool: asyncpg.Pool, title_forms: Sequence[str], min_similarity: float
) -> dict[str, uuid.UUID]:
    """The title each reference (in the matching form of titles) names, when one is close."""
    if not title_forms:
        return {}
    rows = await pool.fetch(_REFERENCES, list(title_forms))
    return {r["reference"]: r["canonical_id"] for r in rows if r["score"] >= min_similarity}


async def payloads(pool: asyncpg.Pool, ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, dict[str, Any]]:
    if not ids:
        return {}
    rows = await pool.fetch(_PAYLOADS, list(ids))
    return {r["canonical_id"]: r["payload"] for r in rows}


async def catalog_stats(pool: asyncpg.Pool) -> CatalogStats:
    async with pool.acquire() as conn:
        total = await conn.fetchval(_STATS_TOTAL)
        counts = [
            {r["value"]: int(r["n"]) for r in await conn.fetch(sql)}
            for sql in (_STATS_GENRES, _STATS_PLATFORMS, _STATS_REGIONS, _STATS_YEARS)
        ]
    return CatalogStats(int(total), *counts)
