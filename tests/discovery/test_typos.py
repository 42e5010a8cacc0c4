"""The typo and ranking rules of the word search (agents/discovery/words.py, docs/DISCOVERY.md)
through the whole search, against real PostgreSQL: the vocabulary and its variants and the
credits index are built by migration 0033's triggers as the titles are written.

A catalog of neighbours on purpose: titles that differ by a number, by one word, by a letter,
and people with near names.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest

from agents.adapters.embeddings.base import Embedder, content_text
from agents.adapters.vectors.payload import content_payload
from agents.adapters.vectors.store import VectorPoint, VectorStore
from agents.titles.store import Versioned, upsert_contents
from schemas.content import CanonicalContent
from schemas.discovery import SearchResponse
from tests.discovery.catalog import UPDATED
from tests.discovery.conftest import MakeEngine, Seeded, seeded_catalog

SPIELBERG = "Steven Spielberg"
# (title, year, genres, popularity, directors, cast)
FILMS: list[tuple[str, int, tuple[str, ...], float, tuple[str, ...], tuple[str, ...]]] = [
    ("Creepshow", 1982, ("horror",), 20, ("George Romero",), ("Ed Harris",)),
    ("Creepshow 2", 1987, ("horror",), 40, ("Michael Gornick",), ("Lois Chiles",)),
    ("Friday the 13th Part 2", 1981, ("horror",), 50, ("Steve Miner",), ()),
    ("Friday the 13th Part 3", 1982, ("horror",), 45, ("Steve Miner",), ()),
    ("Stripes", 1981, ("comedy",), 30, ("Ivan Reitman",), ("Bill Murray",)),
    ("Stripes and Stars", 1999, ("drama",), 90, ("Ann Other",), ()),
    ("Interstellar", 2014, ("science_fiction",), 80, ("Christopher Nolan",), ()),
    ("Interstellar Wars", 2016, ("science_fiction",), 95, ("Mark Polonia",), ()),
    ("Alien", 1979, ("horror", "science_fiction"), 70, ("Ridley Scott",), ()),
    ("Aliens", 1986, ("action", "science_fiction"), 75, ("James Cameron",), ()),
    ("Jaws", 1975, ("thriller",), 60, (SPIELBERG,), ("Roy Scheider",)),
    ("Jaws 2", 1978, ("thriller",), 65, ("Jeannot Szwarc",), ("Roy Scheider",)),
    ("Saving Private Ryan", 1998, ("war", "drama"), 85, (SPIELBERG,), ("Tom Hanks",)),
    ("Jurassic Park", 1993, ("adventure",), 99, (SPIELBERG,), ("Sam Neill",)),
    ("Cast Away", 2000, ("drama",), 55, ("Robert Zemeckis",), ("Tom Hanks",)),
    ("The Terminal", 2004, ("comedy", "drama"), 35, (SPIELBERG,), ("Tom Hanks",)),
    ("Big", 1988, ("comedy",), 50, ("Penny Marshall",), ("Tom Hanks",)),
    ("Big Fish", 2003, ("fantasy",), 88, ("Tim Burton",), ("Ewan McGregor",)),
    ("Mean Girls", 2004, ("comedy",), 40, ("Mark Waters",), ()),
    ("Vampire Cop", 1990, ("horror",), 1, ("Donald Farmer",), ()),
    ("Thriller", 1983, ("music",), 2, ("John Landis",), ()),
]


def film(
    title: str,
    year: int,
    genres: tuple[str, ...],
    popularity: float,
    directors: tuple[str, ...],
    cast: tuple[str, ...],
) -> CanonicalContent:
    data: dict[str, Any] = {
        "canonical_id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"mgw-test-typos/{title}")),
        "content_type": "movie",
        "title": title,
        "release_year": year,
        "genres": list(genres),
        "popularity_score": popularity,
        "credits": [{"name": n, "role": "director"} for n in directors]
        + [{"name": n, "role": "actor"} for n in cast],
        "updated_at": UPDATED.isoformat(),
    }
    return CanonicalContent.model_validate(data)


CONTENTS = [film(*f) for f in FILMS]
ID = {c.title: c.canonical_id for c in CONTENTS}


async def load(pool: asyncpg.Pool, vectors: VectorStore, embedder: Embedder) -> None:
    await upsert_contents(pool, [Versioned(c, uuid.uuid4()) for c in CONTENTS])
    matrix = await embedder.embed([content_text(c) for c in CONTENTS])
    await vectors.upsert(
        [
            VectorPoint(c.canonical_id, v, content_payload(c))
            for c, v in zip(CONTENTS, matrix, strict=True)
        ]
    )


@pytest.fixture(scope="module")
async def seeded(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Seeded]:
    async with seeded_catalog(tmp_path_factory, load) as catalog:
        yield catalog


def titles(found: SearchResponse, n: int | None = None) -> list[str]:
    return [r.title for r in found.results[:n]]


async def first(make_engine: MakeEngine, query: str) -> str | None:
    found = await make_engine().search(query)
    return found.results[0].title if found.results else None


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("Jaws", "Jaws"),  # exact, 4 letters
        ("Big", "Big"),  # an exact title before a longer, more popular neighbour ("Big Fish")
        ("Stripes", "Stripes"),  # before the more popular "Stripes and Stars"
        ("Interstellar", "Interstellar"),  # before the more popular "Interstellar Wars"
        ("Alien", "Alien"),  # not "Aliens", one letter away and more popular
        ("Creepshow", "Creepshow"),  # not "Creepshow 2"
    ],
)
async def test_an_exact_title_is_first(make_engine: MakeEngine, query: str, expected: str) -> None:
    assert await first(make_engine, query) == expected


async def test_the_number_of_a_title_must_match(make_engine: MakeEngine) -> None:
    assert await first(make_engine, "Creepshow 2") == "Creepshow 2"
    assert await first(make_engine, "Friday the 13th Part 3") == "Friday the 13th Part 3"
    assert await first(make_engine, "Friday the 13th Part 2") == "Friday the 13th Part 2"
    # A number is never fuzzed: "Part 4" is no typo of "Part 3"; no title has it.
    found = await make_engine().search("friday the 13th part 4")
    assert "title matches your query" not in {
        reason for r in found.results for reason in r.match_reasons
    }, titles(found)


async def test_one_typo_from_five_letters(make_engine: MakeEngine) -> None:
    assert await first(make_engine, "Stirpes") == "Stripes"  # a transposition is one typo
    assert await first(make_engine, "Ssripes") == "Stripes"  # a wrong letter
    assert await first(make_engine, "Creepshw 2") == "Creepshow 2"  # a missing letter


async def test_two_typos_from_nine_letters(make_engine: MakeEngine) -> None:
    # "intersetlarr": 12 letters, a swap and an extra letter.
    assert await first(make_engine, "intersetlarr") == "Interstellar"


async def test_no_typo_under_five_letters(make_engine: MakeEngine) -> None:
    # "jawz" is 4 letters: no typo allowed, so the word search does not take it for "Jaws".
    found = await make_engine().search("jawz")
    assert all(
        "title matches your query" not in r.match_reasons
        for r in found.results
        if r.title == "Jaws"
    )


async def test_the_last_word_matches_as_a_prefix(make_engine: MakeEngine) -> None:
    assert await first(make_engine, "saving private ry") == "Saving Private Ryan"
    assert await first(make_engine, "jurassic pa") == "Jurassic Park"


async def test_typed_words_name_a_title_before_filters(make_engine: MakeEngine) -> None:
    # "cop" and "vampire" could read as a genre or a mood; the catalog has this title.
    assert await first(make_engine, "Vampire Cop") == "Vampire Cop"


async def test_a_title_named_like_a_filter_is_first(make_engine: MakeEngine) -> None:
    # "thriller" alone would browse the thriller genre; a title of that name comes first.
    assert await first(make_engine, "Thriller") == "Thriller"
    # Not so once the words are more than the title: the genre browse stands.
    found = await make_engine().search("thriller movies")
    assert found.strategies_used == ["popularity"]
    assert set(titles(found)) == {"Jaws", "Jaws 2"}


async def test_a_person_with_a_typo(make_engine: MakeEngine) -> None:
    found = await make_engine().search("spielbreg")
    expected = {"Jaws", "Saving Private Ryan", "Jurassic Park", "The Terminal"}
    assert set(titles(found)) == expected and found.total_count == len(expected)
    assert f"directed by {SPIELBERG}" in found.results[0].match_reasons


async def test_movies_by_a_director_and_with_an_actor(make_engine: MakeEngine) -> None:
    by = await make_engine().search("movies by Steven Spielberg")
    assert set(titles(by)) == {"Jaws", "Saving Private Ryan", "Jurassic Park", "The Terminal"}
    assert by.total_count == 4
    with_hanks = await make_engine().search("with Tom Hanks")
    expected = {"Saving Private Ryan", "Cast Away", "The Terminal", "Big"}
    assert set(titles(with_hanks)) == expected and with_hanks.total_count == len(expected)
    assert all("with Tom Hanks" in r.match_reasons for r in with_hanks.results)


async def test_a_title_change_updates_its_words_and_people(
    make_engine: MakeEngine, seeded: Seeded
) -> None:
    changed = CanonicalContent.model_validate(
        {
            **film("Mean Girls", 2004, ("comedy",), 40, ("Mark Waters",), ()).model_dump(
                mode="json"
            ),
            "title": "Meaner Girls",
            "credits": [{"name": "Tina Fey", "role": "creator"}],
            "updated_at": "2026-02-01T00:00:00+00:00",
        }
    )
    await upsert_contents(seeded.pool, [Versioned(changed, uuid.uuid4())])
    assert await first(make_engine, "meaner girls") == "Meaner Girls"
    fey = await make_engine().search("tina fey")
    assert titles(fey) == ["Meaner Girls"]
    assert "created by Tina Fey" in fey.results[0].match_reasons
    waters = await make_engine().search("movies by mark waters")
    assert "Meaner Girls" not in titles(waters)
    # The rebuild derives the same index from the catalog.
    async with seeded.pool.acquire() as conn:
        before = await conn.fetchval("SELECT count(*) FROM search_word_variants")
        words = await conn.fetchval("SELECT mgw_rebuild_search_words()")
        after = await conn.fetchval("SELECT count(*) FROM search_word_variants")
    assert words > 0 and after <= before
    assert await first(make_engine, "meaner girls") == "Meaner Girls"
