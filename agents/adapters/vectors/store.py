"""The vector store interface: one collection of content vectors, cosine distance.

Two backends sit behind it: `edge.EdgeVectorStore` (the in-process Qdrant engine, the
embedded default) and `client.QdrantClientStore` (a Qdrant server through qdrant-client,
production). Point ids are the content UUIDs, so writing a title again replaces it.
"""

from __future__ import annotations

import math
import uuid
from abc import ABC, abstractmethod
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson

# Payload fields the filters read; each has a payload index in both backends.
GENRES = "genres"
PLATFORMS = "platforms"
REGIONS = "regions"
CONTENT_TYPE = "content_type"
RELEASE_YEAR = "release_year"
KEYWORD_FIELDS = (GENRES, PLATFORMS, REGIONS, CONTENT_TYPE)
INTEGER_FIELDS = (RELEASE_YEAR,)

# Search quality/speed trade-off of the HNSW graph walk (docs/RULES.md: vector top_k 50, ef 64).
DEFAULT_HNSW_EF = 64


@dataclass(frozen=True)
class VectorPoint:
    id: uuid.UUID
    vector: np.ndarray
    payload: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ScoredPoint:
    id: uuid.UUID
    score: float
    payload: dict[str, Any]


@dataclass(frozen=True)
class VectorFilter:
    """Conditions a point must meet; all given conditions must hold.

    The `*_any` style fields match when the payload list shares at least one value with
    the filter's; an empty sequence sets no condition (it does not match nothing). The year
    range is inclusive, and a point without a release year fails any year bound.
    """

    genres: Sequence[str] = ()
    platforms: Sequence[str] = ()
    content_types: Sequence[str] = ()
    regions: Sequence[str] = ()
    year_min: int | None = None
    year_max: int | None = None
    exclude_ids: Collection[uuid.UUID] = ()
    exclude_genres: Sequence[str] = ()

    def is_empty(self) -> bool:
        return not (
            self.genres
            or self.platforms
            or self.content_types
            or self.regions
            or self.exclude_ids
            or self.exclude_genres
            or self.year_min is not None
            or self.year_max is not None
        )


def _values(payload: Mapping[str, Any], key: str) -> set[Any]:
    value = payload.get(key)
    if value is None:
        return set()
    if isinstance(value, list | tuple):
        return set(value)
    return {value}


def matches(flt: VectorFilter | None, point_id: uuid.UUID, payload: Mapping[str, Any]) -> bool:
    """The filter's meaning in plain Python (what both backends are tested against, and
    what a caller uses to filter after an over-fetch)."""
    if flt is None:
        return True
    if point_id in set(flt.exclude_ids):
        return False
    for key, wanted in (
        (GENRES, flt.genres),
        (PLATFORMS, flt.platforms),
        (CONTENT_TYPE, flt.content_types),
        (REGIONS, flt.regions),
    ):
        if wanted and not (_values(payload, key) & set(wanted)):
            return False
    if flt.exclude_genres and _values(payload, GENRES) & set(flt.exclude_genres):
        return False
    if flt.year_min is not None or flt.year_max is not None:
        year = payload.get(RELEASE_YEAR)
        if not isinstance(year, int | float) or isinstance(year, bool):
            return False
        if flt.year_min is not None and year < flt.year_min:
            return False
        if flt.year_max is not None and year > flt.year_max:
            return False
    return True


def as_vector(vector: np.ndarray | Sequence[float], dimension: int) -> np.ndarray:
    """A 1-d float32 vector of the store's dimension, finite and not all zero."""
    array = np.asarray(vector, dtype=np.float32)
    if array.shape != (dimension,):
        raise ValueError(f"vector has shape {array.shape}, the store holds ({dimension},)")
    if not np.all(np.isfinite(array)):
        raise ValueError("vector has NaN or infinite values")
    norm = float(np.linalg.norm(array))
    if norm == 0.0 or not math.isfinite(norm):
        raise ValueError("a zero vector has no direction to compare by cosine")
    return array


def checked_payload(payload: Mapping[str, Any]) -> dict[str, Any]:
    """A plain JSON-able dict (both backends must be given the same thing)."""
    try:
        orjson.dumps(payload)
    except TypeError as exc:
        raise ValueError(f"payload is not JSON-able: {exc}") from None
    return dict(payload)


class VectorStore(ABC):
    """One collection of unit-normalized vectors (cosine), keyed by content UUID."""

    dimension: int

    @abstractmethod
    async def ensure_collection(self) -> None:
        """Create the collection and its payload indexes if missing; check the dimension."""

    @abstractmethod
    async def upsert(self, points: Sequence[VectorPoint]) -> None:
        """Insert or replace (vector and whole payload) each point; searchable on return."""

    @abstractmethod
    async def delete(self, ids: Sequence[uuid.UUID]) -> None:
        """Remove points; unknown ids are ignored."""

    @abstractmethod
    async def search(
        self,
        vector: np.ndarray,
        top_k: int,
        filter: VectorFilter | None = None,
    ) -> list[ScoredPoint]:
        """The top_k points nearest by cosine that pass the filter, best first."""

    @abstractmethod
    async def count(self) -> int: ...

    @abstractmethod
    async def get(
        self, ids: Sequence[uuid.UUID]
    ) -> dict[uuid.UUID, tuple[np.ndarray, dict[str, Any]]]:
        """Stored (unit vector, payload) by id; ids not stored are left out."""

    @abstractmethod
    async def close(self) -> None: ...
