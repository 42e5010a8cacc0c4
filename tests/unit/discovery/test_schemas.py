"""Discovery payloads: validation names the field and the reason."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from pydantic import ValidationError

from schemas.content import MaturityRating
from schemas.discovery import (
    DEFAULT_PAGE_SIZE,
    Facets,
    IntentFilters,
    ParsedIntent,
    SearchFilters,
    SearchRequested,
    SearchResponse,
    SearchResult,
    StrategyScores,
)
from schemas.envelope import decode, encode, wrap


def request(**overrides: Any) -> SearchRequested:
    data: dict[str, Any] = {"query": "funny like Shrek", "reply_channel": "mgw:reply:1"}
    data.update(overrides)
    return SearchRequested.model_validate(data)


def errors(excinfo: pytest.ExceptionInfo[ValidationError]) -> str:
    return " | ".join(f"{e['loc']} {e['msg']}" for e in excinfo.value.errors())


def test_search_requested_defaults() -> None:
    req = request()
    assert req.event_type == "discovery.search"
    assert req.page == 1
    assert req.page_size == DEFAULT_PAGE_SIZE == 20
    assert req.filters == SearchFilters()
    assert req.user_id is None


def test_search_requested_round_trips_in_an_envelope() -> None:
    req = request(
        filters={"genres": ["comedy"], "region": "us", "year_range": [2000, 2009]}, user_id="u1"
    )
    envelope = decode(encode(wrap(req, key="u1", source="gateway")), SearchRequested)
    assert envelope.payload == req
    assert envelope.payload.filters.region == "US"
    assert envelope.payload.filters.year_range == (2000, 2009)


@pytest.mark.parametrize(
    ("overrides", "field", "reason"),
    [
        ({"query": ""}, "query", "at least 1 character"),
        ({"query": "   "}, "query", "at least 1 character"),
        ({"query": "x" * 501}, "query", "at most 500 characters"),
        ({"page": 0}, "page", "greater than or equal to 1"),
        ({"page_size": 0}, "page_size", "greater than or equal to 1"),
        ({"page_size": 101}, "page_size", "less than or equal to 100"),
        ({"reply_channel": ""}, "reply_channel", "at least 1 character"),
        ({"surprise": 1}, "surprise", "Extra inputs are not permitted"),
    ],
)
def test_search_requested_rejects(overrides: dict[str, Any], field: str, reason: str) -> None:
    with pytest.raises(ValidationError) as excinfo:
        request(**overrides)
    assert field in errors(excinfo)
    assert reason in errors(excinfo)


def test_query_whitespace_is_collapsed() -> None:
    assert request(query="  funny \n like   Shrek ").query == "funny like Shrek"


def test_search_filters_normalize() -> None:
    filters = SearchFilters(
        genres=["Comedy", "science fiction", "comedy"],
        platforms=["Disney+", "HBO", "prime_video"],
        region=" gb ",
        blocked_genres=["Horror"],
        content_rating_limit="PG-13",
    )
    assert filters.genres == ["comedy", "science_fiction"]
    assert filters.platforms == ["disney_plus", "hbo_max", "prime_video"]
    assert filters.region == "GB"
    assert filters.blocked_genres == ["horror"]
    assert filters.content_rating_limit is MaturityRating.PG_13


def test_search_filters_take_the_spellings_feeds_and_people_use() -> None:
    filters = SearchFilters(
        genres=["Action & Adventure", "Sci-Fi & Fantasy"],
        region="uk",
        content_rating_limit="tv-ma",
    )
    # Ids the agent maps as the genre tables read the names: '&' is 'and'.
    assert filters.genres == ["action_and_adventure", "sci_fi_and_fantasy"]
    assert filters.region == "GB"  # as ingestion stores UK
    assert filters.content_rating_limit is MaturityRating.TV_MA
    assert SearchFilters(region="el").region == "GR"


@pytest.mark.parametrize(
    ("data", "field", "reason"),
    [
        ({"region": "USA"}, "region", "not an ISO 3166-1 alpha-2 code"),
        ({"region": "u1"}, "region", "not an ISO 3166-1 alpha-2 code"),
        ({"region": "ÄB"}, "region", "not an ISO 3166-1 alpha-2 code"),
        ({"year_range": [2010, 2000]}, "year_range", "from 2010 is after to 2000"),
        ({"year_range": [1700, 2000]}, "year_range", "year 1700 is outside 1800-2100"),
        ({"year_range": [2000]}, "year_range", "Field required"),
        ({"rating_range": [8, 5]}, "rating_range", "from 8.0 is above to 5.0"),
        ({"rating_range": [0, 11]}, "rating_range", "11.0 is outside 0.0-10.0"),
        ({"rating_range": [-1, 5]}, "rating_range", "-1.0 is outside 0.0-10.0"),
        ({"content_rating_limit": "X"}, "content_rating_limit", "Input should be"),
        ({"content_rating_limit": "PG13"}, "content_rating_limit", "Input should be"),
        ({"content_rating_limit": " pg"}, "content_rating_limit", "Input should be"),
        ({"genres": ["comedy!"]}, "genres", "not an id"),
        ({"blocked_genres": ["!"]}, "blocked_genres", "not an id"),
        ({"platforms": ["!!"]}, "platforms", "not an id"),
    ],
)
def test_search_filters_reject(data: dict[str, Any], field: str, reason: str) -> None:
    with pytest.raises(ValidationError) as excinfo:
        SearchFilters.model_validate(data)
    assert field in errors(excinfo)
    assert reason in errors(excinfo)


def test_parsed_intent() -> None:
    intent = ParsedIntent(
        mood=["happy"],
        references=["Shrek"],
        filters=IntentFilters(genres=["animation"], platforms=["Netflix"], year_range=(2000, 2009)),
        fallback_query="funny animated Shrek",
        confidence=0.5,
        source="rules",
    )
    assert intent.filters.platforms == ["netflix"]
    assert ParsedIntent.model_validate_json(intent.model_dump_json()) == intent


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"confidence": 1.5, "source": "llm"}, "confidence"),
        ({"confidence": -0.1, "source": "llm"}, "confidence"),
        ({"confidence": 0.5, "source": "magic"}, "source"),
        ({"confidence": 0.5, "source": "llm", "filters": {"year_range": [1999, 1990]}}, "filters"),
    ],
)
def test_parsed_intent_rejects(data: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as excinfo:
        ParsedIntent.model_validate(data)
    assert field in errors(excinfo)


def test_search_response_round_trips() -> None:
    result = SearchResult(
        canonical_id=uuid.uuid4(),
        title="Shrek",
        release_year=2001,
        genres=["animation"],
        platforms=["netflix"],
        relevance_score=0.8,
        match_reasons=["matches your query"],
        strategy_scores=StrategyScores(vector=0.0057, keyword=None),
    )
    response = SearchResponse(
        results=[result],
        total_count=1,
        page=1,
        page_size=20,
        query_parsed=ParsedIntent(confidence=0.5, source="rules"),
        search_time_ms=12.5,
        facets=Facets(genre={"animation": 1}),
        strategies_used=["vector", "keyword"],
        strategies_failed=["graph"],
    )
    assert SearchResponse.model_validate_json(response.model_dump_json()) == response


def test_search_response_rejects_unknown_strategies() -> None:
    with pytest.raises(ValidationError) as excinfo:
        SearchResponse(
            total_count=0,
            page=1,
            page_size=20,
            query_parsed=ParsedIntent(confidence=0.5, source="rules"),
            search_time_ms=1,
            strategies_failed=["telepathy"],  # type: ignore[list-item]
        )
    assert "strategies_failed" in errors(excinfo)
