"""Query latency of the two vector store backends on a synthetic catalog.

    python -m devtools.bench.vectors 20000

Numbers go to docs/VECTORS.md; not a test (timings depend on the machine's load).
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np

from agents.adapters.vectors.store import VectorFilter, VectorPoint, VectorStore, matches

GENRE_NAMES = (
    "action adventure animation comedy crime documentary drama family fantasy history "
    "horror music mystery romance science_fiction thriller war western"
).split()
PLATFORM_NAMES = "netflix prime_video hulu disney_plus hbo_max apple_tv peacock paramount".split()


def synthetic_points(n: int, dimension: int, seed: int = 1) -> list[VectorPoint]:
    rng = np.random.default_rng(seed)
    vectors = rng.standard_normal((n, dimension)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    points = []
    for i in range(n):
        payload = {
            "title": f"title {i}",
            "content_type": "movie" if i % 3 else "series",
            "genres": sorted(set(rng.choice(GENRE_NAMES, size=2).tolist())),
            "platforms": sorted(set(rng.choice(PLATFORM_NAMES, size=2).tolist())),
            "regions": ["US"],
            "release_year": int(rng.integers(1950, 2026)),
        }
        points.append(VectorPoint(uuid.UUID(int=i + 1), vectors[i], payload))
    return points


async def _measure(
    store: VectorStore, queries: np.ndarray, flt: VectorFilter | None, top_k: int
) -> list[float]:
    times = []
    for query in queries:
        started = time.perf_counter()
        await store.search(query, top_k, flt)
        times.append(time.perf_counter() - started)
    return times


def _summary(times: list[float]) -> dict[str, float]:
    ordered = sorted(times)
    return {
        "p50_ms": round(statistics.median(ordered) * 1000, 3),
        "p99_ms": round(ordered[int(len(ordered) * 0.99) - 1] * 1000, 3),
    }


async def _recall(
    store: VectorStore,
    points: list[VectorPoint],
    queries: np.ndarray,
    flt: VectorFilter,
    top_k: int,
) -> float:
    allowed = [p for p in points if matches(flt, p.id, p.payload)]
    matrix = np.stack([p.vector for p in allowed])
    hits = 0
    for query in queries:
        exact = {allowed[i].id for i in np.argsort(-(matrix @ query))[:top_k]}
        found = {p.id for p in await store.search(query, top_k, flt)}
        hits += len(exact & found)
    return round(hits / (len(queries) * top_k), 4)


async def bench_store(
    name: str,
    store: VectorStore,
    points: list[VectorPoint],
    n_queries: int,
    top_k: int = 50,
    load: bool = True,
) -> dict[str, Any]:
    await store.ensure_collection()
    started = time.perf_counter()
    if load:
        for offset in range(0, len(points), 1000):
            await store.upsert(points[offset : offset + 1000])
    load_s = time.perf_counter() - started
    rng = np.random.default_rng(2)
    queries = rng.standard_normal((n_queries, store.dimension)).astype(np.float32)
    flt = VectorFilter(genres=["drama", "comedy"], year_min=1990, year_max=2015)
    result: dict[str, Any] = {
        "store": name,
        "points": await store.count(),
        "upsert_s": round(load_s, 2),
        "no_filter": _summary(await _measure(store, queries, None, top_k)),
        "filter": _summary(await _measure(store, queries, flt, top_k)),
        "filter_recall_at_50": await _recall(store, points, queries[:20], flt, top_k),
    }
    print(result, flush=True)
    return result


async def bench_vector_stores(n: int = 20_000, n_queries: int = 200) -> list[dict[str, Any]]:
    from qdrant_client import AsyncQdrantClient

    from agents.adapters.vectors.client import QdrantClientStore
    from agents.adapters.vectors.edge import EdgeVectorStore

    dimension = 384
    points = synthetic_points(n, dimension)
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        # The first run measures the engine's scan of unindexed points, the second the
        # same data after an HNSW build.
        edge = EdgeVectorStore(Path(tmp) / "content", dimension)
        try:
            results.append(await bench_store("edge (no HNSW yet)", edge, points, n_queries))
            started = time.perf_counter()
            await edge.optimize()
            print(f"edge optimize (HNSW build): {time.perf_counter() - started:.2f} s")
            results.append(await bench_store("edge (HNSW)", edge, points, n_queries, load=False))
        finally:
            await edge.close()
    client = QdrantClientStore(
        AsyncQdrantClient(location=":memory:"), "content", dimension, payload_indexes=False
    )
    try:
        results.append(await bench_store("qdrant-client local mode", client, points, n_queries))
    finally:
        await client.close()
    return results


if __name__ == "__main__":
    asyncio.run(bench_vector_stores(int(sys.argv[1]) if len(sys.argv) > 1 else 20_000))
