"""Parental-control rules over generated titles and limits: a title passes a profile's limits
exactly when its rating is at most the limit and none of its genres is blocked; a client's
filters can narrow a profile's limits, never widen them; and different limits never share a
cached answer (the search result key and the recommendation cache field both hold them)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from agents.discovery.filters import matches
from agreements.discovery_cache import request_results_key
from agreements.genres import CANONICAL_GENRES
from agreements.parental_controls import (
    MATURITY_LEVEL,
    limits_tag,
    rated_as_series,
    refusal,
    title_refusal,
    within_limits,
)
from agreements.sona_cache import context_field
from schemas.accounts import ProfileLimits
from schemas.content import MaturityRating
from schemas.discovery import SearchFilters, SearchRequested
from schemas.sona import RecommendationsRequested

RATINGS = st.sampled_from([*MaturityRating, None, "", "X"])
GENRES = st.lists(st.sampled_from(CANONICAL_GENRES), max_size=4, unique=True)
LIMITS = st.builds(
    ProfileLimits,
    content_rating_limit=st.sampled_from([*MaturityRating, None]),
    blocked_genres=st.lists(st.sampled_from(CANONICAL_GENRES), max_size=5, unique=True),
)
CLIENT = st.builds(
    SearchFilters,
    content_rating_limit=st.sampled_from([*MaturityRating, None]),
    blocked_genres=st.lists(st.sampled_from(CANONICAL_GENRES), max_size=3, unique=True),
)


def over(rating: object, limits: ProfileLimits) -> bool:
    limit = limits.content_rating_limit
    if limit is None:
        return False
    if rating not in set(MaturityRating):
        return True
    return MATURITY_LEVEL[MaturityRating(rating)] > MATURITY_LEVEL[limit]


@given(RATINGS, GENRES, LIMITS)
def test_a_title_passes_exactly_when_within_the_limits(
    rating: object, genres: list[str], limits: ProfileLimits
) -> None:
    beyond = over(rating, limits) or bool(set(genres) & set(limits.blocked_genres))
    assert (refusal(rating, genres, limits) is not None) == beyond


@given(RATINGS, GENRES, LIMITS, CLIENT)
def test_a_search_under_a_profile_never_passes_a_title_beyond_it(
    rating: object, genres: list[str], limits: ProfileLimits, client: SearchFilters
) -> None:
    title = {"maturity_rating": rating, "genres": genres}
    if matches(title, within_limits(client, limits)):
        assert refusal(rating, genres, limits) is None
        # ... nor one the client's own filters refuse: the client narrows, never widens.
        assert matches(title, client)


@given(LIMITS, LIMITS)
def test_different_limits_never_share_a_cached_answer(a: ProfileLimits, b: ProfileLimits) -> None:
    if a == b:
        return
    search = SearchRequested(query="cartoons", reply_channel="x")
    keys = {
        request_results_key("p", search.model_copy(update={"filters": within_limits(f, lim)}))
        for f, lim in ((search.filters, a), (search.filters, b))
    }
    assert limits_tag(a) != limits_tag(b) or not (a.restricts or b.restricts)
    if a.restricts or b.restricts:
        assert len(keys) == 2
        at = datetime(2026, 12, 6, 20, tzinfo=UTC)
        fields = {
            context_field(
                RecommendationsRequested(user_id="u", at=at, reply_channel="x", limits=lim)
            )
            for lim in (a, b)
        }
        assert len(fields) == 2


@given(LIMITS)
def test_no_limits_share_the_adult_answer_only_when_they_restrict_nothing(
    limits: ProfileLimits,
) -> None:
    at = datetime(2026, 12, 6, 20, tzinfo=UTC)
    adult = RecommendationsRequested(user_id="u", at=at, reply_channel="x")
    limited = adult.model_copy(update={"limits": limits})
    assert (context_field(adult) == context_field(limited)) == (not limits.restricts)


PG_ONLY = ProfileLimits(content_rating_limit=MaturityRating.PG, blocked_genres=["horror"])
SERIES_ID = "e065a243-d501-54e4-b31d-15f6372793f7"


def _episode(rating: str | None = None, genres: tuple[str, ...] = ("drama",)) -> dict[str, Any]:
    return {
        "content_type": "episode",
        "maturity_rating": rating,
        "genres": list(genres),
        "series": {"parent_id": SERIES_ID, "season_number": 1, "episode_number": 2},
    }


def test_an_unrated_episode_is_judged_by_its_series() -> None:
    # Found by hand: feeds rate the series, seldom each episode, so a kids profile was refused
    # every episode of a TV-G series ("rated unrated") and saw no series in continue watching.
    assert rated_as_series(_episode()) == SERIES_ID
    family = {"content_type": "series", "maturity_rating": "TV-G", "genres": ["drama"]}
    assert title_refusal(_episode(), PG_ONLY, family) is None
    mature = {"content_type": "series", "maturity_rating": "TV-MA", "genres": ["drama"]}
    refused = title_refusal(_episode(), PG_ONLY, mature)
    assert refused == "rated TV-MA, above this profile's limit PG"
    scary = {"content_type": "series", "maturity_rating": "TV-G", "genres": ["horror"]}
    assert title_refusal(_episode(), PG_ONLY, scary) == "genre horror is blocked for this profile"
    # The series unknown: the episode stays unrated, and is refused under a limit.
    assert title_refusal(_episode(), PG_ONLY) == "unrated, and this profile's limit is PG"


def test_a_title_with_its_own_rating_is_judged_by_it() -> None:
    assert rated_as_series(_episode("TV-MA")) is None
    family = {"content_type": "series", "maturity_rating": "TV-G", "genres": []}
    assert title_refusal(_episode("TV-MA"), PG_ONLY, family) is not None
    movie = {"content_type": "movie", "maturity_rating": None, "genres": ["family"]}
    assert rated_as_series(movie) is None
    assert title_refusal(movie, PG_ONLY) == "unrated, and this profile's limit is PG"
