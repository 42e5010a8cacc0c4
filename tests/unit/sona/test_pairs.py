"""The adapter's pairwise training: negatives drawn by likers, pairs in order, and a trained
adapter that ranks a user's kind of title above others."""

from __future__ import annotations

import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from agents.sona.lora import UserLoRAAdapter, train, user_seed
from agents.sona.pairs import pairwise_examples, sample_negatives
from agents.sona.viewings import ViewingState
from tests.unit.sona.factories import DIM, cluster, random_unit, unit

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _row(cid: uuid.UUID, weight: float, minutes: int = 0) -> ViewingState:
    return ViewingState(
        content_id=cid,
        completion=1.0,
        counted=True,
        watched_at=T0 + timedelta(minutes=minutes),
        taste_weight=weight,
    )


def test_negatives_are_drawn_by_likers_never_excluded_and_seeded() -> None:
    heavy, light, none, mine = (uuid.uuid4() for _ in range(4))
    popular = [(heavy, 90), (light, 10), (none, 0), (mine, 500)]
    drawn = sample_negatives(popular, {mine}, 2000, seed=3)
    counts = Counter(drawn)
    assert set(counts) == {heavy, light}
    assert 0.85 < counts[heavy] / 2000 < 0.95
    assert drawn == sample_negatives(popular, {mine}, 2000, seed=3)
    assert drawn != sample_negatives(popular, {mine}, 2000, seed=4)
    assert sample_negatives([(mine, 5)], {mine}, 3, seed=1) == []
    assert sample_negatives(popular, set(), 0, seed=1) == []


def test_pairs_liked_against_drawn_and_disliked_against_the_latest_liked() -> None:
    rng = np.random.default_rng(1)
    liked1, disliked, liked2, neutral, no_vector = (uuid.uuid4() for _ in range(5))
    neg1, neg2 = uuid.uuid4(), uuid.uuid4()
    vectors = {c: random_unit(rng) for c in (liked1, disliked, liked2, neutral, neg1, neg2)}
    rows = [
        _row(disliked, -1.0, 0),  # before any liked title: against the first liked
        _row(liked1, 0.5, 1),
        _row(neutral, 0.0, 2),  # 3 stars: teaches nothing
        _row(liked2, 1.0, 3),
        _row(no_vector, 1.0, 4),
    ]
    examples = pairwise_examples(rows, vectors, [neg1, neg2])
    expected = [
        vectors[liked1] - vectors[disliked],
        vectors[liked1] - vectors[neg1],
        vectors[liked2] - vectors[neg2],
    ]
    assert len(examples) == len(expected)
    for example, vector in zip(examples, expected, strict=True):
        assert example.label == 1.0
        np.testing.assert_allclose(example.vector, vector, atol=1e-6)
    assert pairwise_examples([_row(disliked, -1.0)], vectors, [neg1]) == []


@pytest.mark.parametrize("seed", [5, 6])
def test_pairwise_training_ranks_the_users_kind_of_title_above_what_others_like(
    seed: int,
) -> None:
    rng = np.random.default_rng(seed)
    mine, theirs = random_unit(rng), random_unit(rng)
    liked = cluster(rng, mine, 40)
    # Others like both kinds: drawn negatives are mostly of the other kind, some of the user's.
    others = cluster(rng, theirs, 30) + cluster(rng, mine, 10)
    ids = [uuid.uuid4() for _ in liked]
    other_ids = [uuid.uuid4() for _ in others]
    vectors = dict(zip(ids + other_ids, liked + others, strict=True))
    negatives = sample_negatives([(o, 1) for o in other_ids], set(ids), len(ids), seed)
    examples = pairwise_examples([_row(c, 1.0, i) for i, c in enumerate(ids)], vectors, negatives)
    preference = unit(np.sum(liked, axis=0))
    fresh = UserLoRAAdapter.fresh(DIM, seed=user_seed("u"))
    trained = train(fresh, examples, preference).adapter
    unseen_mine, unseen_theirs = cluster(rng, mine, 20), cluster(rng, theirs, 20)

    def margin(adapter: UserLoRAAdapter) -> float:
        return float(
            adapter.score_many(np.stack(unseen_mine), preference).mean()
            - adapter.score_many(np.stack(unseen_theirs), preference).mean()
        )

    assert abs(margin(fresh)) < 0.05
    assert margin(trained) > 0.3
