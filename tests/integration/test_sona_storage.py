"""SONA storage against the real PostgreSQL: adapter versions, round trip, corrupt blobs,
pruning, the one-query latest load, profiles and event-id claims."""

from __future__ import annotations

import uuid

import numpy as np
import pytest

from agents.framework import applied
from agents.sona import store
from agents.sona.adapter_cache import AdapterCache
from agents.sona.adapter_codec import TOLERANCE, AdapterBlobError
from agents.sona.lora import DimensionMismatch, TrainingExample, UserLoRAAdapter, train
from agents.sona.population import PopulationLayer
from agents.sona.profile import UserProfile
from tests.conftest import Isolated
from tests.unit.sona.factories import DIM, random_unit


def trained(seed: int) -> UserLoRAAdapter:
    rng = np.random.default_rng(seed)
    adapter = UserLoRAAdapter.fresh(DIM, seed=seed)
    examples = [TrainingExample(random_unit(rng), 0.8) for _ in range(12)]
    return train(adapter, examples, random_unit(rng)).adapter


async def save(isolated: Isolated, user: str, adapter: UserLoRAAdapter, **kw: object) -> int:
    async with isolated.pool.acquire() as conn, conn.transaction():
        await store.lock_users(conn, [user])
        return await store.save_adapter(
            conn,
            user,
            adapter,
            training_iterations=5,
            training_examples=12,
            keep=int(kw.get("keep", 3)),  # type: ignore[call-overload]
            float16=bool(kw.get("float16", True)),
        )


@pytest.mark.parametrize("float16", [True, False])
async def test_an_adapter_comes_back_within_the_tolerance(
    isolated: Isolated, float16: bool
) -> None:
    adapter = trained(1)
    assert float(np.abs(adapter.b_user).max()) > 0  # trained: B is no longer zero
    assert await save(isolated, "u1", adapter, float16=float16) == 1
    loaded = await store.latest_adapter(isolated.pool, "u1", expected_dim=DIM)
    assert loaded is not None
    assert loaded.version == 1
    assert loaded.dtype == ("float16" if float16 else "float32")
    assert np.abs(loaded.adapter.a_user - adapter.a_user).max() <= TOLERANCE
    assert np.abs(loaded.adapter.b_user - adapter.b_user).max() <= TOLERANCE
    row = await isolated.pool.fetchrow("SELECT size_bytes, weights FROM lora_adapters")
    assert row["size_bytes"] == len(row["weights"])
    assert row["size_bytes"] < (2 * 8 * DIM * (2 if float16 else 4)) + 100


async def test_versions_count_up_and_old_ones_are_pruned(isolated: Isolated) -> None:
    for i in range(5):
        assert await save(isolated, "u2", trained(i), keep=2) == i + 1
    assert await store.adapter_versions(isolated.pool, "u2") == [4, 5]
    latest = await store.latest_adapter(isolated.pool, "u2")
    assert latest is not None and latest.version == 5
    assert await store.latest_adapter(isolated.pool, "nobody") is None


async def test_the_latest_version_is_one_index_scan(isolated: Isolated) -> None:
    for i in range(3):
        await save(isolated, f"plan-{i}", trained(i))
    async with isolated.pool.acquire() as conn:
        await conn.execute("SET enable_seqscan = off")
        rows = await conn.fetch(
            "EXPLAIN " + store._LATEST.replace("$1", "'plan-1'").replace("$2", "'default'")
        )
    plan = "\n".join(r[0] for r in rows)
    assert "Index Scan Backward using lora_adapters_pkey" in plan, plan
    assert "Sort" not in plan, plan


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(lambda b: b[: len(b) // 2], id="truncated"),
        pytest.param(lambda b: b[:-1], id="one-byte-short"),
        pytest.param(lambda b: b[:60] + bytes([b[60] ^ 0xFF]) + b[61:], id="flipped-bit"),
        pytest.param(lambda b: b"XXXX" + b[4:], id="bad-magic"),
    ],
)
async def test_a_damaged_blob_is_refused_with_a_clear_error(isolated: Isolated, damage) -> None:  # type: ignore[no-untyped-def]
    await save(isolated, "u3", trained(3))
    blob = await isolated.pool.fetchval("SELECT weights FROM lora_adapters WHERE user_id = 'u3'")
    await isolated.pool.execute(
        "UPDATE lora_adapters SET weights = $1 WHERE user_id = 'u3'", damage(bytes(blob))
    )
    with pytest.raises(AdapterBlobError, match="adapter blob"):
        await store.latest_adapter(isolated.pool, "u3", expected_dim=DIM)


async def test_an_adapter_of_another_dimension_is_refused(isolated: Isolated) -> None:
    await save(isolated, "u4", UserLoRAAdapter.fresh(64, seed=4))
    with pytest.raises(DimensionMismatch, match="dimension 64"):
        await store.latest_adapter(isolated.pool, "u4", expected_dim=DIM)


async def test_the_cache_serves_until_a_newer_version_is_announced(isolated: Isolated) -> None:
    cache = AdapterCache(max_entries=2)
    adapters = store.CachedAdapters(isolated.pool, cache, DIM)
    assert (await adapters.load("u5")).adapter is None  # no adapter yet: remembered as such
    await save(isolated, "u5", trained(5))
    assert (await adapters.load("u5")).version is None  # still the cached answer
    cache.announce("u5", 1)
    first = await adapters.load("u5")
    assert first.version == 1
    await save(isolated, "u5", trained(6))
    assert (await adapters.load("u5")).version == 1
    cache.announce("u5", 2)
    assert (await adapters.load("u5")).version == 2
    assert (cache.hits, cache.misses) == (2, 3)


async def test_profiles_round_trip_and_events_are_claimed_once(isolated: Isolated) -> None:
    rng = np.random.default_rng(7)
    profile = UserProfile(
        dim=DIM,
        taste=rng.standard_normal(DIM),
        genre_affinities={"comedy": 0.42},
        hourly=tuple(range(24)),
        device_mix={"tv": 3},
        events_applied=9,
    )
    first, second = uuid.uuid4(), uuid.uuid4()
    async with isolated.pool.acquire() as conn, conn.transaction():
        assert await applied.claim(conn, "sona-test", [first]) == {first}
        await store.save_profiles(conn, {"u6": store.StoredProfile(profile, 4)})
    async with isolated.pool.acquire() as conn, conn.transaction():
        assert await applied.claim(conn, "sona-test", [first, second]) == {second}
    loaded = await store.load_profiles(isolated.pool, ["u6", "new"], DIM)
    assert np.array_equal(loaded["u6"].profile.taste, profile.taste)
    assert loaded["u6"].profile.hourly == profile.hourly
    assert dict(loaded["u6"].profile.genre_affinities) == {"comedy": 0.42}
    assert loaded["u6"].events_since_training == 4
    assert not loaded["new"].profile.has_history


async def test_the_population_layer_comes_back_exactly_and_old_versions_are_pruned(
    isolated: Isolated,
) -> None:
    rng = np.random.default_rng(9)

    def layer() -> PopulationLayer:
        return PopulationLayer(
            a=rng.standard_normal((4, DIM)).astype(np.float32),
            b=rng.standard_normal((4, DIM)).astype(np.float32),
            bias=rng.standard_normal(DIM).astype(np.float32),
        )

    assert await store.latest_population(isolated.pool, DIM) is None
    layers = [layer() for _ in range(4)]
    async with isolated.pool.acquire() as conn:
        versions = [await store.save_population(conn, x, 100, 5, keep=2) for x in layers]
    latest = await store.latest_population(isolated.pool, DIM)
    assert latest is not None and latest.version == versions[-1]
    for got, want in zip(
        (latest.layer.a, latest.layer.b, latest.layer.bias),
        (layers[-1].a, layers[-1].b, layers[-1].bias),
        strict=True,
    ):
        assert np.array_equal(got, want)
    kept = await isolated.pool.fetch("SELECT version FROM sona_population_layers ORDER BY 1")
    assert [r["version"] for r in kept] == versions[-2:]
    # Another embedder's dimension has no layer yet.
    assert await store.latest_population(isolated.pool, DIM + 1) is None


async def test_a_truncated_population_layer_is_refused(isolated: Isolated) -> None:
    await isolated.pool.execute(
        "INSERT INTO sona_population_layers (dim, rank, weights, triples, users)"
        " VALUES ($1, 4, $2, 1, 1)",
        DIM,
        b"\x00" * 16,
    )
    with pytest.raises(ValueError, match="corrupt"):
        await store.latest_population(isolated.pool, DIM)
