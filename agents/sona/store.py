"""PostgreSQL I/O of personalization: adapters, profiles, viewings, and
the sync tables' facts the agents read (watchlist, finished titles, device types).

Adapters: the latest version of a user is one query on the primary key (user_id,
adapter_name, version), read backwards. A blob that fails its checks is refused with
AdapterBlobError, never loaded (agents/sona/adapter_codec.py).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import datetime

import asyncpg
import numpy as np

from agents.sona.adapter_cache import AdapterCache, CachedAdapter
from agents.sona.adapter_codec import WeightDtype, decode, encode
from agents.sona.folding import LikingChanges
from agents.sona.lora import UserLoRAAdapter
from agents.sona.population import PopulationLayer
from agents.sona.profile import StoredProfile, UserProfile
from agents.sona.viewings import ViewingState

DEFAULT_ADAPTER = "default"
Db = asyncpg.Connection | asyncpg.Pool


# --- adapters ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StoredAdapter:
    version: int
    adapter: UserLoRAAdapter
    dtype: str
    size_bytes: int
    training_iterations: int


_LATEST = """
SELECT version, weights, dtype, size_bytes, training_iterations
FROM lora_adapters WHERE user_id = $1 AND adapter_name = $2
ORDER BY version DESC LIMIT 1
"""


async def latest_adapter(
    db: Db, user_id: str, *, expected_dim: int | None = None, name: str = DEFAULT_ADAPTER
) -> StoredAdapter | None:
    """The newest stored version, or None; AdapterBlobError / DimensionMismatch when its blob
    is corrupt or of another dimension."""
    row = await db.fetchrow(_LATEST, user_id, name)
    if row is None:
        return None
    return StoredAdapter(
        version=row["version"],
        adapter=decode(row["weights"], expected_dim=expected_dim),
        dtype=row["dtype"],
        size_bytes=row["size_bytes"],
        training_iterations=row["training_iterations"],
    )


_INSERT_ADAPTER = """
INSERT INTO lora_adapters
    (user_id, adapter_name, version, weights, dtype, dim, rank, size_bytes,
     training_iterations, training_examples)
SELECT $1, $2, coalesce(max(version), 0) + 1, $3, $4, $5, $6, $7, $8, $9
FROM lora_adapters WHERE user_id = $1 AND adapter_name = $2
RETURNING version
"""
_PRUNE_ADAPTERS = """
DELETE FROM lora_adapters WHERE user_id = $1 AND adapter_name = $2 AND version <= $3::int - $4::int
"""


async def save_adapter(
    conn: asyncpg.Connection,
    user_id: str,
    adapter: UserLoRAAdapter,
    *,
    training_iterations: int,
    training_examples: int,
    keep: int,
    float16: bool = True,
    name: str = DEFAULT_ADAPTER,
) -> int:
    """Store a new version (previous + 1) and prune beyond `keep`; the new version number.
    Call under the user's lock (lock_users) so two writers cannot pick the same number."""
    blob = encode(adapter, dtype=WeightDtype.float16 if float16 else WeightDtype.float32)
    # The codec may have fallen back to float32; the header is the truth.
    dtype = WeightDtype(blob[6]).name
    version: int = await conn.fetchval(
        _INSERT_ADAPTER,
        user_id,
        name,
        blob,
        dtype,
        adapter.dim,
        adapter.rank,
        len(blob),
        training_iterations,
        training_examples,
    )
    await conn.execute(_PRUNE_ADAPTERS, user_id, name, version, keep)
    return version


async def adapter_versions(db: Db, user_id: str, name: str = DEFAULT_ADAPTER) -> list[int]:
    rows = await db.fetch(
        "SELECT version FROM lora_adapters WHERE user_id = $1 AND adapter_name = $2 "
        "ORDER BY version",
        user_id,
        name,
    )
    return [r["version"] for r in rows]


class CachedAdapters:
    """Adapters through the process's LRU: PostgreSQL only on a miss."""

    def __init__(self, pool: asyncpg.Pool, cache: AdapterCache, dim: int) -> None:
        self.pool = pool
        self.cache = cache
        self.dim = dim

    async def load(self, user_id: str) -> CachedAdapter:
        entry = self.cache.get(user_id)
        if entry is not None:
            return entry
        stored = await latest_adapter(self.pool, user_id, expected_dim=self.dim)
        entry = (
            CachedAdapter(None, None)
            if stored is None
            else CachedAdapter(stored.version, stored.adapter)
        )
        self.cache.put(user_id, entry)
        return entry


# --- event ids, locks ----------------------------------------------------------------------------


async def lock_users(conn: asyncpg.Connection, users: Iterable[str]) -> None:
    """Transaction-scoped locks per user, in one order so two batches cannot deadlock."""
    for user in sorted(set(users)):
        await conn.execute("SELECT pg_advisory_xact_lock(hashtextextended('sona:' || $1, 0))", user)


# --- profiles ------------------------------------------------------------------------------------


async def load_profiles(db: Db, users: Collection[str], dim: int) -> dict[str, StoredProfile]:
    """Every named user's profile; an empty one for a user never seen."""
    rows = await db.fetch(
        "SELECT * FROM user_profiles WHERE user_id = ANY($1::text[])", list(users)
    )
    out = {user: StoredProfile(UserProfile.empty(dim)) for user in users}
    for row in rows:
        taste = np.frombuffer(row["taste"], dtype="<f8")
        out[row["user_id"]] = StoredProfile(
            UserProfile(
                dim=row["dim"],
                taste=taste,
                taste_as_of=row["taste_as_of"],
                genre_affinities=json.loads(row["genre_affinities"]),
                hourly=tuple(row["hourly"]),
                device_mix=json.loads(row["device_mix"]),
                events_applied=row["events_applied"],
                time_zone=row["time_zone"],
            ),
            row["events_since_training"],
        )
    return out


_SAVE_PROFILE = """
INSERT INTO user_profiles (user_id, dim, taste, taste_as_of, genre_affinities, hourly,
                           device_mix, events_applied, events_since_training, time_zone,
                           updated_at)
VALUES ($1, $2, $3, $4, $5::jsonb, $6, $7::jsonb, $8, $9, $10, now())
ON CONFLICT (user_id) DO UPDATE SET
    dim = EXCLUDED.dim, taste = EXCLUDED.taste, taste_as_of = EXCLUDED.taste_as_of,
    genre_affinities = EXCLUDED.genre_affinities, hourly = EXCLUDED.hourly,
    device_mix = EXCLUDED.device_mix, events_applied = EXCLUDED.events_applied,
    events_since_training = EXCLUDED.events_since_training, time_zone = EXCLUDED.time_zone,
    updated_at = now()
"""


async def save_profiles(conn: asyncpg.Connection, profiles: dict[str, StoredProfile]) -> None:
    await conn.executemany(
        _SAVE_PROFILE,
        [
            (
                user,
                stored.profile.dim,
                np.ascontiguousarray(stored.profile.taste, dtype="<f8").tobytes(),
                stored.profile.taste_as_of,
                json.dumps(dict(stored.profile.genre_affinities)),
                list(stored.profile.hourly),
                json.dumps(dict(stored.profile.device_mix)),
                stored.profile.events_applied,
                stored.events_since_training,
                stored.profile.time_zone,
            )
            for user, stored in profiles.items()
        ],
    )


# --- viewings ------------------------------------------------------------------------------------


def _viewing_state(row: asyncpg.Record) -> ViewingState:
    return ViewingState(
        content_id=row["content_id"],
        completion=row["completion"],
        counted=row["counted"],
        watched_at=row["watched_at"],
        finished_count=row["finished_count"],
        rewatch=row["rewatch"],
        rating=row["rating"],
        watched_hour=row["watched_hour"],
        engagement=row["engagement"],
        rated_at=row["rated_at"],
        dismissed_at=row["dismissed_at"],
        taste_weight=row["taste_weight"],
        folded_weight=row["folded_weight"],
        folded_at=row["folded_at"],
    )


async def load_viewings(
    conn: asyncpg.Connection, pairs: Collection[tuple[str, uuid.UUID]]
) -> dict[tuple[str, uuid.UUID], ViewingState]:
    if not pairs:
        return {}
    rows = await conn.fetch(
        """
        SELECT v.* FROM sona_viewings v
        JOIN unnest($1::text[], $2::uuid[]) AS k(user_id, content_id) USING (user_id, content_id)
        """,
        [u for u, _ in pairs],
        [c for _, c in pairs],
    )
    return {(r["user_id"], r["content_id"]): _viewing_state(r) for r in rows}


_SAVE_VIEWING = """
INSERT INTO sona_viewings (user_id, content_id, completion, counted, finished_count, rewatch,
                           rating, watched_at, watched_hour, engagement, rated_at, dismissed_at,
                           taste_weight, folded_weight, folded_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)
ON CONFLICT (user_id, content_id) DO UPDATE SET
    completion = EXCLUDED.completion, counted = EXCLUDED.counted,
    finished_count = EXCLUDED.finished_count, rewatch = EXCLUDED.rewatch,
    rating = EXCLUDED.rating, watched_at = EXCLUDED.watched_at,
    watched_hour = EXCLUDED.watched_hour, engagement = EXCLUDED.engagement,
    rated_at = EXCLUDED.rated_at, dismissed_at = EXCLUDED.dismissed_at,
    taste_weight = EXCLUDED.taste_weight, folded_weight = EXCLUDED.folded_weight,
    folded_at = EXCLUDED.folded_at
"""


async def save_viewings(
    conn: asyncpg.Connection, states: dict[tuple[str, uuid.UUID], ViewingState]
) -> None:
    await conn.executemany(
        _SAVE_VIEWING,
        [
            (
                user,
                content_id,
                s.completion,
                s.counted,
                s.finished_count,
                s.rewatch,
                s.rating,
                s.watched_at,
                s.watched_hour,
                s.engagement,
                s.rated_at,
                s.dismissed_at,
                s.taste_weight,
                s.folded_weight,
                s.folded_at,
            )
            for (user, content_id), s in states.items()
        ],
    )


async def training_rows(db: Db, user_id: str, limit: int) -> list[ViewingState]:
    """The user's rows that say something about their taste (a counted viewing, a rating, a
    dismissal), oldest first (the order training takes them in), at most the `limit` most
    recent."""
    rows = await db.fetch(
        """
        SELECT * FROM (
            SELECT * FROM sona_viewings
            WHERE user_id = $1 AND (counted OR rating IS NOT NULL OR dismissed_at IS NOT NULL)
            ORDER BY watched_at DESC, content_id LIMIT $2
        ) recent ORDER BY watched_at, content_id
        """,
        user_id,
        limit,
    )
    return [_viewing_state(r) for r in rows]


async def unfolded_rows(
    conn: asyncpg.Connection, ids: Collection[uuid.UUID]
) -> dict[tuple[str, uuid.UUID], ViewingState]:
    """Rows of these titles whose taste weight is not folded in yet (no vector when it
    changed)."""
    if not ids:
        return {}
    rows = await conn.fetch(
        """
        SELECT * FROM sona_viewings
        WHERE content_id = ANY($1::uuid[]) AND taste_weight <> folded_weight
        ORDER BY user_id, content_id
        """,
        list(ids),
    )
    return {(r["user_id"], r["content_id"]): _viewing_state(r) for r in rows}


async def most_liked_titles(db: Db, limit: int) -> list[tuple[uuid.UUID, int]]:
    """The titles most users here like, with how many: what the adapter's negatives are drawn
    from (agents/sona/pairs.py). An index scan (sona_title_viewers_most)."""
    rows = await db.fetch(
        "SELECT content_id, viewers FROM sona_title_viewers WHERE viewers > 0 "
        "ORDER BY viewers DESC, content_id LIMIT $1",
        limit,
    )
    return [(r["content_id"], r["viewers"]) for r in rows]


async def adjust_viewers(conn: asyncpg.Connection, changes: LikingChanges) -> None:
    """Add to each title's count of users who like it and to each user's count of titles they
    like (agents/sona/folding.liking_changes)."""
    if changes.by_title:
        ids = sorted(changes.by_title)
        await conn.execute(
            """
            INSERT INTO sona_title_viewers (content_id, viewers)
            SELECT id, n FROM unnest($1::uuid[], $2::int[]) AS d(id, n)
            ON CONFLICT (content_id) DO UPDATE
                SET viewers = greatest(sona_title_viewers.viewers + EXCLUDED.viewers, 0)
            """,
            ids,
            [changes.by_title[i] for i in ids],
        )
    if changes.by_user:
        users = sorted(changes.by_user)
        await conn.execute(
            """
            INSERT INTO sona_user_likes (user_id, liked)
            SELECT u, n FROM unnest($1::text[], $2::int[]) AS d(u, n)
            ON CONFLICT (user_id) DO UPDATE
                SET liked = greatest(sona_user_likes.liked + EXCLUDED.liked, 0)
            """,
            users,
            [changes.by_user[u] for u in users],
        )


# --- what other slices know ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TitleFacts:
    genres: tuple[str, ...]
    runtime_minutes: int | None


async def title_facts(db: Db, ids: Collection[uuid.UUID]) -> dict[uuid.UUID, TitleFacts]:
    if not ids:
        return {}
    rows = await db.fetch(
        """
        SELECT canonical_id,
               ARRAY(SELECT jsonb_array_elements_text(coalesce(doc->'genres', '[]'::jsonb)))
                   AS genres,
               (doc->>'runtime_minutes')::int AS runtime_minutes
        FROM content WHERE canonical_id = ANY($1::uuid[])
        """,
        list(ids),
    )
    return {r["canonical_id"]: TitleFacts(tuple(r["genres"]), r["runtime_minutes"]) for r in rows}


@dataclass(frozen=True, slots=True)
class Liked:
    """A title whose term is in the user's taste: its name, folded weight and time, and
    whether a rating put it there (else a viewing alone did)."""

    content_id: uuid.UUID
    title: str
    weight: float
    at: datetime
    rated: bool = False


async def liked_titles(db: Db, user_id: str, limit: int) -> list[Liked]:
    """The user's most recent titles with a positive term in their taste."""
    rows = await db.fetch(
        """
        SELECT v.content_id, c.title, v.folded_weight, coalesce(v.folded_at, v.watched_at) AS at,
               v.rating IS NOT NULL AS rated
        FROM sona_viewings v JOIN content c ON c.canonical_id = v.content_id
        WHERE v.user_id = $1 AND v.folded_weight > 0
        ORDER BY v.watched_at DESC, v.content_id LIMIT $2
        """,
        user_id,
        limit,
    )
    return [
        Liked(r["content_id"], r["title"], r["folded_weight"], r["at"], r["rated"]) for r in rows
    ]


async def title_names(db: Db, ids: Collection[uuid.UUID]) -> dict[uuid.UUID, str]:
    if not ids:
        return {}
    rows = await db.fetch(
        "SELECT canonical_id, title FROM content WHERE canonical_id = ANY($1::uuid[])", list(ids)
    )
    return {r["canonical_id"]: r["title"] for r in rows}


async def device_types(db: Db, pairs: Collection[tuple[str, str]]) -> dict[tuple[str, str], str]:
    """(user, device id) -> its registered device type (sync_devices), where known."""
    if not pairs:
        return {}
    rows = await db.fetch(
        """
        SELECT d.user_id, d.device_id, d.info->>'device_type' AS device_type
        FROM sync_devices d
        JOIN unnest($1::text[], $2::text[]) AS k(user_id, device_id) USING (user_id, device_id)
        WHERE d.info IS NOT NULL
        """,
        [u for u, _ in pairs],
        [d for _, d in pairs],
    )
    return {(r["user_id"], r["device_id"]): r["device_type"] for r in rows if r["device_type"]}


async def excluded_titles(db: Db, user_id: str) -> tuple[set[uuid.UUID], set[uuid.UUID]]:
    """(titles on the user's watchlist, titles they finished, rated or dismissed): never
    recommended again."""
    watchlist = await db.fetch(
        "SELECT content_id FROM sync_watchlist WHERE user_id = $1 AND visible", user_id
    )
    finished = await db.fetch(
        """
        SELECT content_id FROM sync_progress WHERE user_id = $1 AND complete
        UNION SELECT content_id FROM sona_viewings
        WHERE user_id = $1
          AND (finished_count > 0 OR rating IS NOT NULL OR dismissed_at IS NOT NULL)
        """,
        user_id,
    )
    return {r["content_id"] for r in watchlist}, {r["content_id"] for r in finished}


# --- the population layer ------------------------------------------------------------------------


async def population_histories(db: Db, per_user: int) -> dict[str, list[tuple[uuid.UUID, float]]]:
    """Every user's titles with a taste weight, oldest first, at most the latest `per_user`:
    what the population layer trains on (agents/sona/population.py)."""
    rows = await db.fetch(
        "SELECT user_id, content_id, taste_weight FROM ("
        " SELECT user_id, content_id, taste_weight, watched_at, row_number() OVER"
        "  (PARTITION BY user_id ORDER BY watched_at DESC, content_id) AS latest"
        " FROM sona_viewings WHERE taste_weight <> 0) r"
        " WHERE latest <= $1 ORDER BY user_id, watched_at, content_id",
        per_user,
    )
    histories: dict[str, list[tuple[uuid.UUID, float]]] = {}
    for r in rows:
        histories.setdefault(r["user_id"], []).append((r["content_id"], float(r["taste_weight"])))
    return histories


@dataclass(frozen=True, slots=True)
class StoredPopulation:
    version: int
    layer: PopulationLayer
    trained_at: datetime


def _population_blob(layer: PopulationLayer) -> bytes:
    parts = (layer.a.ravel(), layer.b.ravel(), layer.bias.ravel())
    return b"".join(np.asarray(p, dtype="<f4").tobytes() for p in parts)


async def save_population(
    conn: asyncpg.Connection, layer: PopulationLayer, triples: int, users: int, keep: int
) -> int:
    """Store a new version; versions before the latest `keep` are pruned."""
    rank, dim = layer.a.shape
    version: int = await conn.fetchval(
        "INSERT INTO sona_population_layers (dim, rank, weights, triples, users)"
        " VALUES ($1, $2, $3, $4, $5) RETURNING version",
        dim,
        rank,
        _population_blob(layer),
        triples,
        users,
    )
    await conn.execute("DELETE FROM sona_population_layers WHERE version <= $1", version - keep)
    return version


async def latest_population_version(db: Db, dim: int) -> int | None:
    """The latest layer's version alone, what each worker checks every minute before reading
    the layer again (the table keeps 3 rows; their ~50 KB blobs, stored out of line, are not
    read)."""
    version = await db.fetchval(
        "SELECT max(version) FROM sona_population_layers WHERE dim = $1",
        dim,
    )
    return int(version) if version is not None else None


async def latest_population(db: Db, dim: int) -> StoredPopulation | None:
    """The latest layer of this dimension (None: none trained yet, or the embedder changed)."""
    row = await db.fetchrow(
        "SELECT version, rank, weights, trained_at FROM sona_population_layers"
        " WHERE dim = $1 ORDER BY version DESC LIMIT 1",
        dim,
    )
    if row is None:
        return None
    rank = int(row["rank"])
    flat = np.frombuffer(row["weights"], dtype="<f4").astype(np.float32)
    if flat.size != 2 * rank * dim + dim or not np.isfinite(flat).all():
        raise ValueError(f"population layer v{row['version']} is corrupt ({flat.size} weights)")
    a = flat[: rank * dim].reshape(rank, dim)
    b = flat[rank * dim : 2 * rank * dim].reshape(rank, dim)
    layer = PopulationLayer(a=a, b=b, bias=flat[2 * rank * dim :])
    return StoredPopulation(int(row["version"]), layer, row["trained_at"])
