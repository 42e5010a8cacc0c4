"""Weighted reciprocal rank fusion, checked against numbers computed by hand."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

import pytest

from agents.discovery.fusion import (
    MOOD_BOOST,
    RRF_K,
    THEME_BOOST_MAX,
    WEIGHTS,
    Hit,
    SearchHit,
    answered,
    fuse,
    rrf_term,
)
from schemas.discovery import ParsedIntent, SearchResult, Strategy

A, B, C, D = (uuid.UUID(int=n) for n in (1, 2, 3, 4))


def candidates(**genres: Sequence[str]) -> dict[uuid.UUID, SearchHit]:
    names = {"A": A, "B": B, "C": C, "D": D}
    return {
        cid: SearchHit(cid, title=f"Title {name}", genres=tuple(genres.get(name, ("drama",))))
        for name, cid in names.items()
    }


def hits(*ids: uuid.UUID) -> list[Hit]:
    return [Hit(cid) for cid in ids]


def by_id(results: list[SearchResult]) -> dict[uuid.UUID, SearchResult]:
    return {r.canonical_id: r for r in results}


def intent(**fields: object) -> ParsedIntent:
    return ParsedIntent.model_validate({"confidence": 0.5, "source": "rules", **fields})


def test_domain_constants() -> None:
    assert RRF_K == 60
    assert dict(WEIGHTS) == {"vector": 0.35, "graph": 0.30, "keyword": 0.20, "popularity": 0.15}
    assert rrf_term(0.35, 1) == pytest.approx(0.0057377049)  # 0.35 / 61
    assert rrf_term(0.20, 2) == pytest.approx(0.0032258065)  # 0.20 / 62
    with pytest.raises(ValueError):
        rrf_term(0.35, 0)


def test_three_strategies_fused_by_hand() -> None:
    rankings: dict[Strategy, list[Hit]] = {
        "vector": hits(A, B, C),
        "keyword": hits(B, A),
        "popularity": hits(C),
        "graph": [],  # found nothing: absent
    }
    results = fuse(rankings, candidates())
    assert [r.canonical_id for r in results] == [A, B, C]
    a, b, c = (by_id(results)[x] for x in (A, B, C))

    # A: vector rank 1 (.35/61 = .0057377) + keyword rank 2 (.20/62 = .0032258) = .0089635
    assert a.strategy_scores.vector == pytest.approx(0.0057377049)
    assert a.strategy_scores.keyword == pytest.approx(0.0032258065)
    assert a.strategy_scores.popularity is None
    assert a.strategy_scores.graph is None
    # B: vector rank 2 (.35/62 = .0056452) + keyword rank 1 (.20/61 = .0032787) = .0089239
    assert b.strategy_scores.vector == pytest.approx(0.0056451613)
    assert b.strategy_scores.keyword == pytest.approx(0.0032786885)
    # C: vector rank 3 (.35/63 = .0055556) + popularity rank 1 (.15/61 = .0024590) = .0080146
    assert c.strategy_scores.vector == pytest.approx(0.0055555556)
    assert c.strategy_scores.popularity == pytest.approx(0.0024590164)

    # Relevance: fused / best, best = (.35 + .20 + .15) / 61 (graph did not answer).
    # A: (.35/61 + .20/62) x 61/.70 = .5 + 12.2/43.4 = .781106
    # B: (.35/62 + .20/61) x 61/.70 = 21.35/43.4 + .285714 = .777650
    # C: (.35/63 + .15/61) x 61/.70 = 21.35/44.1 + .214286 = .698413
    assert a.relevance_score == pytest.approx(0.781106, abs=1e-6)
    assert b.relevance_score == pytest.approx(0.777650, abs=1e-6)
    assert c.relevance_score == pytest.approx(0.698413, abs=1e-6)


def test_one_strategy_missing_the_others_answer_alone() -> None:
    full = fuse({"vector": hits(A, B), "keyword": hits(B, A)}, candidates())
    # Vector failed: keyword alone decides, and its first title is the best it can be.
    alone = fuse({"keyword": hits(B, A)}, candidates())
    assert [r.canonical_id for r in full] == [A, B]
    assert [r.canonical_id for r in alone] == [B, A]
    b, a = alone
    assert b.relevance_score == pytest.approx(1.0)
    assert a.relevance_score == pytest.approx(61 / 62)  # .983871
    assert b.strategy_scores.vector is None
    assert b.strategy_scores.keyword == pytest.approx(0.2 / 61)
    assert b.match_reasons == ["matches words in your query"]


def test_a_failed_strategy_that_is_absent_or_empty_is_the_same() -> None:
    absent = fuse({"vector": hits(A, B)}, candidates())
    empty = fuse({"vector": hits(A, B), "graph": [], "popularity": []}, candidates())
    assert absent == empty


def test_answered() -> None:
    assert answered({"graph": hits(A), "vector": [], "keyword": hits(B)}) == ["keyword", "graph"]


def test_nothing_answered_gives_nothing() -> None:
    assert fuse({}, candidates()) == []
    assert fuse({"vector": []}, candidates()) == []


def test_a_title_listed_twice_keeps_its_better_rank() -> None:
    results = by_id(fuse({"vector": hits(A, A, B)}, candidates()))
    assert results[A].strategy_scores.vector == pytest.approx(0.35 / 61)
    assert results[B].strategy_scores.vector == pytest.approx(0.35 / 62)


def test_titles_without_a_candidate_are_left_out_without_moving_the_others() -> None:
    known = {k: v for k, v in candidates().items() if k != A}
    results = fuse({"vector": hits(A, B)}, known)
    assert [r.canonical_id for r in results] == [B]
    assert results[0].strategy_scores.vector == pytest.approx(0.35 / 62)


def test_unknown_strategy_is_an_error() -> None:
    with pytest.raises(ValueError, match="no weight"):
        fuse({"telepathy": hits(A)}, candidates())  # type: ignore[dict-item]


def test_match_reasons_name_the_strategies_strongest_first() -> None:
    rankings: dict[Strategy, list[Hit]] = {
        "popularity": hits(A),
        "vector": hits(A),
        "graph": [Hit(A, reason="same director as 'Alien'")],
    }
    (a,) = fuse(rankings, candidates())
    assert a.match_reasons == ["matches your query", "same director as 'Alien'", "popular"]
    # Ranked first everywhere that answered: the best possible score.
    assert a.relevance_score == pytest.approx(1.0)


def test_graph_reason_names_the_references() -> None:
    (a,) = fuse({"graph": hits(A)}, candidates(), intent(references=["Shrek"]))
    assert a.match_reasons == ["related to 'Shrek'"]


def test_title_similar_to_a_reference() -> None:
    shrek_2 = uuid.uuid4()
    known = {**candidates(), shrek_2: SearchHit(shrek_2, title="Shrek 2")}
    results = by_id(fuse({"keyword": hits(shrek_2, A)}, known, intent(references=["Shrek"])))
    assert "title similar to 'Shrek'" in results[shrek_2].match_reasons
    assert not any("similar" in reason for reason in results[A].match_reasons)


def test_mood_genres_are_a_small_multiplicative_boost() -> None:
    known = candidates(A=("drama",), B=("comedy", "family", "animation"))
    plain = by_id(fuse({"vector": hits(A, B)}, known))
    boosted = fuse({"vector": hits(A, B)}, known, intent(mood=["happy"]))
    # B: 61/62 = .983871 x 1.10 = 1.082258 > A's 1.0; boosted once however many genres match.
    assert [r.canonical_id for r in boosted] == [B, A]
    b = by_id(boosted)[B]
    assert b.relevance_score == pytest.approx(plain[B].relevance_score * MOOD_BOOST)
    assert b.relevance_score == pytest.approx(1.082258, abs=1e-6)
    assert b.match_reasons == [
        "matches your query",
        "genre: comedy (mood: happy)",
        "genre: family (mood: happy)",
        "genre: animation (mood: happy)",
    ]
    assert by_id(boosted)[A].relevance_score == pytest.approx(1.0)


def test_a_mood_boost_does_not_beat_two_strategies_ranking_first() -> None:
    known = candidates(A=("drama",), B=("comedy",))
    results = fuse(
        {"vector": hits(A, B), "keyword": hits(A), "graph": hits(A, B)},
        known,
        intent(mood=["happy"]),
    )
    assert [r.canonical_id for r in results] == [A, B]


def test_themes_boost_per_theme_up_to_a_cap() -> None:
    one, two, three = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    known = {
        one: SearchHit(one, title="Payback", keywords=("revenge",)),
        two: SearchHit(two, title="Looper", keywords=("revenge", "time travel")),
        three: SearchHit(three, title="Space Revenge", keywords=("time travel", "heist")),
    }
    themes = intent(themes=["revenge", "time travel", "space", "heist"])
    # Each title alone in its own keyword list: rank 1, relevance 1.0 before boosts.
    for cid, factor in ((one, 1.05), (two, 1.05**2), (three, THEME_BOOST_MAX)):
        (result,) = fuse({"keyword": hits(cid)}, known, themes)
        assert result.relevance_score == pytest.approx(factor)
    (looper,) = fuse({"keyword": hits(two)}, known, themes)
    assert looper.match_reasons[-2:] == ["theme: revenge", "theme: time travel"]


def test_personalization_blend() -> None:
    results = fuse(
        {"vector": hits(A, B)},
        candidates(),
        personal_scores={A: 0.0, B: 1.0},
    )
    # A: 1.0 x .75 + 0 x .25 = .75; B: 61/62 x .75 + 1 x .25 = .737903 + .25 = .987903
    assert [r.canonical_id for r in results] == [B, A]
    b, a = results
    assert a.relevance_score == pytest.approx(0.75)
    assert b.relevance_score == pytest.approx(0.987903, abs=1e-6)
    assert "matches your taste" in b.match_reasons
    assert "matches your taste" not in a.match_reasons


def test_titles_sona_did_not_score_keep_their_relevance() -> None:
    results = by_id(fuse({"vector": hits(A, B)}, candidates(), personal_scores={A: 0.2}))
    assert results[B].relevance_score == pytest.approx(61 / 62)
    assert results[A].relevance_score == pytest.approx(0.75 + 0.05)


def test_personal_scores_are_clamped_to_0_1() -> None:
    (a,) = fuse({"vector": hits(A)}, candidates(), personal_scores={A: 7.0})
    assert a.relevance_score == pytest.approx(1.0)
    (a,) = fuse({"vector": hits(A)}, candidates(), personal_scores={A: float("nan")})
    assert a.relevance_score == pytest.approx(1.0)


def test_ties_break_by_id_for_a_stable_order() -> None:
    first = fuse(
        {"vector": hits(B), "keyword": hits(A)},
        candidates(),
        weights={"vector": 0.5, "keyword": 0.5, "graph": 0.0, "popularity": 0.0},
    )
    assert [r.canonical_id for r in first] == [A, B]


def test_candidate_from_payload() -> None:
    cid = uuid.uuid4()
    doc = {
        "title": "Shrek",
        "release_year": 2001,
        "genres": ["comedy", "animation"],
        "keywords": ["ogre", 5],
        "availability": [
            {"platform": "netflix", "regions": ["US"]},
            {"platform": "hulu", "regions": ["GB"]},
        ],
    }
    candidate = SearchHit.from_payload(cid, doc, region="US")
    assert candidate == SearchHit(
        cid,
        title="Shrek",
        release_year=2001,
        genres=("animation", "comedy"),
        platforms=("netflix",),
        keywords=("ogre",),
    )
    vector_payload = {"title": "Alien", "genres": ["horror"], "platforms": ["hbo_max"]}
    assert SearchHit.from_payload(cid, vector_payload).platforms == ("hbo_max",)
    assert SearchHit.from_payload(cid, {"release_year": True}).release_year is None
