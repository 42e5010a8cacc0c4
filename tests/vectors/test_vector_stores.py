"""One set of tests, run against both vector store backends: the in-process Qdrant engine
(qdrant-edge-py, in tmp_path) and qdrant-client (its local mode, in memory)."""

from __future__ import annotations

import asyncio
import sys
import textwrap
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from qdrant_client import AsyncQdrantClient

from agents.adapters.vectors.client import QdrantClientStore
from agents.adapters.vectors.edge import EdgeVectorStore, VectorStoreLockedError
from agents.adapters.vectors.factory import create_vector_store
from agents.adapters.vectors.guarded import BreakerGuardedStore
from agents.adapters.vectors.payload import content_payload
from agents.adapters.vectors.store import (
    ScoredPoint,
    VectorFilter,
    VectorPoint,
    VectorStore,
    matches,
)
from core.config import EmbeddingSettings, QdrantSettings, load_settings
from schemas.content import CanonicalContent, ContentType, PlatformAvailability

DIM = 16
GENRES = ["drama", "comedy", "horror", "science_fiction", "documentary"]
PLATFORMS = ["netflix", "hulu", "prime_video"]
TYPES = ["movie", "series", "documentary"]

# qdrant-client local mode warns that it ignores payload indexes and HNSW parameters.
pytestmark = [
    pytest.mark.filterwarnings("ignore:Payload indexes have no effect"),
    pytest.mark.filterwarnings("ignore:Local mode performs exact"),
]


def unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v)


def catalog(n: int = 60, seed: int = 3) -> list[VectorPoint]:
    """Points with varied payloads: every filter below selects some, but not all."""
    rng = np.random.default_rng(seed)
    points = []
    for i in range(n):
        payload: dict[str, Any] = {
            "title": f"title {i}",
            "content_type": TYPES[i % 3],
            "genres": sorted({GENRES[i % 5], GENRES[(i * 7) % 5]}),
            "platforms": [] if i % 10 == 0 else sorted({PLATFORMS[i % 3], PLATFORMS[i % 2]}),
            "regions": ["US"] if i % 4 else ["US", "GB"],
            # Every 9th has no year: it must fail any year bound.
            "release_year": None if i % 9 == 0 else 1960 + i,
        }
        vector = rng.standard_normal(DIM).astype(np.float32) * rng.uniform(0.5, 3)
        points.append(VectorPoint(uuid.UUID(int=i + 1), vector, payload))
    return points


def exact_top(
    points: list[VectorPoint], query: np.ndarray, flt: VectorFilter | None, k: int
) -> list[tuple[uuid.UUID, float]]:
    allowed = [p for p in points if matches(flt, p.id, p.payload)]
    scored = [(p.id, float(unit(p.vector) @ unit(query))) for p in allowed]
    return sorted(scored, key=lambda item: -item[1])[:k]


@pytest.fixture(params=["edge", "client"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[VectorStore]:
    if request.param == "edge":
        backend: VectorStore = EdgeVectorStore(tmp_path / "content", DIM)
    else:
        backend = QdrantClientStore(AsyncQdrantClient(location=":memory:"), "content", DIM)
    await backend.ensure_collection()
    await backend.ensure_collection()  # a second call is harmless
    yield backend
    await backend.close()


async def snapshot(store: VectorStore, ids: list[uuid.UUID]) -> dict[uuid.UUID, Any]:
    return {i: (vec.tolist(), payload) for i, (vec, payload) in (await store.get(ids)).items()}


async def test_upsert_get_round_trip(store: VectorStore) -> None:
    points = catalog(20)
    await store.upsert(points)
    assert await store.count() == 20
    stored = await store.get([p.id for p in points] + [uuid.uuid4()])
    assert set(stored) == {p.id for p in points}
    for point in points:
        vector, payload = stored[point.id]
        assert vector.dtype == np.float32
        np.testing.assert_allclose(vector, unit(point.vector), atol=1e-6)
        assert payload == point.payload


async def test_reupsert_leaves_the_store_as_it_was(store: VectorStore) -> None:
    points = catalog(30)
    ids = [p.id for p in points]
    await store.upsert(points)
    before = await snapshot(store, ids)
    await store.upsert(points)
    await store.upsert(points[:7])
    assert await store.count() == 30
    after = await snapshot(store, ids)
    assert {i: payload for i, (_, payload) in after.items()} == {
        i: payload for i, (_, payload) in before.items()
    }
    if isinstance(store, EdgeVectorStore):
        assert after == before  # bit for bit
    else:
        # qdrant-client's local mode normalizes a new point in float32 but an updated one in
        # float64, so a re-upsert can move a component by one float32 ulp.
        for i in ids:
            np.testing.assert_allclose(after[i][0], before[i][0], atol=1e-6)


async def test_update_replaces_vector_and_whole_payload(store: VectorStore) -> None:
    point = catalog(1)[0]
    await store.upsert([point])
    new_vector = np.arange(1, DIM + 1, dtype=np.float32)
    new_payload = {"title": "renamed", "genres": ["horror"]}
    await store.upsert([VectorPoint(point.id, new_vector, new_payload)])
    [(vector, payload)] = (await store.get([point.id])).values()
    assert payload == new_payload  # old keys are gone, not merged
    np.testing.assert_allclose(vector, unit(new_vector), atol=1e-6)
    assert await store.count() == 1


FILTERS = {
    "genre": VectorFilter(genres=["horror"]),
    "two genres": VectorFilter(genres=["horror", "documentary"]),
    "platform": VectorFilter(platforms=["hulu"]),
    "type": VectorFilter(content_types=["series", "documentary"]),
    "region": VectorFilter(regions=["GB"]),
    "years": VectorFilter(year_min=1975, year_max=1995),
    "from year": VectorFilter(year_min=2000),
    "until year": VectorFilter(year_max=1970),
    "exclude ids": VectorFilter(exclude_ids={uuid.UUID(int=i) for i in range(1, 40)}),
    "blocked genre": VectorFilter(exclude_genres=["drama"]),
    "combined": VectorFilter(
        genres=["comedy", "drama"],
        platforms=["netflix"],
        year_min=1965,
        year_max=2010,
        exclude_ids={uuid.UUID(int=12)},
    ),
    "empty": VectorFilter(),
}


@pytest.mark.parametrize("name", list(FILTERS))
async def test_filters_select_exactly_the_matching_points(store: VectorStore, name: str) -> None:
    flt = FILTERS[name]
    points = catalog()
    await store.upsert(points)
    query = np.random.default_rng(11).standard_normal(DIM).astype(np.float32)
    expected = exact_top(points, query, flt, k=len(points))
    assert 0 < len(expected) <= len(points)
    if not flt.is_empty():
        assert len(expected) < len(points)  # the filter really filters this catalog
    found = await store.search(query, top_k=len(points), filter=flt)
    assert [p.id for p in found] == [i for i, _ in expected]
    for point in found:
        assert matches(flt, point.id, point.payload)


async def test_top_k_is_ordered_by_cosine(store: VectorStore) -> None:
    points = catalog()
    await store.upsert(points)
    query = np.random.default_rng(5).standard_normal(DIM).astype(np.float32) * 7
    found = await store.search(query, top_k=10)
    expected = exact_top(points, query, None, k=10)
    assert [p.id for p in found] == [i for i, _ in expected]
    np.testing.assert_allclose([p.score for p in found], [s for _, s in expected], atol=1e-5)
    assert all(isinstance(p, ScoredPoint) for p in found)
    assert found[0].payload == next(p.payload for p in points if p.id == found[0].id)
    # The nearest point to a stored vector is that point, with cosine 1.
    [best] = await store.search(points[4].vector, top_k=1)
    assert best.id == points[4].id and best.score == pytest.approx(1.0, abs=1e-5)
    assert await store.search(query, top_k=0) == []


async def test_delete(store: VectorStore) -> None:
    points = catalog(10)
    await store.upsert(points)
    gone = [points[0].id, points[5].id]
    await store.delete([*gone, uuid.uuid4()])  # an unknown id is ignored
    await store.delete([])
    assert await store.count() == 8
    assert set(await store.get(gone)) == set()
    found = await store.search(points[0].vector, top_k=10)
    assert {p.id for p in found} == {p.id for p in points} - set(gone)


async def test_bad_vectors_and_payloads_are_refused(store: VectorStore) -> None:
    good = np.ones(DIM, dtype=np.float32)
    for vector in (np.ones(DIM + 1), np.zeros(DIM), np.full(DIM, np.nan)):
        with pytest.raises(ValueError):
            await store.upsert([VectorPoint(uuid.uuid4(), vector, {})])
        with pytest.raises(ValueError):
            await store.search(vector, top_k=3)
    with pytest.raises(ValueError, match="JSON"):
        await store.upsert([VectorPoint(uuid.uuid4(), good, {"when": object()})])
    assert await store.count() == 0


async def test_edge_store_persists_and_reopens(tmp_path: Path) -> None:
    path = tmp_path / "content"
    points = catalog(25)
    first = EdgeVectorStore(path, DIM)
    await first.ensure_collection()
    await first.upsert(points)
    await first.delete([points[0].id])
    before = await snapshot(first, [p.id for p in points])
    # The directory belongs to one process at a time; a second opener is told why.
    with pytest.raises(VectorStoreLockedError, match="another process"):
        second = EdgeVectorStore(path, DIM)
        try:
            await second.ensure_collection()
        finally:
            await second.close()
    await first.close()

    reopened = EdgeVectorStore(path, DIM)
    await reopened.ensure_collection()
    try:
        assert await reopened.count() == 24
        assert await snapshot(reopened, [p.id for p in points]) == before
        found = await reopened.search(points[3].vector, 5, VectorFilter(genres=["comedy"]))
        assert [p.id for p in found] == [
            i
            for i, _ in exact_top(points[1:], points[3].vector, VectorFilter(genres=["comedy"]), 5)
        ]
    finally:
        await reopened.close()

    wrong_size = EdgeVectorStore(path, DIM * 2)
    with pytest.raises(ValueError, match="EMBEDDING_DIMENSION"):
        await wrong_size.ensure_collection()
    await wrong_size.close()


_WRITER = textwrap.dedent(
    """
    import asyncio, sys, uuid
    from pathlib import Path
    import numpy as np
    from agents.adapters.vectors.edge import EdgeVectorStore
    from agents.adapters.vectors.store import VectorPoint

    async def main() -> None:
        store = EdgeVectorStore(Path(sys.argv[1]), int(sys.argv[2]))
        await store.ensure_collection()
        points = [
            VectorPoint(uuid.UUID(int=i + 1), np.arange(1, 1 + int(sys.argv[2])) + i, {"i": i})
            for i in range(50)
        ]
        await store.upsert(points)
        print("ready", flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)

    asyncio.run(main())
    """
)


async def test_edge_store_belongs_to_one_process_and_survives_sigkill(tmp_path: Path) -> None:
    path = tmp_path / "content"
    writer = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        _WRITER,
        str(path),
        str(DIM),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert writer.stdout is not None
        line = await asyncio.wait_for(writer.stdout.readline(), timeout=60)
        assert line.strip() == b"ready"
        other = EdgeVectorStore(path, DIM)
        with pytest.raises(VectorStoreLockedError, match="another process"):
            await other.ensure_collection()
        await other.close()
    finally:
        writer.kill()  # SIGKILL: no close(), no flush()
        await writer.wait()

    reopened = EdgeVectorStore(path, DIM)
    await reopened.ensure_collection()
    try:
        assert await reopened.count() == 50
        stored = await reopened.get([uuid.UUID(int=50)])
        vector, payload = stored[uuid.UUID(int=50)]
        assert payload == {"i": 49}
        np.testing.assert_allclose(vector, unit(np.arange(1, DIM + 1) + 49.0), atol=1e-6)
    finally:
        await reopened.close()


async def test_edge_hnsw_build_keeps_results(tmp_path: Path) -> None:
    points = catalog(200, seed=9)
    store = EdgeVectorStore(tmp_path / "content", DIM, optimize_after=150)
    await store.ensure_collection()
    try:
        await store.upsert(points[:100])
        await store.upsert(points[100:])  # crosses optimize_after: builds the graph
        await store.optimize()
        query = np.random.default_rng(1).standard_normal(DIM).astype(np.float32)
        flt = VectorFilter(genres=["drama"], year_min=1970)
        found = await store.search(query, 10, flt)
        assert [p.id for p in found] == [i for i, _ in exact_top(points, query, flt, 10)]
        assert await store.count() == 200
    finally:
        await store.close()


async def test_client_store_refuses_a_collection_of_another_size() -> None:
    client = AsyncQdrantClient(location=":memory:")
    try:
        await QdrantClientStore(client, "content", DIM).ensure_collection()
        with pytest.raises(ValueError, match="EMBEDDING_DIMENSION=32"):
            await QdrantClientStore(client, "content", 32).ensure_collection()
    finally:
        await client.close()


async def test_factory_picks_the_backend(tmp_path: Path) -> None:
    base = load_settings(env_file=tmp_path / "absent.env").model_copy(
        update={"embedding": EmbeddingSettings(dimension=384, provider="local")}
    )
    local = base.model_copy(update={"qdrant": QdrantSettings(url=None, path=tmp_path / "q")})
    edge = create_vector_store(local)
    assert isinstance(edge, EdgeVectorStore)
    assert edge.path == tmp_path / "q" / "content" and edge.dimension == 384
    await edge.close()
    server = base.model_copy(
        update={"qdrant": QdrantSettings(url="http://127.0.0.1:6333", collection="titles")}
    )
    remote = create_vector_store(server)
    # The server backend goes through the shared qdrant circuit breaker.
    assert isinstance(remote, BreakerGuardedStore)
    inner = remote._inner
    assert isinstance(inner, QdrantClientStore)
    assert inner.collection == "titles" and remote.dimension == 384
    await remote.close()


async def test_a_failing_server_opens_the_breaker_and_calls_are_refused_fast() -> None:
    from qdrant_client import AsyncQdrantClient

    from core.embedded import free_port
    from core.resilience import BreakerConfig, BreakerRegistry, CircuitOpen

    registry = BreakerRegistry({"qdrant": BreakerConfig(failure_threshold=2, open_timeout_s=30)})
    client = AsyncQdrantClient(url=f"http://127.0.0.1:{free_port()}", check_compatibility=False)
    store = BreakerGuardedStore(QdrantClientStore(client, "c", 384), registry.get("qdrant"))
    try:
        for _ in range(2):
            with pytest.raises(Exception) as failed:
                await store.count()
            assert not isinstance(failed.value, CircuitOpen)
        with pytest.raises(CircuitOpen):
            await store.count()
    finally:
        await store.close()


def test_content_payload() -> None:
    def offer(platform: str, regions: list[str]) -> PlatformAvailability:
        return PlatformAvailability(
            platform=platform, availability_type="subscription", regions=regions
        )

    content = CanonicalContent(
        canonical_id=uuid.uuid4(),
        content_type=ContentType.movie,
        title="Alien",
        release_year=1979,
        genres=["science_fiction", "horror", "horror"],
        availability=[offer("hulu", ["us", "GB"]), offer("netflix", []), offer("max", ["US"])],
        updated_at=datetime(2025, 1, 1, tzinfo=UTC),
    )
    payload = content_payload(content)
    assert payload == {
        "title": "Alien",
        "content_type": "movie",
        "genres": ["horror", "science_fiction"],
        "release_year": 1979,
        "platforms": ["hulu", "max"],  # netflix lists no region: it left the platform
        "regions": ["GB", "US"],
    }
    assert matches(VectorFilter(platforms=["netflix"]), content.canonical_id, payload) is False
