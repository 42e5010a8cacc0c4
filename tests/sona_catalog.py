"""A small catalog for the SONA integration and end-to-end tests: titles of a few genres with
runtimes, regions and popularity, stored as the titles store writes them, and vectors that
cluster by genre (as real embeddings of such titles would), written to a vector store."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg
import numpy as np

from agents.adapters.vectors.payload import content_payload
from agents.adapters.vectors.store import VectorPoint, VectorStore
from agents.titles.store import Versioned, upsert_contents
from schemas.content import CanonicalContent

UPDATED = datetime(2026, 1, 1, tzinfo=UTC)
DIM = 384


@dataclass(frozen=True)
class Title:
    title: str
    genre: str
    runtime: int
    popularity: float
    regions: tuple[str, ...] = ("US",)

    @property
    def canonical_id(self) -> uuid.UUID:
        return uuid.uuid5(uuid.NAMESPACE_URL, f"mgw-test-sona/{self.title}")

    def content(self) -> CanonicalContent:
        data: dict[str, Any] = {
            "canonical_id": str(self.canonical_id),
            "content_type": "movie",
            "title": self.title,
            "genres": [self.genre],
            "runtime_minutes": self.runtime,
            "popularity_score": self.popularity,
            "availability": [
                {
                    "platform": "netflix",
                    "availability_type": "subscription",
                    "regions": list(self.regions),
                }
            ],
            "updated_at": UPDATED.isoformat(),
        }
        return CanonicalContent.model_validate(data)


def _titles() -> list[Title]:
    out: list[Title] = []
    # Popularity: dramas and action lead, so a personal ranking has to overcome it.
    plan = {
        "comedy": (24, 5.0),
        "documentary": (16, 5.0),
        "horror": (6, 20.0),
        "thriller": (6, 20.0),
        "drama": (10, 60.0),
        "action": (10, 80.0),
    }
    for genre, (count, popularity) in plan.items():
        for i in range(count):
            # Alternate short (episodes, 25 min) and long (feature, 110 min) titles.
            runtime = 25 if i % 2 == 0 else 110
            out.append(Title(f"{genre} {i:02d}", genre, runtime, popularity + i))
    out.append(Title("gb only drama", "drama", 110, 500.0, regions=("GB",)))
    return out


CATALOG = _titles()
BY_GENRE: dict[str, list[Title]] = {}
for _t in CATALOG:
    BY_GENRE.setdefault(_t.genre, []).append(_t)
GENRE_OF = {t.canonical_id: t.genre for t in CATALOG}


def vectors(dim: int = DIM, seed: int = 14) -> dict[uuid.UUID, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = {g: rng.standard_normal(dim) for g in BY_GENRE}
    out = {}
    for t in CATALOG:
        v = centres[t.genre] / np.linalg.norm(centres[t.genre])
        # Noise of norm ~0.7: titles of a genre are alike (cosine ~0.7), not identical.
        v = v + 0.035 * rng.standard_normal(dim)
        out[t.canonical_id] = (v / np.linalg.norm(v)).astype(np.float32)
    return out


async def seed(pool: asyncpg.Pool, store: VectorStore) -> None:
    contents = [t.content() for t in CATALOG]
    await upsert_contents(pool, [Versioned(c, uuid.uuid4()) for c in contents])
    vecs = vectors(store.dimension)
    await store.upsert(
        [VectorPoint(c.canonical_id, vecs[c.canonical_id], content_payload(c)) for c in contents]
    )
