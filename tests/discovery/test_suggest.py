"""Search-as-you-type: the index the discovery agents build from PostgreSQL and publish in
Redis, read by the gateway's route (contracts/suggest_index.py, gateway/routes/suggest.py)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis

from agents.discovery.suggest_store import publish_index
from agents.titles.store import Versioned, upsert_contents
from contracts.suggest_index import Entry, SuggestIndex, encode
from gateway.routes.suggest import SuggestHolder
from tests.conftest import SESSION
from tests.discovery.conftest import Seeded, seeded_catalog
from tests.discovery.test_typos import film, load


@pytest.fixture(scope="module")
async def seeded(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Seeded]:
    async with seeded_catalog(tmp_path_factory, load) as catalog:
        yield catalog


def texts(index: SuggestIndex, query: str) -> list[str]:
    return [e.text for e in index.suggest(query)]


INDEX = SuggestIndex(
    [
        Entry("title", "Star Wars", 90, str(uuid.uuid4()), 1977),
        Entry("title", "Star Trek", 80, str(uuid.uuid4()), 1979),
        Entry("title", "Lone Star", 10, str(uuid.uuid4()), 1996),
        Entry("title", "The Godfather", 95, str(uuid.uuid4()), 1972),
        Entry("title", "The Godfather Part II", 85, str(uuid.uuid4()), 1974),
        Entry("title", "Rocky 2", 50, str(uuid.uuid4()), 1979),
        Entry("title", "Rocky 3", 40, str(uuid.uuid4()), 1982),
        Entry("person", "Steven Spielberg", 99, titles=30),
        *(Entry("title", f"Star {i}", float(i), str(uuid.uuid4()), 2000) for i in range(20)),
    ]
)


def test_prefixes_of_titles_and_people() -> None:
    assert texts(INDEX, "star w") == ["Star Wars"]
    # Starting with the text first, then the more popular: "Lone Star" after every "Star ...".
    found = texts(INDEX, "star")
    assert len(found) == 10 and found[:2] == ["Star Wars", "Star Trek"]
    assert "Lone Star" not in found
    assert texts(INDEX, "spielb") == ["Steven Spielberg"]
    assert texts(INDEX, "godf") == ["The Godfather", "The Godfather Part II"]


def test_typos_as_the_search_counts_them() -> None:
    assert texts(INDEX, "godfahter") == ["The Godfather", "The Godfather Part II"]  # a swap
    assert texts(INDEX, "spielbreg") == ["Steven Spielberg"]
    assert texts(INDEX, "stra wars") == []  # 4 letters: no typo
    assert texts(INDEX, "rocky 4") == []  # a number is never fuzzed
    assert texts(INDEX, "rocky 3") == ["Rocky 3"]


def test_the_index_travels_as_bytes() -> None:
    again = SuggestIndex.decode(encode(INDEX.entries))
    assert again.entries == INDEX.entries


async def test_the_agents_publish_and_the_gateway_reads(
    seeded: Seeded, redis_client: aioredis.Redis
) -> None:
    prefix = f"mgwtest-{SESSION}-suggest-{uuid.uuid4().hex[:8]}"
    assert await publish_index(seeded.pool, redis_client, prefix)
    assert not await publish_index(seeded.pool, redis_client, prefix)  # nothing changed
    holder = SuggestHolder()
    index = await holder.current(redis_client, prefix)
    assert index is not None
    assert texts(index, "jurassic p") == ["Jurassic Park"]
    assert texts(index, "tom han") == ["Tom Hanks"]
    assert texts(index, "interstelar") == ["Interstellar", "Interstellar Wars"]
    # A new title: the catalog's fingerprint moves, the index is published again, and the
    # gateway's copy follows.
    added = film("Jurassic World", 2015, ("adventure",), 70, ("Colin Trevorrow",), ())
    await upsert_contents(seeded.pool, [Versioned(added, uuid.uuid4())])
    assert await publish_index(seeded.pool, redis_client, prefix)
    holder.checked_at = float("-inf")
    await holder.current(redis_client, prefix)
    assert holder.refreshing is not None
    await holder.refreshing
    index = await holder.current(redis_client, prefix)
    assert index is not None and texts(index, "jurassic") == ["Jurassic Park", "Jurassic World"]
