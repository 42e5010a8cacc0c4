"""The filter test over candidate payloads, the request/intent merge, where to filter."""

from __future__ import annotations

from typing import Any

import pytest

from agents.discovery.filters import (
    MATURITY_LEVEL,
    OVERFETCH_FACTOR,
    VectorFetchPlan,
    is_empty,
    matches,
    merge_filters,
    payload_platforms,
    plan_vector_fetch,
)
from agents.discovery.intent_rules import parse_intent
from schemas.content import MaturityRating
from schemas.discovery import IntentFilters, ParsedIntent, SearchFilters


def document(**overrides: Any) -> dict[str, Any]:
    """A read-model document: CanonicalContent as JSON, availability per offer."""
    doc: dict[str, Any] = {
        "title": "Shrek",
        "genres": ["animation", "comedy", "family"],
        "release_year": 2001,
        "average_rating": 7.9,
        "maturity_rating": "PG",
        "availability": [
            {"platform": "netflix", "availability_type": "subscription", "regions": ["US"]},
            {"platform": "prime_video", "availability_type": "rental", "regions": ["GB", "DE"]},
            {"platform": "hulu", "availability_type": "subscription", "regions": []},
        ],
    }
    doc.update(overrides)
    return doc


def flat(**overrides: Any) -> dict[str, Any]:
    """The vector store's payload: platforms and regions as two flat lists."""
    payload: dict[str, Any] = {
        "title": "Alien",
        "genres": ["horror", "science_fiction"],
        "release_year": 1979,
        "platforms": ["hbo_max"],
        "regions": ["US"],
    }
    payload.update(overrides)
    return payload


def intent(**filters: Any) -> ParsedIntent:
    return ParsedIntent(filters=IntentFilters(**filters), confidence=0.5, source="rules")


def test_no_filters_pass_everything() -> None:
    assert matches(document(), SearchFilters())
    assert matches({}, SearchFilters())


@pytest.mark.parametrize(
    "filters",
    [
        SearchFilters(genres=["comedy"]),
        SearchFilters(genres=["horror", "family"]),  # any one genre is enough
        SearchFilters(platforms=["netflix"]),
        SearchFilters(platforms=["netflix"], region="us"),
        SearchFilters(platforms=["prime_video"], region="DE"),
        SearchFilters(region="GB"),
        SearchFilters(year_range=(2001, 2001)),
        SearchFilters(year_range=(2000, 2009)),
        SearchFilters(rating_range=(7.9, 10)),
        SearchFilters(content_rating_limit=MaturityRating.PG),
        SearchFilters(content_rating_limit=MaturityRating.TV_14),
        SearchFilters(blocked_genres=["horror"]),
    ],
)
def test_a_matching_title_passes(filters: SearchFilters) -> None:
    assert matches(document(), filters)


@pytest.mark.parametrize(
    "filters",
    [
        SearchFilters(genres=["horror"]),
        SearchFilters(platforms=["disney_plus"]),
        # Offered on Netflix in the US only, and on Prime in GB and DE only.
        SearchFilters(platforms=["netflix"], region="GB"),
        SearchFilters(platforms=["prime_video"], region="US"),
        # Hulu's offer lists no region: the title left Hulu.
        SearchFilters(platforms=["hulu"]),
        SearchFilters(region="FR"),
        SearchFilters(year_range=(2002, 2010)),
        SearchFilters(year_range=(1990, 2000)),
        SearchFilters(rating_range=(8.0, 10)),
        SearchFilters(content_rating_limit=MaturityRating.G),
        SearchFilters(content_rating_limit=MaturityRating.TV_Y7),
        SearchFilters(blocked_genres=["family"]),
    ],
)
def test_a_non_matching_title_never_passes(filters: SearchFilters) -> None:
    assert not matches(document(), filters)


def test_blocked_genres_block_even_when_the_genre_is_asked_for() -> None:
    filters = SearchFilters(genres=["comedy"], blocked_genres=["comedy"])
    assert not matches(document(), filters)
    assert not matches(document(genres=["comedy"]), SearchFilters(blocked_genres=["comedy"]))


def test_unknown_values_fail_the_bounds_that_need_them() -> None:
    assert not matches(document(release_year=None), SearchFilters(year_range=(1800, 2100)))
    assert not matches(document(average_rating=None), SearchFilters(rating_range=(0, 10)))
    limit = SearchFilters(content_rating_limit=MaturityRating.NC_17)
    assert not matches(document(maturity_rating=None), limit)
    assert not matches(document(maturity_rating="16+"), limit)
    assert not matches(document(release_year="2001"), SearchFilters(year_range=(2000, 2009)))


def test_the_flat_vector_payload() -> None:
    assert matches(flat(), SearchFilters(genres=["science_fiction"], platforms=["hbo_max"]))
    assert matches(flat(), SearchFilters(platforms=["hbo_max"], region="us"))
    assert not matches(flat(), SearchFilters(platforms=["hbo_max"], region="GB"))
    assert not matches(flat(), SearchFilters(platforms=["netflix"]))
    assert not matches(flat(), SearchFilters(blocked_genres=["horror"]))
    assert not matches(flat(platforms=[]), SearchFilters(platforms=["hbo_max"]))


def test_payload_platforms() -> None:
    assert payload_platforms(document()) == ["netflix", "prime_video"]
    assert payload_platforms(document(), "gb") == ["prime_video"]
    assert payload_platforms(document(), "FR") == []
    assert payload_platforms(flat()) == ["hbo_max"]
    assert payload_platforms(flat(), "US") == ["hbo_max"]
    assert payload_platforms(flat(), "GB") == []


def test_maturity_levels_cover_every_rating_in_order() -> None:
    assert set(MATURITY_LEVEL) == set(MaturityRating)
    levels = [MATURITY_LEVEL[MaturityRating(r)] for r in ("G", "TV-Y7", "PG", "PG-13", "R")]
    assert levels == sorted(levels) and len(set(levels)) == len(levels)
    assert MATURITY_LEVEL[MaturityRating.TV_MA] > MATURITY_LEVEL[MaturityRating.TV_14]


def test_intent_filters_apply_when_the_request_sets_none() -> None:
    merged = merge_filters(
        SearchFilters(region="us"),
        intent(genres=["animation"], platforms=["netflix"], year_range=(2000, 2009)),
    )
    assert merged == SearchFilters(
        genres=["animation"], platforms=["netflix"], region="US", year_range=(2000, 2009)
    )


def test_request_filters_win_where_both_are_set() -> None:
    merged = merge_filters(
        SearchFilters(genres=["horror"], platforms=["hulu"], year_range=(1980, 1989)),
        intent(genres=["comedy"], platforms=["netflix"], year_range=(2000, 2009)),
    )
    assert merged.genres == ["horror"]
    assert merged.platforms == ["hulu"]
    assert merged.year_range == (1980, 1989)


def test_each_field_merges_on_its_own() -> None:
    merged = merge_filters(
        SearchFilters(platforms=["hulu"], rating_range=(6, 10)),
        intent(genres=["comedy"], platforms=["netflix"]),
    )
    assert merged.genres == ["comedy"]
    assert merged.platforms == ["hulu"]
    assert merged.rating_range == (6, 10)


def test_blocked_genres_always_apply_after_a_merge() -> None:
    merged = merge_filters(
        SearchFilters(blocked_genres=["horror"]), parse_intent("horror movies on netflix")
    )
    assert merged.genres == ["horror"]
    assert merged.blocked_genres == ["horror"]
    horror = document(genres=["horror"], availability=[{"platform": "netflix", "regions": ["US"]}])
    assert not matches(horror, merged)


def test_the_issue_example_filters_the_candidates() -> None:
    merged = merge_filters(
        SearchFilters(),
        parse_intent("something funny and animated like Shrek on Netflix from the 2000s"),
    )
    assert matches(document(), merged)
    assert not matches(document(release_year=1995), merged)
    assert not matches(document(genres=["comedy"]), merged)
    assert not matches(document(availability=[{"platform": "hulu", "regions": ["US"]}]), merged)


def test_merge_maps_request_genre_names_to_canonical_ones() -> None:
    merged = merge_filters(SearchFilters(genres=["Sci-Fi"], blocked_genres=["thrillers"]), intent())
    assert merged.genres == ["science_fiction"]
    assert merged.blocked_genres == ["thriller"]


def test_is_empty() -> None:
    assert is_empty(SearchFilters())
    assert is_empty(merge_filters(SearchFilters(), intent()))
    assert not is_empty(SearchFilters(region="US"))


@pytest.mark.parametrize(
    ("selectivity", "plan"),
    [
        (0.0, VectorFetchPlan(filter_in_store=True, fetch_k=50)),
        (0.05, VectorFetchPlan(filter_in_store=True, fetch_k=50)),
        (0.0999, VectorFetchPlan(filter_in_store=True, fetch_k=50)),
        (0.1, VectorFetchPlan(filter_in_store=False, fetch_k=150)),
        (0.5, VectorFetchPlan(filter_in_store=False, fetch_k=150)),
        (1.0, VectorFetchPlan(filter_in_store=False, fetch_k=150)),
    ],
)
def test_filter_in_the_store_only_when_selective(selectivity: float, plan: VectorFetchPlan) -> None:
    assert plan_vector_fetch(selectivity) == plan


def test_overfetch_scales_with_top_k() -> None:
    assert plan_vector_fetch(0.3, top_k=20).fetch_k == OVERFETCH_FACTOR * 20 == 60
    assert plan_vector_fetch(0.01, top_k=20).fetch_k == 20


@pytest.mark.parametrize("selectivity", [-0.1, 1.5, float("nan")])
def test_selectivity_must_be_a_share(selectivity: float) -> None:
    with pytest.raises(ValueError, match="selectivity"):
        plan_vector_fetch(selectivity)
