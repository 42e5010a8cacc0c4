"""The search plan and the selectivity estimate behind it."""

from __future__ import annotations

import pytest

from agents.discovery.filters import OVERFETCH_FACTOR, VECTOR_TOP_K
from agents.discovery.plan import (
    MAX_REFERENCES,
    STALE_AFTER_MIN_S,
    BrowseWindow,
    by_words,
    is_stale,
    plan_search,
)
from agents.discovery.selectivity import CatalogStats, estimate_selectivity
from schemas.discovery import ParsedIntent, SearchFilters, SearchRequested

STATS = CatalogStats(
    total=1000,
    genres={"comedy": 300, "horror": 50, "animation": 80, "drama": 400},
    platforms={"netflix": 400, "hulu": 100},
    regions={"US": 900, "GB": 300},
    years={1985: 100, 1995: 200, 2005: 300, 2015: 400},
)


def request(**fields: object) -> SearchRequested:
    return SearchRequested.model_validate({"query": "q", "reply_channel": "c", **fields})


def intent(**fields: object) -> ParsedIntent:
    return ParsedIntent.model_validate({"confidence": 0.5, "source": "rules", **fields})


@pytest.mark.parametrize(
    ("filters", "share"),
    [
        (SearchFilters(), 1.0),
        (SearchFilters(genres=["horror"]), 0.05),
        (SearchFilters(genres=["horror", "animation"]), 0.13),
        (SearchFilters(blocked_genres=["drama"]), 0.6),
        (SearchFilters(platforms=["netflix"], region="GB"), 0.4 * 0.3),
        (SearchFilters(year_range=(1990, 2009)), 0.5),
        (SearchFilters(genres=["comedy"], platforms=["hulu"]), 0.3 * 0.1),
        (SearchFilters(genres=["unknown"]), 0.0),
        (SearchFilters(genres=["comedy", "drama", "animation", "horror"]), 0.83),
    ],
)
def test_selectivity(filters: SearchFilters, share: float) -> None:
    assert estimate_selectivity(STATS, filters) == pytest.approx(share)


def test_an_uncounted_catalog_is_not_selective() -> None:
    assert estimate_selectivity(CatalogStats(), SearchFilters(genres=["horror"])) == 1.0


def test_rating_and_maturity_do_not_count() -> None:
    # The vector store cannot apply them: they are checked after the fetch either way.
    loose = SearchFilters(rating_range=(9.0, 10.0), content_rating_limit="G")
    assert estimate_selectivity(STATS, loose) == 1.0


def test_a_selective_filter_is_applied_in_the_store() -> None:
    plan = plan_search(request(filters={"genres": ["horror"]}), intent(fallback_query="x"), STATS)
    assert plan.vector.filter_in_store and plan.vector.fetch_k == VECTOR_TOP_K
    loose = plan_search(request(filters={"genres": ["comedy"]}), intent(fallback_query="x"), STATS)
    assert not loose.vector.filter_in_store
    assert loose.vector.fetch_k == OVERFETCH_FACTOR * VECTOR_TOP_K


def test_the_intent_filters_count_towards_selectivity() -> None:
    read = intent(fallback_query="x", filters={"genres": ["horror"], "platforms": ["netflix"]})
    plan = plan_search(request(), read, STATS)
    assert plan.filters.genres == ["horror"] and plan.filters.platforms == ["netflix"]
    assert plan.vector.filter_in_store


def test_words_references_and_browsing() -> None:
    plan = plan_search(
        request(), intent(fallback_query="  The  Shawshank Redemtion ", references=["Shrek"])
    )
    assert plan.text == "The Shawshank Redemtion"
    assert plan.title_form == "shawshank redemtion"
    assert plan.references == ("Shrek",)
    assert not plan.browse
    only_filters = plan_search(request(), intent(filters={"platforms": ["netflix"]}))
    assert only_filters.browse == BrowseWindow(offset=0, limit=20)
    assert only_filters.text == "" and only_filters.title_form == ""
    like_only = plan_search(request(), intent(references=["Heat"]))
    assert not like_only.browse


@pytest.mark.parametrize(
    ("words", "filters", "browse"),
    [
        ("horror", {"genres": ["horror"]}, True),
        ("horror movies", {"genres": ["horror"]}, True),
        ("sci-fi fantasy", {"genres": ["science_fiction", "fantasy"]}, True),
        ("comedies", {"genres": ["comedy"]}, True),
        ("netflix", {"platforms": ["netflix"]}, True),
        # A mood ranks titles, it filters none.
        ("scary", {}, False),
        ("horror festival", {"genres": ["horror"]}, False),
        ("heist", {"genres": ["crime"]}, False),  # heist is crime and thriller
    ],
)
def test_words_that_only_repeat_the_filters_browse(
    words: str, filters: dict[str, list[str]], browse: bool
) -> None:
    plan = plan_search(request(), intent(fallback_query=words, filters=filters))
    assert (plan.browse is not None) is browse
    assert plan.text == ("" if browse else words)


def test_references_are_deduplicated_and_capped() -> None:
    many = [f"Title {n}" for n in range(6)]
    plan = plan_search(request(), intent(references=["Heat", "Heat", *many]))
    assert plan.references[0] == "Heat" and len(plan.references) == MAX_REFERENCES


def test_what_a_search_fetches_does_not_depend_on_the_page() -> None:
    first = plan_search(request(page=1, page_size=20), intent(fallback_query="x"), STATS)
    deep = plan_search(request(page=30, page_size=100), intent(fallback_query="x"), STATS)
    assert first == deep
    browsing = intent(filters={"platforms": ["netflix"]})
    page = plan_search(request(page=4, page_size=25), browsing, STATS)
    assert page.browse == BrowseWindow(offset=75, limit=25)


def test_stale_requests() -> None:
    assert not is_stale(1.0, 3.0)
    assert not is_stale(5.9, 3.0)
    assert is_stale(6.1, 3.0)
    assert is_stale(STALE_AFTER_MIN_S + 0.1, 0.5)
    assert not is_stale(STALE_AFTER_MIN_S - 0.1, 0.5)


def test_the_words_as_typed_and_the_request_filters_for_titles() -> None:
    # "Vampire Cop": the rules may read "cop" as a genre; the words as typed are kept, with
    # the request's own filters, for the word search.
    plan = plan_search(
        request(query="The Vampire Cop", filters={"region": "US"}),
        intent(filters={"genres": ["crime"]}, fallback_query="vampire"),
    )
    assert plan.words == ("vampire", "cop")
    assert plan.fallback_words == ("vampire",)
    assert plan.filters.genres == ["crime"]
    assert plan.title_filters == SearchFilters(region="US")


def test_a_browse_named_like_a_title_searches_by_its_words() -> None:
    plan = plan_search(request(query="Horror"), intent(filters={"genres": ["horror"]}))
    assert plan.browse is not None and plan.text == ""
    searched = by_words(plan)
    assert searched.browse is None and searched.text == searched.title_form == "horror"
    assert searched.filters == plan.filters
