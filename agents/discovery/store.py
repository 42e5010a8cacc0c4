"""PostgreSQL reads of discovery: keyword search, browsing by popularity, references, the
payloads of found titles, and the catalog counts behind the selectivity estimate.

The SQL filters only narrow what is fetched (so a selective filter still fills a page); the
filter test of agents.discovery.filters, run on every payload afterwards, is what decides.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import asyncpg

from agents.discovery.facets import facets_of_counts
from agents.discovery.filters import MATURITY_LEVEL
from agents.discovery.ranking import BrowsePage
from agents.discovery.selectivity import CatalogStats
from agents.discovery.series import series_of, series_payload
from agents.discovery.words import (
    PREFIX_COMPLETIONS,
    WordCandidates,
    candidates,
    variants_to_look_up,
)
from schemas.discovery import Facets, SearchFilters

# An offer counts while it is current: listed in a region, started (or without a start) and
# not ended (or without an end). Over `o`, one element of a document's availability.
_OFFER_NOW = """jsonb_array_length(o->'regions') > 0
    AND (o->>'available_from' IS NULL OR (o->>'available_from')::timestamptz <= now())
    AND (o->>'available_until' IS NULL OR (o->>'available_until')::timestamptz > now())"""

# The future ends of the windows of the offers in `{offers}` (a jsonb array): when what the
# offers make of a title changes next. An offer without regions is not shown, whatever its
# window. Rows `b.at`; the caller takes the earliest.
_OFFER_CHANGES = """jsonb_array_elements({offers}) o,
    LATERAL (VALUES ((o->>'available_from')::timestamptz),
                    ((o->>'available_until')::timestamptz)) AS b(at)
    WHERE jsonb_array_length(o->'regions') > 0 AND b.at > now()"""

# $1.. are the filter parameters of filter_args(); the caller's own start after them.
# Offers: the generated key columns (migration 0017) answer through their GIN indexes; a title
# whose only matching offers have a window is checked against the document's offers.
_FILTERS = f"""
    ($1::text[] IS NULL OR c.doc->'genres' ?| $1)
AND ($2::text[] IS NULL OR NOT (c.doc->'genres' ?| $2))
AND ($3::int IS NULL OR c.release_year >= $3)
AND ($4::int IS NULL OR c.release_year <= $4)
AND ($5::text[] IS NULL OR c.open_offer_keys && $5 OR (c.timed_offer_keys && $5 AND EXISTS (
        SELECT 1 FROM jsonb_array_elements(c.doc->'availability') o
        WHERE {_OFFER_NOW}
          AND ($6::text[] IS NULL OR o->>'platform' = ANY($6))
          AND ($7::text IS NULL OR o->'regions' ? $7))))
AND ($8::float8 IS NULL OR (c.doc->>'average_rating')::float8 BETWEEN $8 AND $9)
AND ($10::text[] IS NULL OR c.doc->>'maturity_rating' = ANY($10))
AND ($11::text[] IS NULL OR c.content_type = ANY($11))
"""
# A browse lists series, never their episodes (docs/DISCOVERY.md, "Series and episodes").
_BROWSABLE = f"c.content_type <> 'episode' AND {_FILTERS}"
# The searches by words find episodes too, whatever the filters: an episode stands for its
# series, which the filter test then judges by the series' own record and every offer of its
# seasons and episodes (agents/discovery/series.py); an episode's own offers or genres do not
# decide. Unless the filter asks for content types without series.
_SEARCHABLE = f"""((c.content_type = 'episode' AND ($11::text[] IS NULL OR 'series' = ANY($11)))
    OR ({_FILTERS}))"""

# Two candidate sets, each bounded, then joined:
# - the words, ORed ("funny animated shrek" finds titles with any of them; more of them rank
#   higher), each stemmed by the english configuration. A common word matches thousands of
#   titles, and ranking them all would cost more than the whole search may take: at most
#   $15 matches are ranked, those the index yields first;
# - titles closest to the words by trigram distance (typos: "shawshank redemtion"), nearest
#   first straight from the GiST index, only when the words are short enough to be a title.
_KEYWORD = f"""
WITH q AS (
    SELECT replace(plainto_tsquery('english', $12)::text, ' & ', ' | ')::tsquery AS words
),
text_hits AS (
    SELECT c.canonical_id, ts_rank(c.search_document, q.words, 1) AS score
    FROM content c, q
    WHERE c.search_document @@ q.words AND {_SEARCHABLE}
    LIMIT $15
),
title_hits AS (
    SELECT c.canonical_id, similarity(c.normalized_title, $13) AS score
    FROM content c
    WHERE $13 <> '' AND c.normalized_title % $13 AND {_SEARCHABLE}
    ORDER BY c.normalized_title <-> $13
    LIMIT $14
)
SELECT canonical_id, coalesce(t.score, 0) + coalesce(n.score, 0) AS score
FROM text_hits t FULL OUTER JOIN title_hits n USING (canonical_id)
ORDER BY score DESC, canonical_id
LIMIT $14
"""
# Words matching more titles than this are ranked among the first this many the index yields.
TEXT_RANK_CAP = 2000

# A browse ("on Netflix", "drama"): every title passing the filters, most popular first. Two
# queries run at once, each one scan of the matching titles: the page ($12 titles after the
# first $13) and how many there are, which a browse always answers exactly; and the facets
# over all of them (as agents.discovery.facets counts a result set: genres and
# platforms once per title, platforms where the title is offered now, in the region when one
# is asked) and when an offer of one of them starts or ends next. Only columns are read (the
# genre and offer keys of 0017 and 0034), not the documents, but for the few titles with an
# offer window; the facets are counted in one aggregate over (kind, value) pairs.
_BROWSE_PAGE = f"""
SELECT
    (SELECT count(*) FROM content c WHERE {_BROWSABLE}) AS total,
    ARRAY(SELECT c.canonical_id FROM content c WHERE {_BROWSABLE}
          ORDER BY c.popularity DESC, c.canonical_id LIMIT $12 OFFSET $13) AS page
"""
_BROWSE_COUNTS = f"""
WITH matching AS MATERIALIZED (
    SELECT c.canonical_id, c.popularity, c.release_year, c.genre_keys, c.open_offer_keys,
           CASE WHEN c.timed_offer_keys <> '{{}}' THEN c.doc->'availability' END AS timed
    FROM content c WHERE {_BROWSABLE}
),
open_platforms AS (
    SELECT canonical_id, timed IS NOT NULL AS has_timed, split_part(k, '@', 1) AS platform
    FROM matching, unnest(open_offer_keys) k
    WHERE CASE WHEN $7::text IS NULL THEN strpos(k, '@') = 0 ELSE k LIKE '_%@' || $7 END
),
facet_values AS (
    SELECT 'genre' AS kind, g AS value FROM matching, unnest(genre_keys) g
    UNION ALL
    SELECT 'decade', (release_year - release_year % 10) || 's'
    FROM matching WHERE release_year IS NOT NULL
    UNION ALL
    -- Open keys are distinct per title: a title without a window is counted from them alone.
    SELECT 'platform', platform FROM open_platforms WHERE NOT has_timed
    UNION ALL
    SELECT 'platform', platform FROM (
        SELECT canonical_id, platform FROM open_platforms WHERE has_timed
        UNION
        SELECT canonical_id, o->>'platform'
        FROM matching, jsonb_array_elements(timed) o
        WHERE timed IS NOT NULL AND {_OFFER_NOW} AND ($7::text IS NULL OR o->'regions' ? $7)
    ) windowed
),
facets AS (
    SELECT kind, jsonb_object_agg(value, n) AS counts
    FROM (SELECT kind, value, count(*) AS n FROM facet_values GROUP BY kind, value) x
    GROUP BY kind
)
SELECT
    coalesce((SELECT counts FROM facets WHERE kind = 'genre'), '{{}}') AS genres,
    coalesce((SELECT counts FROM facets WHERE kind = 'platform'), '{{}}') AS platforms,
    coalesce((SELECT counts FROM facets WHERE kind = 'decade'), '{{}}') AS decades,
    (SELECT extract(epoch FROM min(b.at) - now())
     FROM matching, {_OFFER_CHANGES.format(offers="timed")}) AS offers_change_in_s
"""

# Typo-tolerant word search (migration 0033, agents/discovery/words.py): the catalog words
# sharing a variant with a query word, and the last word's shortest completions.
_WORD_VARIANTS = "SELECT variant, word FROM search_word_variants WHERE variant = ANY($1::text[])"
_COMPLETIONS = """
SELECT word FROM search_words WHERE word LIKE $1 ORDER BY length(word), word LIMIT $2
"""
# Titles holding one candidate of every required query word (one `&&` per word, $12 on,
# answered by the GIN index of title_words), the query's own title first, then the shortest.
_TITLES_WITH_WORDS = """
SELECT c.canonical_id, c.normalized_title, c.popularity
FROM content c
WHERE {words} AND {filters}
ORDER BY c.normalized_title = ${form} DESC, cardinality(c.title_words), c.popularity DESC,
         c.canonical_id
LIMIT ${limit}
"""
# Whether a title passing the filters is named exactly so (its matching form).
_TITLE_NAMED = f"""
SELECT EXISTS (SELECT 1 FROM content c WHERE c.normalized_title = $12 AND {_SEARCHABLE})
"""
# Titles whose credits hold a name with one candidate of every required query word.
_PEOPLE_WITH_WORDS = """
SELECT p.canonical_id, p.name, p.role, p.name_form, c.popularity
FROM content_people p JOIN content c USING (canonical_id)
WHERE {words} AND (${roles}::text[] IS NULL OR p.role = ANY(${roles})) AND {filters}
ORDER BY c.popularity DESC, p.canonical_id
LIMIT ${limit}
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
# a platform it left even before the feed says so; `offers_change_in_s`, the seconds until one
# of its offers starts or ends (null: none will), bounds how long a page showing it is kept.
_PAYLOADS = f"""
SELECT c.canonical_id, jsonb_build_object(
    'title', c.doc->'title',
    'content_type', c.content_type,
    'series_id', e.series_id,
    'season_number', e.season_number,
    'episode_number', e.episode_number,
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
        WHERE {_OFFER_NOW}
    ), '[]'::jsonb),
    'offers_change_in_s', (
        SELECT extract(epoch FROM min(b.at) - now())
        FROM {_OFFER_CHANGES.format(offers="c.doc->'availability'")})
) AS payload
FROM content c LEFT JOIN episodes e USING (canonical_id)
WHERE c.canonical_id = ANY($1::uuid[])
"""
# Of each series: how many episodes each season has, and the offers current now of each
# season (its season listings' and its episodes'), one row per (season, platform, region).
_SEASON_EPISODES = """
SELECT series_id, season_number, count(*) AS n FROM episodes
WHERE series_id = ANY($1::uuid[]) GROUP BY series_id, season_number
"""
_SEASON_OFFERS = f"""
SELECT a.series_id, a.season_number, a.platform, a.region
FROM season_availability a
WHERE a.series_id = ANY($1::uuid[])
  AND (a.available_from IS NULL OR a.available_from <= now())
  AND (a.expires_at IS NULL OR a.expires_at > now())
UNION
SELECT e.series_id, e.season_number, o->>'platform', r
FROM episodes e JOIN content c USING (canonical_id),
     jsonb_array_elements(c.doc->'availability') o, jsonb_array_elements_text(o->'regions') r
WHERE e.series_id = ANY($1::uuid[]) AND {_OFFER_NOW}
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


def offer_keys(filters: SearchFilters) -> list[str] | None:
    """The keys of migration 0017 a title needs one of to pass the platform and region
    conditions; None when neither is set."""
    region = filters.region
    if filters.platforms:
        return [f"{p}@{region}" if region else p for p in filters.platforms]
    return [f"@{region}"] if region else None


def filter_args(filters: SearchFilters) -> list[Any]:
    """The parameters of the SQL filter, None for each condition not set."""
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
        offer_keys(filters),
        filters.platforms or None,
        filters.region,
        ratings[0] if ratings else None,
        ratings[1] if ratings else None,
        allowed,
        filters.content_types or None,
    ]


async def keyword_search(
    pool: asyncpg.Pool, text: str, title_form: str, filters: SearchFilters, limit: int
) -> list[tuple[uuid.UUID, float]]:
    """Titles matching the words or resembling the title, best first, with their score."""
    rows = await pool.fetch(_KEYWORD, *filter_args(filters), text, title_form, limit, TEXT_RANK_CAP)
    return [(r["canonical_id"], float(r["score"])) for r in rows]


async def browse(
    pool: asyncpg.Pool, filters: SearchFilters, offset: int, limit: int, counts_within_s: float
) -> BrowsePage:
    """The `limit` most popular titles passing the filters after the first `offset`, how many
    pass, and, when they are counted within `counts_within_s`, their facets and when one of
    their offers starts or ends next (a broad browse of a large catalog may take longer: the
    page and its exact total are answered without them, and not kept)."""
    args = filter_args(filters)
    page, counts = await asyncio.gather(
        _fetch_browse(pool, _BROWSE_PAGE, [*args, limit, offset]),
        _fetch_browse(pool, _BROWSE_COUNTS, args, counts_within_s),
    )
    if counts is None:
        return BrowsePage(
            ids=list(page["page"]),
            offset=offset,
            total=int(page["total"]),
            facets=Facets(),
            counted=False,
        )
    return BrowsePage(
        ids=list(page["page"]),
        offset=offset,
        total=int(page["total"]),
        facets=facets_of_counts(counts["genres"], counts["platforms"], counts["decades"]),
        offers_change_in_s=_seconds(counts["offers_change_in_s"]),
    )


async def _fetch_browse(
    pool: asyncpg.Pool, sql: str, args: list[Any], within_s: float | None = None
) -> asyncpg.Record | None:
    """One browse query's row; None when `within_s` passed first (the query is cancelled)."""
    async with pool.acquire() as conn, conn.transaction():
        # The planner's guesses for the set-returning functions over the matching titles put
        # these queries past jit_above_cost, and compiling took longer than running them: 0.7 s
        # of 1.1 s for 20,000 titles.
        await conn.execute("SET LOCAL jit = off")
        if within_s is None:
            return await conn.fetchrow(sql, *args)
        try:
            async with asyncio.timeout(within_s):
                return await conn.fetchrow(sql, *args)
        except TimeoutError:
            return None


def _seconds(value: Decimal | float | None) -> float | None:
    return None if value is None else float(value)


async def resolve_references(
    pool: asyncpg.Pool, title_forms: Sequence[str], min_similarity: float
) -> dict[str, uuid.UUID]:
    """The title each reference (in the matching form of titles) names, when one is close."""
    if not title_forms:
        return {}
    rows = await pool.fetch(_REFERENCES, list(title_forms))
    return {r["reference"]: r["canonical_id"] for r in rows if r["score"] >= min_similarity}


async def payloads(pool: asyncpg.Pool, ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, dict[str, Any]]:
    """The payloads of these titles, and of the series of the episodes among them (an episode
    is shown as its series); a series' payload holds its seasons (agents/discovery/series.py)."""
    if not ids:
        return {}
    found = await _payloads(pool, ids)
    parents = {sid for p in found.values() if (sid := series_of(p)) is not None} - set(found)
    if parents:
        found.update(await _payloads(pool, sorted(parents)))
    shows = [cid for cid, p in found.items() if p.get("content_type") == "series"]
    if not shows:
        return found
    async with pool.acquire() as conn:
        counts = await conn.fetch(_SEASON_EPISODES, shows)
        offers = await conn.fetch(_SEASON_OFFERS, shows)
    for sid in shows:
        found[sid] = series_payload(
            found[sid],
            {r["season_number"]: int(r["n"]) for r in counts if r["series_id"] == sid},
            [
                (r["season_number"], r["platform"], r["region"])
                for r in offers
                if r["series_id"] == sid
            ],
        )
    return found


async def _payloads(
    pool: asyncpg.Pool, ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, dict[str, Any]]:
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


def _like_prefix(word: str) -> str:
    return word.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


async def word_candidates(pool: asyncpg.Pool, words: list[str]) -> WordCandidates:
    """Each query word's catalog words within its typos (and the last one's completions)."""
    async with pool.acquire() as conn:
        pairs = await conn.fetch(_WORD_VARIANTS, variants_to_look_up(words))
        completions = (
            [
                r["word"]
                for r in await conn.fetch(_COMPLETIONS, _like_prefix(words[-1]), PREFIX_COMPLETIONS)
            ]
            if words
            else []
        )
    return candidates(words, ((r["variant"], r["word"]) for r in pairs), completions)


def _word_conditions(column: str, query: WordCandidates, first: int) -> tuple[str, list[Any]]:
    required = query.searchable()
    sql = " AND ".join(f"{column} && ${first + n}::text[]" for n in range(len(required)))
    return sql, [sorted(query.matches[i]) for i in required]


async def titles_with_words(
    pool: asyncpg.Pool, query: WordCandidates, form: str, filters: SearchFilters, limit: int
) -> list[tuple[uuid.UUID, str, float]]:
    """Titles passing the filters that hold every required query word (within its typos)."""
    args = filter_args(filters)
    words, groups = _word_conditions("c.title_words", query, len(args) + 1)
    if not groups:
        return []
    n = len(args) + len(groups)
    sql = _TITLES_WITH_WORDS.format(words=words, filters=_SEARCHABLE, form=n + 1, limit=n + 2)
    rows = await pool.fetch(sql, *args, *groups, form, limit)
    return [(r["canonical_id"], r["normalized_title"], float(r["popularity"])) for r in rows]


async def people_with_words(
    pool: asyncpg.Pool,
    query: WordCandidates,
    roles: Sequence[str] | None,
    filters: SearchFilters,
    limit: int,
) -> list[tuple[uuid.UUID, str, str, str, float]]:
    """Credits (in `roles`, None: any) of titles passing the filters whose name holds every
    required query word."""
    args = filter_args(filters)
    words, groups = _word_conditions("p.name_words", query, len(args) + 1)
    if not groups:
        return []
    n = len(args) + len(groups)
    sql = _PEOPLE_WITH_WORDS.format(words=words, filters=_SEARCHABLE, roles=n + 1, limit=n + 2)
    rows = await pool.fetch(sql, *args, *groups, list(roles) if roles else None, limit)
    return [
        (r["canonical_id"], r["name"], r["role"], r["name_form"], float(r["popularity"]))
        for r in rows
    ]


async def title_named(pool: asyncpg.Pool, form: str, filters: SearchFilters) -> bool:
    """Whether a title passing the filters has exactly this matching form."""
    return bool(await pool.fetchval(_TITLE_NAMED, *filter_args(filters), form))
