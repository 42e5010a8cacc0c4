"""Facet counts over a result set."""

from __future__ import annotations

import uuid

from agents.discovery.facets import decade_of, facet_counts
from schemas.discovery import Facets, SearchResult


def result(year: int | None, genres: list[str], platforms: list[str]) -> SearchResult:
    return SearchResult(
        canonical_id=uuid.uuid4(),
        title="t",
        release_year=year,
        genres=genres,
        platforms=platforms,
        relevance_score=0.5,
    )


def test_decade_of() -> None:
    assert decade_of(1990) == "1990s"
    assert decade_of(1999) == "1990s"
    assert decade_of(2000) == "2000s"
    assert decade_of(2009) == "2000s"
    assert decade_of(1800) == "1800s"


def test_counts_per_genre_platform_and_decade() -> None:
    facets = facet_counts(
        [
            result(2001, ["animation", "comedy"], ["netflix"]),
            result(2004, ["animation", "family"], ["netflix", "disney_plus"]),
            result(1995, ["comedy"], ["hulu"]),
            result(None, ["drama", "drama"], []),
        ]
    )
    assert facets == Facets(
        genre={"animation": 2, "comedy": 2, "drama": 1, "family": 1},
        platform={"netflix": 2, "disney_plus": 1, "hulu": 1},
        decade={"2000s": 2, "1990s": 1},
    )


def test_most_frequent_first_then_by_name() -> None:
    facets = facet_counts(
        [result(1990, ["war"], []), result(2010, ["action"], []), result(2011, ["war"], [])]
    )
    assert list(facets.genre.items()) == [("war", 2), ("action", 1)]
    assert list(facets.decade.items()) == [("2010s", 2), ("1990s", 1)]


def test_an_empty_result_set_has_empty_facets() -> None:
    assert facet_counts([]) == Facets()
    assert facet_counts(iter([])).model_dump() == {"genre": {}, "platform": {}, "decade": {}}
