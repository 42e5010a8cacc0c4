"""The recommendation mix, the adapter boost, MMR diversity, exclusions and cold start."""

from __future__ import annotations

import random
import uuid
from dataclasses import replace
from datetime import UTC, datetime

import numpy as np
import pytest

from agents.sona import ranking
from agents.sona.context import build_context
from agents.sona.lora import DimensionMismatch, UserLoRAAdapter
from agents.sona.population import PopulationLayer
from agents.sona.profile import UserProfile, WatchEvent, apply_watch, fold_taste
from agents.sona.ranking import (
    FALLBACK_REASON,
    Candidate,
    cold_start_score,
    mix_score,
    mmr,
    recommend,
)
from agents.sona.training import Viewing, engagement_label
from schemas.sync import DeviceType
from tests.unit.sona.factories import DIM, basis, random_unit, unit

EVENING = datetime(2024, 5, 1, 20, 0, tzinfo=UTC)


def cid(n: int) -> uuid.UUID:
    return uuid.UUID(int=n)


def candidate(n: int, vector=None, **scores) -> Candidate:
    return Candidate(canonical_id=cid(n), title=f"Title {n}", vector=vector, **scores)


def profile_with_history(*vectors, device: DeviceType = DeviceType.tv) -> UserProfile:
    profile = UserProfile.empty(DIM)
    for vector in vectors:
        viewing = Viewing(completion=1.0, rating=5)
        event = WatchEvent(
            content_id="seen",
            genres=("drama",),
            at=EVENING,
            viewing=viewing,
            device_type=device,
        )
        profile = apply_watch(profile, event)
        profile = fold_taste(profile, vector, engagement_label(viewing) or 0.0, EVENING)
    return profile


def test_the_mix_weights_are_domain_values_and_not_renormalized() -> None:
    full = candidate(1, collaborative=1.0, content=1.0, graph=1.0)
    assert mix_score(full, 1.0) == pytest.approx(1.0)
    assert mix_score(full, None) == pytest.approx(0.90)
    no_graph = candidate(2, collaborative=1.0, content=1.0)
    assert mix_score(no_graph, 1.0) == pytest.approx(0.70)
    assert mix_score(candidate(3, collaborative=0.5, content=0.4, graph=0.2), 0.3) == (
        pytest.approx(0.35 * 0.5 + 0.25 * 0.4 + 0.30 * 0.2 + 0.10 * 0.3)
    )
    assert mix_score(candidate(4), None) == 0.0


def test_cold_start_uses_popularity_and_context_only() -> None:
    only_personal = candidate(1, collaborative=1.0, content=1.0, graph=1.0)
    assert cold_start_score(only_personal, None) == 0.0
    assert cold_start_score(candidate(2, popularity=0.5), 1.0) == pytest.approx(0.3 + 0.4)


def test_source_scores_outside_zero_to_one_are_refused() -> None:
    with pytest.raises(ValueError, match="graph score"):
        candidate(1, graph=1.5)
    with pytest.raises(ValueError, match="content score"):
        candidate(1, content=float("nan"))


def test_each_score_is_boosted_by_the_adapter(monkeypatch: pytest.MonkeyPatch) -> None:
    # Off by default (the population layer does better alone); the boost still works when set.
    monkeypatch.setattr(ranking, "ADAPTER_BOOST", 0.3)
    rng = np.random.default_rng(3)
    vectors = [random_unit(rng) for _ in range(5)]
    profile = profile_with_history(*vectors[:2])
    adapter = UserLoRAAdapter(
        dim=DIM,
        a_user=rng.standard_normal((8, DIM)) / np.sqrt(8),
        b_user=0.2 * rng.standard_normal((DIM, 8)),
    )
    pool = [candidate(i, v, content=0.2 * (i + 1)) for i, v in enumerate(vectors)]
    context = build_context(at=EVENING)

    answer = recommend(pool, context=context, profile=profile, adapter=adapter)

    by_id = {r.canonical_id: r.score for r in answer}
    assert len(by_id) == 5
    for i, vector in enumerate(vectors):
        boost = 1 + 0.3 * adapter.score(vector, profile.preference)
        assert by_id[cid(i)] == pytest.approx(0.25 * 0.2 * (i + 1) * boost, rel=1e-5)
    assert any(adapter.score(v, profile.preference) != 0 for v in vectors)


def test_mmr_skips_a_near_duplicate_when_a_different_good_title_exists() -> None:
    a = basis(0)
    a_twin = unit(basis(0) + 0.01 * basis(1))
    b = basis(2)
    assert mmr([1.0, 0.99, 0.8], np.stack([a, a_twin, b]), 2) == [0, 2]
    # Without diversity the twin would have been second.
    assert mmr([1.0, 0.99, 0.8], np.stack([a, a_twin, b]), 2, lam=1.0) == [0, 1]


def test_recommend_diversifies_the_top_two() -> None:
    a = basis(0)
    a_twin = unit(basis(0) + 0.01 * basis(1))
    b = basis(2)
    pool = [
        candidate(1, a, content=1.0, collaborative=1.0),
        candidate(2, a_twin, content=0.99, collaborative=1.0),
        candidate(3, b, content=0.8, collaborative=0.9),
    ]
    profile = profile_with_history(basis(3))

    answer = recommend(pool, context=build_context(at=EVENING), profile=profile)

    assert [r.canonical_id for r in answer] == [cid(1), cid(3), cid(2)]
    # The twin is still offered, last: scores are the mix, not the MMR gain.
    assert answer[2].score > answer[1].score


def test_watchlist_and_finished_titles_and_repeats_are_left_out() -> None:
    pool = [candidate(n, content=0.1 * n) for n in range(1, 8)] + [candidate(7, content=0.0)]
    answer = recommend(
        pool,
        context=build_context(at=EVENING),
        profile=profile_with_history(basis(0)),
        watchlist={cid(7), cid(99)},
        finished=[cid(6), cid(2)],
    )
    assert [r.canonical_id for r in answer] == [cid(5), cid(4), cid(3), cid(1)]


def test_at_most_twenty_results() -> None:
    rng = np.random.default_rng(4)
    pool = [candidate(n, random_unit(rng), content=float(rng.random())) for n in range(60)]
    context = build_context(at=EVENING)
    assert len(recommend(pool, context=context)) == 20
    assert len(recommend(pool, context=context, limit=5)) == 5
    with pytest.raises(ValueError, match="1-20"):
        recommend(pool, context=context, limit=21)


def test_the_answer_does_not_depend_on_the_order_of_candidates() -> None:
    rng = np.random.default_rng(8)
    pool = [
        candidate(n, random_unit(rng), content=round(float(rng.random()), 1), graph=0.5)
        for n in range(30)
    ]
    context = build_context(at=EVENING, device_type="tv")
    profile = profile_with_history(random_unit(rng))
    first = recommend(pool, context=context, profile=profile)
    shuffled = pool[:]
    random.Random(2).shuffle(shuffled)
    assert recommend(shuffled, context=context, profile=profile) == first


def test_cold_start_ranks_by_popularity_and_context_with_its_reasons() -> None:
    context = build_context(at=EVENING, device_type="tv", mood="scared", region="us")
    pool = [
        # Loved by collaborative filtering, but that means nothing without history.
        Candidate(cid(1), "Personal", collaborative=1.0, content=1.0, genres=("drama",)),
        Candidate(cid(2), "Popular", popularity=0.9, genres=("drama",), runtime_minutes=20),
        Candidate(cid(3), "Scary", popularity=0.6, genres=("horror",), runtime_minutes=95),
    ]
    answer = recommend(pool, context=context)

    assert [r.title for r in answer] == ["Scary", "Popular", "Personal"]
    scary, popular, personal = answer
    assert scary.score == pytest.approx(0.6 * 0.6 + 0.4 * 1.0)
    assert scary.reasons == [
        "popular in your region",
        "matches mood: scared",
        "a good length for your TV",
    ]
    assert popular.reasons == ["popular in your region"]
    assert personal.reasons == [FALLBACK_REASON]


def test_personal_reasons_name_the_sources_that_picked_the_title() -> None:
    evening_habit = profile_with_history(basis(0), basis(1))  # both watched at 20:00 on a TV
    context = build_context(at=EVENING, device_type="tv", mood="happy")
    pool = [
        Candidate(
            cid(1),
            "Comedy",
            vector=basis(5),
            genres=("comedy",),
            runtime_minutes=95,
            content=0.9,
            graph=0.6,
            collaborative=0.2,
            because_of="Heat",
            genre="comedy",
        )
    ]
    (pick,) = recommend(pool, context=context, profile=evening_habit)
    # Strongest contribution first: content .25 x .9 = .225 before graph .30 x .6 = .18;
    # collaborative (.2) is too weak to be named. Each names what made its score.
    assert pick.reasons == [
        "because you liked Heat",
        "comedy, a genre you watch",
        "matches mood: happy",
        "a good length for your TV",
        "fits your evening viewing",
    ]
    (listed,) = recommend(
        [replace(pool[0], anchor="watchlist", because_of="Ronin", genre=None)],
        context=context,
        profile=evening_habit,
    )
    assert listed.reasons[:2] == ["more like Ronin, on your watchlist", "in genres you watch"]
    # A title finished but never rated is what the user watched, not what they liked.
    (watched,) = recommend(
        [replace(pool[0], anchor="watched")], context=context, profile=evening_habit
    )
    assert watched.reasons[0] == "because you watched Heat"


def test_candidate_vectors_must_share_the_profile_dimension() -> None:
    profile = profile_with_history(basis(0))
    pool = [candidate(1, np.ones(512, dtype=np.float32), content=0.5)]
    with pytest.raises(DimensionMismatch, match=r"dimension 512.*384"):
        recommend(pool, context=build_context(at=EVENING), profile=profile)


def test_no_candidates_no_recommendations() -> None:
    assert recommend([], context=build_context(at=EVENING)) == []
    only_seen = [candidate(1, content=1.0)]
    assert recommend(only_seen, context=build_context(at=EVENING), finished={cid(1)}) == []


def test_the_population_layer_reranks_by_its_standardized_score_and_says_so() -> None:
    rng = np.random.default_rng(5)
    vectors = [random_unit(rng) for _ in range(6)]
    profile = profile_with_history(*vectors[:2])
    # A layer whose score is the item term alone: the first basis direction.
    layer = PopulationLayer(
        a=np.zeros((2, DIM), dtype=np.float32),
        b=np.zeros((2, DIM), dtype=np.float32),
        bias=basis(0).astype(np.float32),
    )
    pool = [candidate(i, v, content=0.5) for i, v in enumerate(vectors)]
    context = build_context(at=EVENING)

    plain = recommend(pool, context=context, profile=profile)
    answer = recommend(pool, context=context, profile=profile, population=layer)

    raw = np.array([v[0] for v in vectors], dtype=np.float64)
    z = (raw - raw.mean()) / raw.std()
    by_id = {r.canonical_id: r for r in answer}
    base = {r.canonical_id: r.score for r in plain}
    for i in range(6):
        expected = base[cid(i)] * (1 + ranking.POPULATION_WEIGHT * np.tanh(z[i]))
        assert by_id[cid(i)].score == pytest.approx(expected, rel=1e-5)
        said = ranking.POPULATION_REASON in by_id[cid(i)].reasons
        assert said == (z[i] >= ranking.POPULATION_REASON_MIN_Z)
    # Equal mixes: the layer alone decides the order.
    assert answer[0].canonical_id == cid(int(np.argmax(raw)))


def test_the_population_layer_leaves_a_user_without_taste_alone() -> None:
    layer = PopulationLayer(
        a=np.zeros((2, DIM), dtype=np.float32),
        b=np.zeros((2, DIM), dtype=np.float32),
        bias=basis(0).astype(np.float32),
    )
    pool = [candidate(i, basis(i), popularity=0.1 * (i + 1)) for i in range(3)]
    context = build_context(at=EVENING)
    cold = recommend(pool, context=context, profile=UserProfile.empty(DIM), population=layer)
    assert cold == recommend(pool, context=context, profile=UserProfile.empty(DIM))
