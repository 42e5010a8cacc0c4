"""Parental-control rules over generated titles and limits: a title passes a profile's limits
exactly when its rating is at most the limit and none of its genres is blocked; a client's
filters can narrow a profile's limits, never widen them; and different limits never share a
cached answer (the search result key and the recommendation cache field both hold them)."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from agents.discovery.filters import matches
from agreements.discovery_cache import request_results_key
from agreements.genres import CANONICAL_GENRES
from agreements.parental_controls import MATURITY_LEVEL, limits_tag, refusal, within_limits
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
