"""The catalog `mgw bench search` searches: N synthetic titles in PostgreSQL (through the titles
store, as the pipeline writes them) and synthetic vectors in the in-process vector store, plus
the queries it asks.

The vectors are not embeddings of the titles (embedding 100,000 texts would take the benchmark
most of an hour on this machine): each is the sum of its genres' random centroids plus noise,
normalized, so filters, neighbourhoods and the vector store's work are realistic while the
query vectors (from the real local model) land anywhere. The figures are latencies, not
relevance; tests/discovery measures relevance with real embeddings.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import asyncpg
import numpy as np

from agents.adapters.vectors.payload import content_payload
from agents.adapters.vectors.store import VectorPoint, VectorStore
from agents.ingestion.genres import CANONICAL_GENRES
from agents.titles.store import Versioned, upsert_contents
from schemas.content import CanonicalContent

PLATFORMS = ("netflix", "prime_video", "disney_plus", "hulu", "hbo_max", "apple_tv_plus")
REGIONS = ("US", "GB", "DE", "FR", "CA", "AU")
RATINGS = ("G", "PG", "PG-13", "R", "TV-14", "TV-MA")
ADJECTIVES = (
    "Silent Crimson Hidden Broken Golden Last Lost Dark Bright Wild Frozen Burning Secret "
    "Endless Quiet Savage Hollow Electric Iron Velvet Midnight Distant Fallen Rising"
).split()
NOUNS = (
    "River Empire Garden Signal Harbor Kingdom Machine Orchard Desert Island Tower Mirror "
    "Station Forest Circus Voyage Letter Winter Summer Horizon Engine Shadow Comet Canyon"
).split()
THEMES = (
    "heist revenge friendship betrayal survival family war love murder escape rebellion "
    "detective space robots dragons magic vampires zombies aliens treasure prison school "
    "music dance cooking sports ocean mountain jungle city village"
).split()
PLACES = "Paris Tokyo a small town the desert the north a space station Rome the coast".split(" ")
MOODS = "funny scary romantic uplifting thrilling sad relaxing spooky feel-good exciting".split()
DECADES = ("the 70s", "the 80s", "the 90s", "the 2000s", "the 2010s")
UPDATED = datetime(2026, 1, 1, tzinfo=UTC)
DIMENSION = 384
BATCH = 2000


def synthetic_content(n: int, seed: int = 7) -> Iterator[CanonicalContent]:
    rng = random.Random(seed)
    for i in range(n):
        genres = rng.sample(CANONICAL_GENRES, rng.choice((1, 2, 2, 3)))
        themes = rng.sample(THEMES, 3)
        offers = [
            {
                "platform": platform,
                "availability_type": "subscription",
                "regions": rng.sample(REGIONS, rng.randint(1, 3)),
            }
            for platform in rng.sample(PLATFORMS, rng.choice((1, 1, 2)))
        ]
        yield CanonicalContent.model_validate(
            {
                "canonical_id": str(uuid.UUID(int=i + 1)),
                "content_type": "movie" if i % 4 else "series",
                "title": f"The {rng.choice(ADJECTIVES)} {rng.choice(NOUNS)}"
                + (f" {rng.randint(2, 9)}" if i % 7 == 0 else ""),
                "description": (
                    f"A {rng.choice(MOODS)} story of {themes[0]} and {themes[1]} "
                    f"set in {rng.choice(PLACES)}, where {themes[2]} changes everything."
                ),
                "release_year": rng.randint(1950, 2025),
                "genres": genres,
                "keywords": themes,
                "maturity_rating": rng.choice(RATINGS),
                "average_rating": round(rng.uniform(3, 9.5), 1),
                "rating_count": rng.randint(0, 100_000),
                "popularity_score": round(rng.paretovariate(1.5), 3),
                "availability": offers,
                "updated_at": UPDATED.isoformat(),
            }
        )


def synthetic_vectors(contents: list[CanonicalContent], rng: np.random.Generator) -> np.ndarray:
    centroids = rng.standard_normal((len(CANONICAL_GENRES), DIMENSION)).astype(np.float32)
    index = {g: i for i, g in enumerate(CANONICAL_GENRES)}
    vectors = rng.standard_normal((len(contents), DIMENSION)).astype(np.float32) * 0.8
    for row, content in enumerate(contents):
        for genre in content.genres:
            vectors[row] += centroids[index[genre]]
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors


async def load_catalog(pool: asyncpg.Pool, vectors: VectorStore, n: int) -> list[str]:
    """Write n titles and their vectors; returns the titles (for queries that name one)."""
    rng = np.random.default_rng(11)
    titles: list[str] = []
    batch: list[CanonicalContent] = []
    for content in synthetic_content(n):
        batch.append(content)
        if len(batch) == BATCH:
            await _write(pool, vectors, batch, rng)
            titles.extend(c.title for c in batch)
            batch = []
    if batch:
        await _write(pool, vectors, batch, rng)
        titles.extend(c.title for c in batch)
    return titles


async def _write(
    pool: asyncpg.Pool,
    vectors: VectorStore,
    batch: list[CanonicalContent],
    rng: np.random.Generator,
) -> None:
    await upsert_contents(pool, [Versioned(c, uuid.uuid4()) for c in batch])
    matrix = synthetic_vectors(batch, rng)
    await vectors.upsert(
        [VectorPoint(c.canonical_id, matrix[i], content_payload(c)) for i, c in enumerate(batch)]
    )


def queries(n: int, titles: list[str], seed: int = 3) -> list[str]:
    """n different queries of the kinds users type: moods and themes, genres with a decade and
    a platform, 'like <title>', a title with a typo. Each is new to every cache."""
    rng = random.Random(seed)
    genres = [g.replace("_", " ") for g in CANONICAL_GENRES]
    platforms = ("netflix", "prime", "disney+", "hulu", "hbo", "apple tv+")
    kinds = (
        lambda: (
            f"something {rng.choice(MOODS)} about {rng.choice(THEMES)} and {rng.choice(THEMES)}"
        ),
        lambda: f"{rng.choice(genres)} from {rng.choice(DECADES)} on {rng.choice(platforms)}",
        lambda: f"{rng.choice(MOODS)} {rng.choice(genres)} like {rng.choice(titles)}",
        lambda: _typo(rng, rng.choice(titles)),
        lambda: f"{rng.choice(THEMES)} {rng.choice(THEMES)} in {rng.choice(PLACES)}",
    )
    out: dict[str, None] = {}
    while len(out) < n:
        out[kinds[len(out) % len(kinds)]()] = None
    return list(out)


def _typo(rng: random.Random, title: str) -> str:
    text = title.lower()
    i = rng.randrange(1, len(text) - 1)
    return text[:i] + text[i + 1] + text[i] + text[i + 2 :]
