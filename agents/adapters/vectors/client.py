"""Production: a Qdrant server through qdrant-client (tests run it in the client's local mode)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

import numpy as np
from qdrant_client import AsyncQdrantClient, models
from qdrant_client.http.exceptions import UnexpectedResponse

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

# Points per upsert request: keeps a request well under the server's 32 MB body limit
# (a 384-dim point with its payload is ~4-8 kB as JSON).
UPSERT_CHUNK = 512


def client_filter(flt: VectorFilter | None) -> models.Filter | None:
    if flt is None or flt.is_empty():
        return None
    must: list[models.Condition] = []
    for key, values in (
        (GENRES, flt.genres),
        (PLATFORMS, flt.platforms),
        (CONTENT_TYPE, flt.content_types),
        (REGIONS, flt.regions),
    ):
        if values:
            must.append(models.FieldCondition(key=key, match=models.MatchAny(any=list(values))))
    if flt.year_min is not None or flt.year_max is not None:
        must.append(
            models.FieldCondition(
                key=RELEASE_YEAR, range=models.Range(gte=flt.year_min, lte=flt.year_max)
            )
        )
    must_not: list[models.Condition] = []
    if flt.exclude_ids:
        must_not.append(models.HasIdCondition(has_id=[str(i) for i in flt.exclude_ids]))
    if flt.exclude_genres:
        must_not.append(
            models.FieldCondition(key=GENRES, match=models.MatchAny(any=list(flt.exclude_genres)))
        )
    return models.Filter(must=must or None, must_not=must_not or None)


def _vector_of(record: Any) -> list[float]:
    vector = record.vector
    if isinstance(vector, dict):
        vector = vector[""]
    return vector


class QdrantClientStore(VectorStore):
    def __init__(
        self,
        client: AsyncQdrantClient,
        collection: str,
        dimension: int,
        hnsw_ef: int = DEFAULT_HNSW_EF,
        payload_indexes: bool = True,
    ) -> None:
        self._client = client
        self.collection = collection
        self.dimension = dimension
        self._search_params = models.SearchParams(hnsw_ef=hnsw_ef)
        # The client's local mode ignores payload indexes (and warns about each).
        self._payload_indexes = payload_indexes

    async def ensure_collection(self) -> None:
        if not await self._client.collection_exists(self.collection):
            try:
                await self._client.create_collection(
                    self.collection,
                    vectors_config=models.VectorParams(
                        size=self.dimension, distance=models.Distance.COSINE
                    ),
                )
            except UnexpectedResponse as exc:
                # Another worker created it between our check and our create.
                if exc.status_code != 409:
                    raise
        info = await self._client.get_collection(self.collection)
        params = info.config.params.vectors
        size = params.size if isinstance(params, models.VectorParams) else None
        distance = params.distance if isinstance(params, models.VectorParams) else None
        if size != self.dimension or distance != models.Distance.COSINE:
            raise ValueError(
                f"Qdrant collection {self.collection!r} holds {distance} vectors of size {size}; "
                f"this deployment needs Cosine vectors of EMBEDDING_DIMENSION={self.dimension}"
            )
        if self._payload_indexes:
            schema = info.payload_schema or {}
            for name in KEYWORD_FIELDS:
                if name not in schema:
                    await self._client.create_payload_index(
                        self.collection, name, models.PayloadSchemaType.KEYWORD
                    )
            for name in INTEGER_FIELDS:
                if name not in schema:
                    await self._client.create_payload_index(
                        self.collection, name, models.PayloadSchemaType.INTEGER
                    )

    async def upsert(self, points: Sequence[VectorPoint]) -> None:
        structs = [
            models.PointStruct(
                id=str(p.id),
                vector=as_vector(p.vector, self.dimension).tolist(),
                payload=checked_payload(p.payload),
            )
            for p in points
        ]
        for start in range(0, len(structs), UPSERT_CHUNK):
            await self._client.upsert(
                self.collection, structs[start : start + UPSERT_CHUNK], wait=True
            )

    async def delete(self, ids: Sequence[uuid.UUID]) -> None:
        if ids:
            await self._client.delete(
                self.collection,
                models.PointIdsList(points=[str(i) for i in ids]),
                wait=True,
            )

    async def search(
        self, vector: np.ndarray, top_k: int, filter: VectorFilter | None = None
    ) -> list[ScoredPoint]:
        if top_k <= 0:
            return []
        response = await self._client.query_points(
            self.collection,
            query=as_vector(vector, self.dimension).tolist(),
            query_filter=client_filter(filter),
            search_params=self._search_params,
            limit=top_k,
            with_payload=True,
        )
        return [
            ScoredPoint(uuid.UUID(str(p.id)), float(p.score), dict(p.payload or {}))
            for p in response.points
        ]

    async def count(self) -> int:
        result = await self._client.count(self.collection, exact=True)
        return int(result.count)

    async def get(
        self, ids: Sequence[uuid.UUID]
    ) -> dict[uuid.UUID, tuple[np.ndarray, dict[str, Any]]]:
        if not ids:
            return {}
        records = await self._client.retrieve(
            self.collection, [str(i) for i in ids], with_payload=True, with_vectors=True
        )
        return {
            uuid.UUID(str(r.id)): (
                np.asarray(_vector_of(r), dtype=np.float32),
                dict(r.payload or {}),
            )
            for r in records
        }

    async def close(self) -> None:
        await self._client.close()
