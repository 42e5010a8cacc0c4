"""From the strategies' lists to the SearchResponse: filtering before fusion, the popularity
list, reference titles left out, vector cut-offs, facets and pages."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from agents.discovery.fusion import (
    REFERENCE_GENRE_BOOST,
    TITLE_MATCH_BOOST,
    Hit,
    SearchHit,
    fuse,
    is_title_match,
)
from agents.discovery.plan import plan_search
from agents.discovery.ranking import (
    Retrieved,
    assemble,
    close_enough,
    popularity_ranking,
)
from schemas.discovery import ParsedIntent, SearchRequested

A, B, C, D, R = (uuid.UUID(int=n) for n in (1, 2, 3, 4, 99))


def payload(title: str, **fields: Any) -> dict[str, Any]:
    return {
        "title": title,
        "genres": ["drama"],
        "availability": [{"platform": "netflix", "regions": ["US"]}],
        "release_year": 2000,
        **fields,
    }


PAYLOADS = {
    A: payload("Alpha", popularity_score=1.0),
    B: payload("Beta", popularity_score=50.0, genres=["comedy"]),
    C: payload("Gamma", popularity_score=0.0, release_year=1985),
    D: payload("Delta", popularity_score=9.0, availability=[{"platform": "hulu", "regions": []}]),
    R: payload("Reference", popularity_score=99.0, genres=["comedy", "drama"]),
}


def request(**fields: object) -> SearchRequested:
    return SearchRequested.model_validate({"query": "q", "reply_channel": "c", **fields})


def intent(**fields: object) -> ParsedIntent:
    return ParsedIntent.model_validate(
        {"confidence": 0.5, "source": "rules", "fallback_query": "words", **fields}
    )


def hits(*ids: uuid.UUID) -> list[Hit]:
    return [Hit(i) for i in ids]


def test_close_enough() -> None:
    assert close_enough([0.5, 0.4, 0.31, 0.29, 0.9]) == 3  # 0.6 x 0.5 = 0.3
    assert close_enough([]) == 0
    assert close_enough([0.0, -0.1]) == 2  # no meaningful best: keep what came
    assert close_enough([0.8], ratio=0.9) == 1


def test_popularity_ranking_leaves_unmeasured_titles_out() -> None:
    ranked = popularity_ranking([A, B, C, D], PAYLOADS)
    assert [h.canonical_id for h in ranked] == [B, D, A]


def test_popularity_ties_go_by_ratings_then_id() -> None:
    same = {
        A: {"popularity_score": 5, "rating_count": 1},
        B: {"popularity_score": 5, "rating_count": 9},
    }
    assert [h.canonical_id for h in popularity_ranking([A, B], same)] == [B, A]


def test_lists_are_filtered_before_fusion_and_popularity_added() -> None:
    read = intent(filters={"platforms": ["netflix"]})
    plan = plan_search(request(), read)
    retrieved = Retrieved(rankings={"vector": hits(D, A, C), "keyword": hits(B)}, payloads=PAYLOADS)
    response = assemble(request(), read, plan, retrieved, 12.5).response
    ids = [r.canonical_id for r in response.results]
    assert D not in ids  # left Hulu, never on Netflix
    assert set(ids) == {A, B, C}
    assert response.strategies_used == ["vector", "keyword", "popularity"]
    assert response.strategies_failed == []
    a = next(r for r in response.results if r.canonical_id == A)
    # A is first of the vector list once D is gone: ranks count among titles that may show.
    assert a.strategy_scores.vector == pytest.approx(0.35 / 61)
    assert a.strategy_scores.popularity == pytest.approx(0.15 / 62)  # B is more popular
    assert response.total_count == 3 and response.search_time_ms == 12.5
    assert response.facets.platform == {"netflix": 3}
    assert response.facets.decade == {"2000s": 2, "1980s": 1}


def test_references_are_left_out_and_their_genres_boost() -> None:
    read = intent(references=["Reference"])
    plan = plan_search(request(), read)
    retrieved = Retrieved(
        rankings={"graph": hits(R, A, B)}, payloads=PAYLOADS, references={R: "Reference"}
    )
    response = assemble(request(), read, plan, retrieved, 1.0).response
    ids = [r.canonical_id for r in response.results]
    assert R not in ids
    b = next(r for r in response.results if r.canonical_id == B)
    assert "genre: comedy (like 'Reference')" in b.match_reasons
    assert "related to 'Reference'" in b.match_reasons


def test_missing_payloads_drop_the_title() -> None:
    plan = plan_search(request(), intent())
    retrieved = Retrieved(rankings={"keyword": hits(uuid.UUID(int=7), A)}, payloads=PAYLOADS)
    response = assemble(request(), intent(), plan, retrieved, 0).response
    assert [r.canonical_id for r in response.results] == [A]


def test_degraded_payloads_fail_popularity_and_failures_are_reported_in_order() -> None:
    plan = plan_search(request(), intent())
    retrieved = Retrieved(
        rankings={"vector": hits(A)},
        failed=["graph", "keyword"],
        payloads={A: {"title": "Alpha", "genres": ["drama"], "platforms": ["netflix"]}},
        degraded=True,
    )
    response = assemble(request(), intent(), plan, retrieved, 0).response
    assert response.strategies_used == ["vector"]
    assert response.strategies_failed == ["keyword", "popularity", "graph"]


def test_the_page_is_cut_after_fusion() -> None:
    plan = plan_search(request(page=2, page_size=1), intent())
    retrieved = Retrieved(rankings={"vector": hits(A, B, C)}, payloads=PAYLOADS)
    response = assemble(request(page=2, page_size=1), intent(), plan, retrieved, 0).response
    assert len(response.results) == 1 and response.total_count == 3
    assert response.page == 2 and response.page_size == 1
    assert sum(response.facets.decade.values()) == 3


@pytest.mark.parametrize(
    ("title", "words", "match"),
    [
        ("The Shawshank Redemption", "shawshank redemtion", True),
        ("Spider-Man", "spiderman", True),
        ("The Godfather", "godfahter", True),
        ("Shrek", "funny animated shrek", False),
        ("Shrek", "", False),
        ("Inception", "dreams", False),
    ],
)
def test_title_match(title: str, words: str, match: bool) -> None:
    assert is_title_match(title, words) is match


def test_title_match_and_reference_genres_boost() -> None:
    candidates = {
        A: SearchHit(A, "The Godfather", genres=("crime",)),
        B: SearchHit(B, "Inception", genres=("science_fiction",)),
    }
    rankings = {"vector": hits(B, A)}
    plain = {r.canonical_id: r for r in fuse(rankings, candidates)}
    boosted = fuse(
        rankings,
        candidates,
        title_form="godfahter",
        reference_genres={"The Matrix": ["science_fiction", "action"]},
    )
    by_id = {r.canonical_id: r for r in boosted}
    assert by_id[A].relevance_score == pytest.approx(plain[A].relevance_score * TITLE_MATCH_BOOST)
    assert by_id[A].match_reasons[0] == "title matches your query"
    assert by_id[B].relevance_score == pytest.approx(
        plain[B].relevance_score * REFERENCE_GENRE_BOOST
    )
    assert "genre: science_fiction (like 'The Matrix')" in by_id[B].match_reasons
    assert [r.canonical_id for r in boosted] == [A, B]
