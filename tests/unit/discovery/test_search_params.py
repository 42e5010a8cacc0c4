"""GET /api/v1/search's query string: what it asks for, and 422s naming the parameter."""

from __future__ import annotations

import re

import pytest
from fastapi.exceptions import RequestValidationError
from starlette.datastructures import QueryParams

from gateway.errors import field_errors
from gateway.routes.discovery import PARAMETERS, parse_search
from schemas.discovery import DEFAULT_PAGE_SIZE, YEAR_MAX, YEAR_MIN


def parse(query: str):  # type: ignore[no-untyped-def]
    return parse_search(QueryParams(query), "mgw:reply:1")


def errors(query: str) -> dict[str, str]:
    with pytest.raises(RequestValidationError) as caught:
        parse(query)
    return {e["field"]: e["reason"] for e in field_errors(caught.value)}


def test_everything_a_client_can_ask() -> None:
    wanted = parse(
        "q=funny+like+Shrek&genres=Comedy,sci-fi&genres=animation&platforms=Disney%2B"
        "&region=gb&year_from=1990&year_to=2005&rating_min=6.5&rating_max=9"
        "&content_rating_limit=PG-13&blocked_genres=horror&page=2&page_size=50"
    )
    assert wanted.query == "funny like Shrek"
    f = wanted.filters
    assert f.genres == ["animation", "comedy", "sci_fi"]
    assert f.platforms == ["disney_plus"]
    assert f.region == "GB"
    assert f.year_range == (1990, 2005)
    assert f.rating_range == (6.5, 9.0)
    assert f.content_rating_limit == "PG-13"
    assert f.blocked_genres == ["horror"]
    assert (wanted.page, wanted.page_size) == (2, 50)
    assert wanted.reply_channel == "mgw:reply:1" and wanted.user_id is None


def test_values_in_the_spellings_people_and_feeds_use() -> None:
    wanted = parse(
        "q=heat&region=uk&content_rating_limit=pg-13"
        "&genres=Action%20%26%20Adventure&blocked_genres=Kids%20%26%20Family"
    )
    assert wanted.filters.region == "GB"
    assert wanted.filters.content_rating_limit == "PG-13"
    assert wanted.filters.genres == ["action_and_adventure"]
    assert wanted.filters.blocked_genres == ["kids_and_family"]
    # The document says so: what it lets through is taken.
    rating = PARAMETERS["content_rating_limit"][0]["pattern"]
    assert all(re.search(rating, v) for v in ("pg-13", "PG-13", "Tv-Ma", "g"))
    assert not any(re.search(rating, v) for v in ("PG13", " pg", "X", "pg-13 "))
    genres = PARAMETERS["genres"][0]["items"]["pattern"]
    assert re.search(genres, "Action & Adventure,drama")


def test_defaults_and_open_ranges() -> None:
    wanted = parse("q=heat&year_from=2010&rating_max=5")
    assert (wanted.page, wanted.page_size) == (1, DEFAULT_PAGE_SIZE)
    assert wanted.filters.year_range == (2010, YEAR_MAX)
    assert wanted.filters.rating_range == (0.0, 5.0)
    assert parse("q=heat&year_to=1950").filters.year_range == (YEAR_MIN, 1950)
    assert parse("q=heat&genres=").filters.genres == []


@pytest.mark.parametrize(
    ("query", "field", "reason"),
    [
        ("", "query.q", "required"),
        ("q=", "query.q", "at least 1 character"),
        ("q=%20%20", "query.q", "at least 1 character"),
        ("q=" + "x" * 501, "query.q", "at most 500"),
        ("q=a&page=0", "query.page", "greater than or equal to 1"),
        ("q=a&page=two", "query.page", "not an integer"),
        ("q=a&page_size=101", "query.page_size", "less than or equal to 100"),
        ("q=a&region=USA", "query.region", "ISO 3166-1"),
        ("q=a&year_from=2020&year_to=2010", "query.year_from/year_to", "after"),
        ("q=a&year_from=1700", "query.year_from/year_to", "outside"),
        ("q=a&rating_min=11", "query.rating_min/rating_max", "outside"),
        ("q=a&rating_min=x", "query.rating_min", "not a number"),
        ("q=a&content_rating_limit=XXX", "query.content_rating_limit", "Input should be"),
        ("q=a&content_rating_limit=pg13", "query.content_rating_limit", "Input should be"),
        ("q=a&genres=sci%20fi!", "query.genres", "lower-case"),
        # Sent empty is a bad value, not an absent one.
        ("q=a&page=", "query.page", "not an integer"),
        ("q=a&region=", "query.region", "ISO 3166-1"),
        ("q=a&platform=netflix", "query.platform", "unknown parameter"),
        ("q=a&q=b", "query.q", "more than once"),
    ],
)
def test_bad_parameters_are_named(query: str, field: str, reason: str) -> None:
    found = errors(query)
    assert field in found, found
    assert reason in found[field]


def test_every_parameter_is_documented() -> None:
    assert set(PARAMETERS) == {
        "q",
        "genres",
        "platforms",
        "region",
        "year_from",
        "year_to",
        "rating_min",
        "rating_max",
        "content_rating_limit",
        "blocked_genres",
        "content_type",
        "page",
        "page_size",
    }
    assert all(description for _, description in PARAMETERS.values())


def test_content_type_in_any_case_as_a_list() -> None:
    wanted = parse("q=office&content_type=Series&content_type=movie,%20MOVIE")
    assert wanted.filters.content_types == ["movie", "series"]
    assert parse("q=office").filters.content_types == []
    pattern = PARAMETERS["content_type"][0]["items"]["pattern"]
    assert all(re.search(pattern, v) for v in ("movie", "Series,documentary", "short, special"))
    assert not any(re.search(pattern, v) for v in ("episode", "movies", "tv", "movie;series"))


@pytest.mark.parametrize("value", ["episode", "tv", "films"])
def test_an_unknown_content_type_is_named(value: str) -> None:
    found = errors(f"q=office&content_type={value}")
    assert "query.content_type" in found, found
    assert "movie, series" in found["query.content_type"]
