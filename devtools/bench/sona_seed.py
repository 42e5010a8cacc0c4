"""What `mgw bench sona` measures against: a catalog of synthetic titles with runtimes and
vectors, and users whose profiles, viewings and adapters were made by the real training
handler from progress reports (not written by hand), so every table holds what production
would hold after those users watched.

The catalog is devtools/bench/search_catalog.py's (genre-centroid vectors, regions, Pareto
popularity) with a runtime per title, so the device's runtime bounds have work to do. Each
user has two favourite genres, a habit of watching in the morning, the afternoon or the
evening, and finishes `VIEWINGS_PER_USER` titles of those genres: one training round each.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np

from agents.adapters.vectors.payload import content_payload
from agents.adapters.vectors.store import VectorPoint
from agents.framework.context import AgentContext
from agents.sona.handlers import train_from_progress
from agents.sync.clock import to_physical_us
from agents.titles.store import Versioned, upsert_contents
from devtools.bench.search_catalog import BATCH, synthetic_content, synthetic_vectors
from schemas.content import CanonicalContent
from schemas.envelope import Envelope, wrap
from schemas.sync import HLC, ProgressUpdate

# More than SONA_MIN_TRAINING_EVENTS (10): each user's adapter is trained once, on all of them.
VIEWINGS_PER_USER = 12
USERS_PER_BATCH = 25
RUNTIMES = (22, 25, 45, 55, 95, 110, 130)
HABITS = ((7, 11), (13, 17), (19, 23))
FIRST_DAY = datetime(2026, 10, 1, tzinfo=UTC)


def _with_runtime(content: CanonicalContent, rng: random.Random) -> CanonicalContent:
    return content.model_copy(update={"runtime_minutes": rng.choice(RUNTIMES)})


async def seed_catalog(ctx: AgentContext, titles: int) -> tuple[list[CanonicalContent], np.ndarray]:
    rng = random.Random(5)
    vector_rng = np.random.default_rng(11)
    store = await ctx.vectors()
    contents = [_with_runtime(c, rng) for c in synthetic_content(titles)]
    matrices = []
    for start in range(0, len(contents), BATCH):
        batch = contents[start : start + BATCH]
        await upsert_contents(ctx.pool, [Versioned(c, uuid.uuid4()) for c in batch])
        matrix = synthetic_vectors(batch, vector_rng)
        await store.upsert(
            [
                VectorPoint(c.canonical_id, matrix[i], content_payload(c))
                for i, c in enumerate(batch)
            ]
        )
        matrices.append(matrix)
    await ctx.pool.execute("ANALYZE content")
    return contents, np.concatenate(matrices)


def _progress(user: str, content_id: uuid.UUID, at: datetime) -> Envelope[Any]:
    payload = ProgressUpdate(
        user_id=user,
        content_id=content_id,
        position_seconds=3600,
        duration_seconds=3600,
        state="stopped",
        timestamp=HLC(physical_us=to_physical_us(at)),
        device_id="tv-1",
    )
    return wrap(payload, key=user, source="bench-sona", correlation_id=f"seed-{user}")


def viewing_events(contents: list[CanonicalContent], users: list[str]) -> list[Envelope[Any]]:
    """Each user finishing VIEWINGS_PER_USER titles of two favourite genres at their usual
    hours, a day apart."""
    rng = random.Random(17)
    by_genre: dict[str, list[uuid.UUID]] = {}
    for c in contents:
        for genre in c.genres:
            by_genre.setdefault(genre, []).append(c.canonical_id)
    genres = sorted(g for g, ids in by_genre.items() if len(ids) >= VIEWINGS_PER_USER)
    events = []
    for n, user in enumerate(users):
        favourites = rng.sample(genres, 2)
        pool = sorted({cid for g in favourites for cid in by_genre[g]})
        first, last = HABITS[n % len(HABITS)]
        for day, cid in enumerate(rng.sample(pool, VIEWINGS_PER_USER)):
            at = FIRST_DAY + timedelta(days=day, hours=rng.randint(first, last))
            events.append(_progress(user, cid, at))
    return events


async def seed_users(
    ctx: AgentContext,
    contents: list[CanonicalContent],
    count: int,
    progress: Callable[[int], None] = lambda _: None,
) -> list[str]:
    """`count` users trained through the real handler, USERS_PER_BATCH users per batch."""
    users = [f"bench-{n:05d}" for n in range(count)]
    events = viewing_events(contents, users)
    step = USERS_PER_BATCH * VIEWINGS_PER_USER
    for start in range(0, len(events), step):
        await train_from_progress(ctx, events[start : start + step])
        progress(min(count, (start + step) // VIEWINGS_PER_USER))
    return users
