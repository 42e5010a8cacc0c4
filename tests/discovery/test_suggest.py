"""Search-as-you-type: the index the discovery agents build from PostgreSQL and publish in
Redis, read by the gateway's route (agreements/suggest_index.py, gateway/routes/suggest.py)."""

from __future__ import annotations

import random
import uuid
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis

from agents.discovery.suggest_store import publish_index
from agents.titles.store import Versioned, upsert_contents
from agreements import suggest_index
from agreements.suggest_index import Entry, SuggestIndex, encode, suggest_form
from agreements.typo_rules import is_number
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


def _by_the_rules(index: SuggestIndex, query: str, limit: int) -> list[str]:
    """The ranking rules applied to every entry, one by one: the reference the index's sets and
    ready answers must agree with."""
    words = suggest_form(query).split()
    typed = " ".join(words)
    starting = [i for i, f in enumerate(index.forms) if f.startswith(typed)]
    first = sorted(starting, key=lambda i: (index.forms[i] != typed, i))[:limit]
    candidates = [index._within_typos(w) for w in words]
    ranked = []
    for i, form in enumerate(index.forms):
        if i in first:
            continue
        total = 0
        for n, w in enumerate(words):
            prefix = n == len(words) - 1 and not is_number(w)
            best = min(
                (
                    0 if prefix and word.startswith(w) else candidates[n].get(word, 3)
                    for word in form.split()
                ),
                default=3,
            )
            if best == 3:
                break
            total += best
        else:
            if total <= suggest_index.MAX_TYPOS:
                ranked.append((total, form.count(" ") if total else 0, i))
    found = first + [i for *_, i in sorted(ranked)][: limit - len(first)]
    return [index.entries[i].text for i in found]


def test_ready_answers_and_sets_follow_the_rules(monkeypatch: pytest.MonkeyPatch) -> None:
    # Small thresholds, so that a catalog of a few hundred names has ready answers at several
    # depths and common words whose completions are checked rather than united.
    monkeypatch.setattr(suggest_index, "READY_NAMES_FROM", 3)
    monkeypatch.setattr(suggest_index, "READY_WORDS_FROM", 6)
    monkeypatch.setattr(suggest_index, "READY_DEPTH", 12)
    rng = random.Random(5)
    vocabulary = "the star stars start wars war water night knight nights dark darker 2 3".split()
    vocabulary += ["godfather", "godmother", "interstellar", "interstate", "a", "of", "love"]
    names = [
        " ".join(rng.choice(vocabulary) for _ in range(rng.randint(1, 4))).title()
        for _ in range(400)
    ]
    index = SuggestIndex(
        [Entry("title", n, rng.random() * 100, str(uuid.uuid4()), 2000) for n in names]
    )
    assert len(index.ready_names) > 10 and len(index.ready_words) > 10
    queries = ["the", "the s", "star w", "wtaer", "godfahter n", "night k", "kinght", "a", "t"]
    queries += ["interstelar", "darker 2", "stars 3", "of the", "the nights o", "love l"]
    # Typos in three words: 3 + 2 + 1 > MAX_TYPOS for a few, which are then not suggested.
    queries += ["godmothre interstate nihgt", "intrestellar godfathr kinght w"]
    queries += [" ".join(rng.choice(vocabulary)[: rng.randint(1, 6)] for _ in range(2))]
    queries += [rng.choice(names)[: rng.randint(1, 20)] for _ in range(150)]
    for query in queries:
        for limit in (10, 50):
            assert texts_at(index, query, limit) == _by_the_rules(index, query, limit), query


def texts_at(index: SuggestIndex, query: str, limit: int) -> list[str]:
    return [e.text for e in index.suggest(query, limit)]
