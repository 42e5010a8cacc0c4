"""Relevance on the seed catalog with real embeddings (all-MiniLM-L6-v2) and the local parser:
queries by mood, genre, decade, platform, a misspelled title and "like X" rank the expected
titles first, and no filter, from the query or the request, ever lets a non-matching title in."""

from __future__ import annotations

from typing import Any

import pytest

from agents.discovery.filters import MATURITY_LEVEL
from schemas.content import MaturityRating
from schemas.discovery import SearchResponse
from tests.discovery.catalog import BY_TITLE, CATALOG, Title
from tests.discovery.conftest import MakeEngine


def titles(response: SearchResponse, n: int | None = None) -> list[str]:
    return [r.title for r in response.results[:n]]


def seed_of(name: str) -> Title:
    return BY_TITLE[name]


@pytest.mark.parametrize(
    ("query", "first"),
    [
        ("shawshank redemtion", "The Shawshank Redemption"),  # misspelled
        ("spiderman", "Spider-Man"),  # no hyphen
        ("the godfahter", "The Godfather"),
        ("Notting Hil", "Notting Hill"),
    ],
)
async def test_a_misspelled_title_comes_first(
    make_engine: MakeEngine, query: str, first: str
) -> None:
    found = await make_engine().search(query)
    assert titles(found, 1) == [first], titles(found)
    assert found.results[0].strategy_scores.keyword is not None  # trigram similarity found it


async def test_a_mood_ranks_its_genres_first(make_engine: MakeEngine) -> None:
    found = await make_engine().search("something scary")
    assert found.query_parsed.mood == ["scared"]
    top = found.results[:5]
    assert len(top) == 5
    assert all("horror" in r.genres for r in top), titles(found)
    assert any("(mood: scared)" in reason for reason in top[0].match_reasons)


async def test_a_genre_in_the_query_filters(make_engine: MakeEngine) -> None:
    found = await make_engine().search("science fiction movies")
    assert found.query_parsed.filters.genres == ["science_fiction"]
    expected = {t.title for t in CATALOG if "science_fiction" in t.genres}
    assert set(titles(found)) == expected


async def test_a_decade_in_the_query_filters_and_ranks_by_the_words(
    make_engine: MakeEngine,
) -> None:
    found = await make_engine().search("comedies from the 90s")
    assert found.query_parsed.filters.year_range == (1990, 1999)
    assert found.results, "90s comedies exist in the catalog"
    assert all(1990 <= (r.release_year or 0) <= 1999 for r in found.results)
    assert all("comedy" in r.genres for r in found.results)
    expected = {t.title for t in CATALOG if "comedy" in t.genres and 1990 <= t.year <= 1999}
    assert set(titles(found)) == expected


async def test_a_platform_in_the_query_filters(make_engine: MakeEngine) -> None:
    found = await make_engine().search("horror on netflix")
    # Halloween left Netflix (no regions); It Follows' Netflix offer ended: neither is shown.
    assert set(titles(found)) == {"A Nightmare on Elm Street", "The Conjuring"}
    assert all("netflix" in r.platforms for r in found.results)


async def test_like_x_ranks_titles_like_x_and_leaves_x_out(make_engine: MakeEngine) -> None:
    found = await make_engine().search("something funny and animated like Shrek")
    assert found.query_parsed.references == ["Shrek"]
    assert "Shrek" not in titles(found)
    assert titles(found, 1) == ["Shrek 2"]
    assert all("animation" in r.genres for r in found.results)
    assert found.results[0].strategy_scores.graph is not None
    assert "related to 'Shrek'" in found.results[0].match_reasons

    matrix = await make_engine().search("movies like The Matrix")
    assert "The Matrix" not in titles(matrix)
    assert all("science_fiction" in r.genres for r in matrix.results[:4]), titles(matrix)


async def test_the_issue_example(make_engine: MakeEngine) -> None:
    found = await make_engine().search(
        "something funny and animated like Shrek on Netflix from the 2000s"
    )
    intent = found.query_parsed
    assert intent.filters.platforms == ["netflix"]
    assert intent.filters.year_range == (2000, 2009)
    assert titles(found, 1) == ["Shrek 2"]
    for result in found.results:
        seed = seed_of(result.title)
        assert "netflix" in result.platforms and 2000 <= seed.year <= 2009
        assert "animation" in seed.genres
    assert found.facets.platform["netflix"] == found.total_count
    assert found.facets.decade == {"2000s": found.total_count}


async def test_a_query_without_words_browses_by_popularity(make_engine: MakeEngine) -> None:
    found = await make_engine().search("on netflix", page_size=5)
    assert found.strategies_used == ["popularity"]
    on_netflix = sorted(
        (t for t in CATALOG if any(p == "netflix" and r for p, r in t.offers)),
        key=lambda t: -t.popularity,
    )
    assert titles(found) == [t.title for t in on_netflix[:5]]
    assert found.total_count == len(on_netflix)


# --- filters never let a non-matching title through ------------------------------------------


def _offers_now(seed: Title) -> dict[str, set[str]]:
    return {p: set(r) for p, r in seed.offers if r}


def _passes(seed: Title, filters: dict[str, Any]) -> bool:
    """The filter's meaning, written against the seed data (not the code under test)."""
    if set(filters.get("blocked_genres", ())) & set(seed.genres):
        return False
    if filters.get("genres") and not set(filters["genres"]) & set(seed.genres):
        return False
    offers = _offers_now(seed)
    region = filters.get("region")
    platforms = {p for p, regions in offers.items() if region is None or region in regions}
    if (filters.get("platforms") or region) and not platforms:
        return False
    if filters.get("platforms") and not set(filters["platforms"]) & platforms:
        return False
    if (
        "year_range" in filters
        and not filters["year_range"][0] <= seed.year <= filters["year_range"][1]
    ):
        return False
    if "rating_range" in filters:
        low, high = filters["rating_range"]
        if seed.rating is None or not low <= seed.rating <= high:
            return False
    if "content_rating_limit" in filters:
        if seed.maturity is None:
            return False
        limit = MaturityRating(filters["content_rating_limit"])
        if MATURITY_LEVEL[MaturityRating(seed.maturity)] > MATURITY_LEVEL[limit]:
            return False
    return True


FILTERS: list[dict[str, Any]] = [
    {"platforms": ["netflix"]},
    {"platforms": ["netflix"], "region": "GB"},
    {"region": "GB"},
    {"genres": ["horror"], "platforms": ["hulu"]},
    {"year_range": (1990, 1999)},
    {"rating_range": (8.0, 10.0)},
    {"content_rating_limit": "PG"},
    {"content_rating_limit": "G", "genres": ["animation"]},
    {"blocked_genres": ["comedy", "horror"]},
    {"genres": ["comedy"], "blocked_genres": ["animation"], "region": "US"},
    {"platforms": ["disney_plus", "hbo_max"], "year_range": (2000, 2030), "rating_range": (7, 10)},
]
QUERIES = [
    "something funny",
    "scary movies",
    "shawshank redemtion",
    "like Shrek",
    "space adventure",
    "netflix",
    "romantic comedy from the 90s on hulu",
]


@pytest.mark.parametrize("filters", FILTERS, ids=lambda f: ",".join(sorted(f)))
async def test_a_filter_never_lets_a_non_matching_title_through(
    make_engine: MakeEngine, filters: dict[str, Any]
) -> None:
    engine = make_engine()
    for query in QUERIES:
        found = await engine.search(query, filters=filters, page_size=100)
        intent = found.query_parsed.filters
        for result in found.results:
            seed = seed_of(result.title)
            assert _passes(seed, filters), (query, filters, result.title)
            # The query's own filters hold too where the request set none.
            query_filters: dict[str, Any] = {}
            if intent.platforms and not filters.get("platforms"):
                query_filters["platforms"] = intent.platforms
            if intent.year_range and "year_range" not in filters:
                query_filters["year_range"] = intent.year_range
            if intent.genres and not filters.get("genres"):
                query_filters["genres"] = intent.genres
            assert _passes(seed, {**query_filters, "region": filters.get("region")}), (
                query,
                result.title,
            )
        assert found.total_count == sum(found.facets.decade.values())


async def test_platforms_shown_are_those_of_the_region(make_engine: MakeEngine) -> None:
    found = await make_engine().search("prison friendship hope", filters={"region": "GB"})
    shawshank = next(r for r in found.results if r.title == "The Shawshank Redemption")
    assert shawshank.platforms == ["prime_video"]  # Netflix offers it in the US only


async def test_pages_and_facets(make_engine: MakeEngine) -> None:
    engine = make_engine()
    first = await engine.search("netflix", page_size=4)
    second = await engine.search("netflix", page=2, page_size=4)
    everything = await engine.search("netflix", page_size=100)
    assert titles(first) + titles(second) == titles(everything)[:8]
    assert first.total_count == second.total_count == len(everything.results)
    assert first.facets == everything.facets
    genres = {g for r in everything.results for g in r.genres}
    assert set(first.facets.genre) == genres
    beyond = await engine.search("netflix", page=50, page_size=100)
    assert beyond.results == [] and beyond.total_count == everything.total_count


async def test_filters_in_the_spellings_feeds_and_people_use(make_engine: MakeEngine) -> None:
    engine = make_engine()
    # A platform's genre name: 'Action & Adventure' is action or adventure.
    adventure = await engine.search("anything", filters={"genres": ["Action & Adventure"]})
    expected = {t.title for t in CATALOG if {"action", "adventure"} & set(t.genres)}
    assert expected and set(titles(adventure)) == expected
    # A maturity limit in lower case is the same limit.
    lower = await engine.search("anything", filters={"content_rating_limit": "pg"})
    upper = await engine.search("anything", filters={"content_rating_limit": "PG"})
    assert lower.results and titles(lower) == titles(upper)
    # A bare year after the words is the release year.
    dated = await engine.search("prison escape 1994")
    assert dated.query_parsed.filters.year_range == (1994, 1994)
    assert titles(dated, 1) == ["The Shawshank Redemption"]
    assert all(r.release_year == 1994 for r in dated.results)
