"""Candidate titles for recommendations, by SQL over the content tables: the request's context
(mood genres, the device's runtime bounds, the time bucket's genres), popularity, titles
co-watched by viewers with shared history, and the facts of titles other sources found.

Every query keeps only titles offered in the request's region now (an offer listing the
region whose end, if any, is in the future); without a region, any title.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Sequence

import asyncpg

from agents.sona.context import RuntimePreference
from agents.sona.sources import TitleRow

# $1 region, $2 runtime min, $3 runtime max, $4 excluded ids; a query's own start at $5.
_AVAILABLE_AND_FITTING = """
    ($1::text IS NULL OR EXISTS (
        SELECT 1 FROM jsonb_array_elements(coalesce(c.doc->'availability', '[]'::jsonb)) o
        WHERE o->'regions' ? $1
          AND (o->>'available_until' IS NULL OR (o->>'available_until')::timestamptz > now())))
AND ($2::int IS NULL OR (c.doc->>'runtime_minutes') IS NULL
     OR (c.doc->>'runtime_minutes')::int >= $2)
AND ($3::int IS NULL OR (c.doc->>'runtime_minutes') IS NULL
     OR (c.doc->>'runtime_minutes')::int <= $3)
AND NOT (c.canonical_id = ANY($4::uuid[]))
"""
_COLUMNS = """
    c.canonical_id, c.title, c.popularity,
    coalesce((SELECT t.viewers FROM sona_title_viewers t WHERE t.content_id = c.canonical_id), 0)
        AS viewers,
    ARRAY(SELECT jsonb_array_elements_text(coalesce(c.doc->'genres', '[]'::jsonb))) AS genres,
    (c.doc->>'runtime_minutes')::int AS runtime_minutes,
    c.doc->>'maturity_rating' AS maturity_rating
"""
# A series is recommended as itself, never as its episodes (docs/SONA.md, "Series"): the
# catalog queries skip episodes, and the other sources' episodes become their series.
_BY_GENRES = f"""
SELECT {_COLUMNS} FROM content c
WHERE ($5::text[] IS NULL OR c.doc->'genres' ?| $5) AND c.content_type <> 'episode'
  AND {_AVAILABLE_AND_FITTING}
ORDER BY c.popularity DESC, c.canonical_id LIMIT $6
"""
# The titles most users here like (sona_title_viewers), fitting the context; a liked episode
# counts for its series (a series liked through several episodes comes back once per episode:
# the handler keeps the first, which keeps the index-ordered scan of a plain LIMIT).
_MOST_LIKED = f"""
SELECT {_COLUMNS}
FROM sona_title_viewers t
LEFT JOIN episodes e ON e.canonical_id = t.content_id
JOIN content c ON c.canonical_id = coalesce(e.series_id, t.content_id)
WHERE t.viewers > 0 AND {_AVAILABLE_AND_FITTING}
ORDER BY t.viewers DESC, t.content_id LIMIT $5
"""
_BY_IDS = f"""
SELECT {_COLUMNS} FROM content c
WHERE c.canonical_id = ANY($5::uuid[]) AND {_AVAILABLE_AND_FITTING}
"""
_BUCKET_GENRES = """
SELECT g AS genre, count(*) AS n
FROM sona_viewings v JOIN content c ON c.canonical_id = v.content_id,
     jsonb_array_elements_text(coalesce(c.doc->'genres', '[]'::jsonb)) g
WHERE v.user_id = $1 AND v.counted AND v.watched_hour = ANY($2::int[])
GROUP BY g
"""
# Viewers who like the most of the titles the user likes (a positive taste weight: finished,
# or rated well), each weighed by that overlap over the square root of how many titles they
# like (a viewer who likes everything says little about any one title), then what they like
# that the user has not, summed over them. The peers' counts are kept by the training agents
# (sona_user_likes) and their titles read from the index of liked titles by user, peer by
# peer: counting per request was most of a recommendation's time.
_CO_WATCHED = """
WITH mine AS MATERIALIZED (
    SELECT v.content_id,
           power(greatest(coalesce(tv.viewers, 1), 1)::float8, -$4::float8) AS rarity
    FROM sona_viewings v LEFT JOIN sona_title_viewers tv USING (content_id)
    WHERE v.user_id = $1 AND v.taste_weight > 0
), peers AS MATERIALIZED (
    SELECT o.user_id, sum(m.rarity) AS shared
    FROM mine m CROSS JOIN LATERAL (
        -- OFFSET 0 keeps this a scan of the title's index entries, per title: flattened, the
        -- planner preferred reading every liked row of the table.
        SELECT v.user_id FROM sona_viewings v
        WHERE v.content_id = m.content_id AND v.taste_weight > 0 OFFSET 0
    ) o
    WHERE o.user_id <> $1
    GROUP BY o.user_id ORDER BY shared DESC, o.user_id LIMIT $3
), summed AS (
    SELECT t.content_id,
           sum(p.shared * power(greatest(coalesce(l.liked, 0), 1)::float8, -$6::float8)) AS score
    FROM peers p
    LEFT JOIN sona_user_likes l USING (user_id)
    CROSS JOIN LATERAL (
        SELECT w.content_id FROM sona_viewings w
        WHERE w.user_id = p.user_id AND w.taste_weight > 0 OFFSET 0
    ) t
    WHERE t.content_id NOT IN (SELECT content_id FROM mine)
    GROUP BY t.content_id
)
SELECT s.content_id, s.score * {title_norm} AS score
FROM summed s {title_join}
ORDER BY score DESC, s.content_id LIMIT $2
"""
# How many viewers with shared taste the collaborative source listens to.
PEERS = 100
# Exponents of the counts of users liking a title: a shared title weighs viewers^-RARITY in a
# peer's overlap (sharing a rarely liked title says more than sharing a hit), and a proposed
# title's summed score is divided by viewers^TITLE_NORM. A peer's overlap is divided by the
# count of titles they like ^ PEER_NORM.
RARITY = 0.5
TITLE_NORM = 0.0
PEER_NORM = 0.5


def _row(record: asyncpg.Record) -> TitleRow:
    return TitleRow(
        canonical_id=record["canonical_id"],
        title=record["title"],
        popularity=float(record["popularity"] or 0.0),
        viewers=int(record["viewers"] or 0),
        genres=tuple(record["genres"]),
        runtime_minutes=record["runtime_minutes"],
        maturity_rating=record["maturity_rating"],
    )


def _fit_args(
    region: str | None, runtime: RuntimePreference, excluded: Collection[uuid.UUID]
) -> list[object]:
    return [region, runtime.min_minutes, runtime.max_minutes, list(excluded)]


async def titles_by_genres(
    db: asyncpg.Pool | asyncpg.Connection,
    genres: Sequence[str] | None,
    *,
    region: str | None,
    runtime: RuntimePreference,
    excluded: Collection[uuid.UUID],
    limit: int,
) -> list[TitleRow]:
    """The most popular titles fitting the context (any of `genres`; None: any genre)."""
    rows = await db.fetch(
        _BY_GENRES,
        *_fit_args(region, runtime, excluded),
        list(genres) if genres is not None else None,
        limit,
    )
    return [_row(r) for r in rows]


async def most_liked(
    db: asyncpg.Pool | asyncpg.Connection,
    *,
    region: str | None,
    runtime: RuntimePreference,
    excluded: Collection[uuid.UUID],
    limit: int,
) -> list[TitleRow]:
    """The titles most users of the system like, fitting the context."""
    rows = await db.fetch(_MOST_LIKED, *_fit_args(region, runtime, excluded), limit)
    return [_row(r) for r in rows]


async def titles_by_ids(
    db: asyncpg.Pool | asyncpg.Connection,
    ids: Collection[uuid.UUID],
    *,
    region: str | None,
    excluded: Collection[uuid.UUID],
) -> dict[uuid.UUID, TitleRow]:
    """Facts of titles other sources found, only those available in the region (the device's
    runtime bounds are not applied: they weigh in the context score instead)."""
    if not ids:
        return {}
    rows = await db.fetch(_BY_IDS, *_fit_args(region, RuntimePreference(), excluded), list(ids))
    return {r["canonical_id"]: _row(r) for r in rows}


async def series_of(
    db: asyncpg.Pool | asyncpg.Connection, ids: Collection[uuid.UUID]
) -> dict[uuid.UUID, uuid.UUID]:
    """The series of each of `ids` that is an episode (migration 0040)."""
    if not ids:
        return {}
    rows = await db.fetch(
        "SELECT canonical_id, series_id FROM episodes WHERE canonical_id = ANY($1::uuid[])",
        list(ids),
    )
    return {r["canonical_id"]: r["series_id"] for r in rows}


async def bucket_genres(
    db: asyncpg.Pool | asyncpg.Connection, user_id: str, hours: Sequence[int]
) -> dict[str, int]:
    """How often each genre was among the user's counted viewings at these hours."""
    rows = await db.fetch(_BUCKET_GENRES, user_id, list(hours))
    return {r["genre"]: int(r["n"]) for r in rows}


async def co_watched(
    db: asyncpg.Pool | asyncpg.Connection, user_id: str, limit: int
) -> dict[uuid.UUID, float]:
    # The titles' viewer counts are read only when they weigh: a join per proposed title.
    sql = _CO_WATCHED.format(
        title_norm="power(greatest(coalesce(tv.viewers, 1), 1)::float8, -$5::float8)"
        if TITLE_NORM
        else "1.0 + 0 * $5::float8",
        title_join="LEFT JOIN sona_title_viewers tv USING (content_id)" if TITLE_NORM else "",
    )
    rows = await db.fetch(sql, user_id, limit, PEERS, RARITY, TITLE_NORM, PEER_NORM)
    return {r["content_id"]: float(r["score"]) for r in rows}
