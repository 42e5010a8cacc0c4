"""The embedded default: Qdrant's in-process engine (qdrant-edge-py) in a local directory.

The directory belongs to one process at a time (the engine locks its write-ahead log), so
in the embedded default every agent that reads or writes vectors runs in one worker.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import qdrant_edge as qe
from loguru import logger

from agents.adapters.vectors.store import (
    CONTENT_TYPE,
    DEFAULT_HNSW_EF,
    GENRES,
    INTEGER_FIELDS,
    KEYWORD_FIELDS,
    PLATFORMS,
    REGIONS,
    RELEASE_YEAR,
    ScoredPoint,
    VectorFilter,
    VectorPoint,
    VectorStore,
    as_vector,
    checked_payload,
)

T = TypeVar("T")


class VectorStoreLockedError(RuntimeError):
    """Another process has the store directory open."""


def edge_filter(flt: VectorFilter | None) -> qe.Filter | None:
    if flt is None or flt.is_empty():
        return None
    must: list[Any] = []
    for key, values in (
        (GENRES, flt.genres),
        (PLATFORMS, flt.platforms),
        (CONTENT_TYPE, flt.content_types),
        (REGIONS, flt.regions),
    ):
        if values:
            must.append(qe.FieldCondition(key, match=qe.MatchAny(list(values))))
    if flt.year_min is not None or flt.year_max is not None:
        must.append(
            qe.FieldCondition(RELEASE_YEAR, range=qe.RangeFloat(gte=flt.year_min, lte=flt.year_max))
        )
    must_not: list[Any] = []
    if flt.exclude_ids:
        must_not.append(qe.HasIdCondition(set(flt.exclude_ids)))
    if flt.exclude_genres:
        must_not.append(qe.FieldCondition(GENRES, match=qe.MatchAny(list(flt.exclude_genres))))
    return qe.Filter(must=must or None, must_not=must_not or None)


def _vector_of(record: Any) -> list[float]:
    vector = record.vector
    if isinstance(vector, dict):  # the default (unnamed) vector is keyed ""
        vector = vector[""]
    return vector


class EdgeVectorStore(VectorStore):
    def __init__(
        self,
        path: Path,
        dimension: int,
        hnsw_ef: int = DEFAULT_HNSW_EF,
        optimize_after: int | None = None,
    ) -> None:
        self.path = Path(path)
        self.dimension = dimension
        self._hnsw_ef = hnsw_ef
        # None: never build the HNSW graph on a write (see docs/VECTORS.md: the engine's scan
        # of unindexed points is ~1-2 ms at 20k points, a build of 20k takes ~10 s and
        # stalls searches meanwhile); call optimize() after a bulk load instead.
        self._optimize_after = optimize_after
        self._written_since_optimize = 0
        self._shard: qe.EdgeShard | None = None
        # The engine is synchronous: its calls run on one thread of our own, so the event
        # loop never waits on disk and calls never interleave inside the shard.
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="mgw-qdrant-edge")

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    def _config(self) -> qe.EdgeConfig:
        return qe.EdgeConfig(
            vectors=qe.EdgeVectorParams(size=self.dimension, distance=qe.Distance.Cosine)
        )

    def _open(self) -> None:
        if self._shard is not None:
            return
        exists = (self.path / "edge_config.json").exists()
        try:
            if exists:
                # With a config, load() refuses a shard of another vector size.
                shard = qe.EdgeShard.load(str(self.path), self._config())
            else:
                self.path.mkdir(parents=True, exist_ok=True)
                shard = qe.EdgeShard.create(str(self.path), self._config())
        except Exception as exc:
            text = str(exc)
            if "WouldBlock" in text:
                raise VectorStoreLockedError(
                    f"the vector store at {self.path} is open in another process: run every "
                    "agent that uses vectors in one worker process, or set QDRANT_URL"
                ) from exc
            if "ncompatible" in text:
                raise ValueError(
                    f"the vector store at {self.path} holds vectors of another size than "
                    f"EMBEDDING_DIMENSION={self.dimension}: {text}"
                ) from exc
            raise
        try:
            indexed = set(shard.info().payload_schema)
            wanted = [(name, qe.PayloadSchemaType.Keyword) for name in KEYWORD_FIELDS]
            wanted += [(name, qe.PayloadSchemaType.Integer) for name in INTEGER_FIELDS]
            for name, schema in wanted:
                if name not in indexed:
                    shard.update(qe.UpdateOperation.create_field_index(name, schema))
        except BaseException:
            shard.close()  # else the directory stays locked by a shard nobody holds
            raise
        self._shard = shard
        logger.info("vector store opened at {} ({} points)", self.path, self._count())

    def _require(self) -> qe.EdgeShard:
        if self._shard is None:
            self._open()
        assert self._shard is not None
        return self._shard

    async def ensure_collection(self) -> None:
        await self._run(self._open)

    def _upsert(self, points: list[qe.Point]) -> None:
        shard = self._require()
        shard.update(qe.UpdateOperation.upsert_points(points))
        self._written_since_optimize += len(points)
        if (
            self._optimize_after is not None
            and self._written_since_optimize >= self._optimize_after
        ):
            # Rebuilds the HNSW graph in this (vector) thread; searches wait for it.
            shard.optimize()
            self._written_since_optimize = 0

    async def upsert(self, points: Sequence[VectorPoint]) -> None:
        if not points:
            return
        prepared = [
            qe.Point(p.id, as_vector(p.vector, self.dimension).tolist(), checked_payload(p.payload))
            for p in points
        ]
        await self._run(self._upsert, prepared)

    async def delete(self, ids: Sequence[uuid.UUID]) -> None:
        if ids:
            op = qe.UpdateOperation.delete_points(list(ids))
            await self._run(lambda: self._require().update(op))

    async def search(
        self, vector: np.ndarray, top_k: int, filter: VectorFilter | None = None
    ) -> list[ScoredPoint]:
        if top_k <= 0:
            return []
        request = qe.QueryRequest(
            limit=top_k,
            query=qe.Query.Nearest(as_vector(vector, self.dimension).tolist()),
            filter=edge_filter(filter),
            with_payload=True,
            params=qe.SearchParams(hnsw_ef=self._hnsw_ef),
        )
        found = await self._run(lambda: self._require().query(request))
        return [
            ScoredPoint(uuid.UUID(str(p.id)), float(p.score), dict(p.payload or {})) for p in found
        ]

    def _count(self) -> int:
        return int(self._require().count(qe.CountRequest(exact=True)))

    async def count(self) -> int:
        return await self._run(self._count)

    async def get(
        self, ids: Sequence[uuid.UUID]
    ) -> dict[uuid.UUID, tuple[np.ndarray, dict[str, Any]]]:
        if not ids:
            return {}
        records = await self._run(
            lambda: self._require().retrieve(list(ids), with_payload=True, with_vector=True)
        )
        return {
            uuid.UUID(str(r.id)): (
                np.asarray(_vector_of(r), dtype=np.float32),
                dict(r.payload or {}),
            )
            for r in records
        }

    async def optimize(self) -> None:
        """Build the HNSW graph over everything written so far (blocks this store's thread)."""

        def run() -> None:
            self._require().optimize()
            self._written_since_optimize = 0

        await self._run(run)

    def _close(self) -> None:
        if self._shard is not None:
            self._shard.flush()
            self._shard.close()
            self._shard = None

    async def close(self) -> None:
        try:
            await self._run(self._close)
        finally:
            self._executor.shutdown(wait=False)
