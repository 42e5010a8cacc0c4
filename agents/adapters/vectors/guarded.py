"""A vector store whose calls go through the shared `qdrant` circuit breaker.

Used for the Qdrant server: when it fails repeatedly, every process stops calling it for the
breaker's open time instead of piling up timeouts (the agents wait and retry their batch).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

import numpy as np

from agents.adapters.vectors.store import ScoredPoint, VectorFilter, VectorPoint, VectorStore
from core.resilience import CircuitBreaker, breakers


class BreakerGuardedStore(VectorStore):
    def __init__(self, inner: VectorStore, breaker: CircuitBreaker | None = None) -> None:
        self._inner = inner
        self._breaker = breaker or breakers.get("qdrant")
        self.dimension = inner.dimension

    async def ensure_collection(self) -> None:
        async with self._breaker.guard():
            await self._inner.ensure_collection()

    async def upsert(self, points: Sequence[VectorPoint]) -> None:
        async with self._breaker.guard():
            await self._inner.upsert(points)

    async def delete(self, ids: Sequence[uuid.UUID]) -> None:
        async with self._breaker.guard():
            await self._inner.delete(ids)

    async def search(
        self, vector: np.ndarray, top_k: int, filter: VectorFilter | None = None
    ) -> list[ScoredPoint]:
        async with self._breaker.guard():
            return await self._inner.search(vector, top_k, filter)

    async def count(self) -> int:
        async with self._breaker.guard():
            return await self._inner.count()

    async def get(
        self, ids: Sequence[uuid.UUID]
    ) -> dict[uuid.UUID, tuple[np.ndarray, dict[str, Any]]]:
        async with self._breaker.guard():
            return await self._inner.get(ids)

    async def close(self) -> None:
        await self._inner.close()
