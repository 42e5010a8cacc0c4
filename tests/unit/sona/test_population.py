"""The population layer (agents/sona/population.py): its triples leave the positive out of the
preference, and BPR training learns a planted preference that plain cosine misses."""

from __future__ import annotations

import uuid

import numpy as np
import pytest

from agents.sona import population

DIM = 32


def _catalog(n: int, seed: int) -> dict[uuid.UUID, np.ndarray]:
    rng = np.random.default_rng(seed)
    v = rng.standard_normal((n, DIM))
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    return {uuid.UUID(int=i + 1): v[i].astype(np.float32) for i in range(n)}


def test_the_positive_is_left_out_of_its_preference() -> None:
    vectors = _catalog(3, 0)
    a, b, c = list(vectors)
    data = population.triples({"u": [(a, 1.0), (b, 1.0)]}, vectors, {c: 5}, 1, seed=0)
    assert len(data.positive) == 2
    # The preference beside a's triple is b alone, and the reverse.
    assert np.allclose(data.preference[0], vectors[b], atol=1e-6)
    assert np.allclose(data.preference[1], vectors[a], atol=1e-6)
    assert np.allclose(data.negative, vectors[c])


def test_a_title_the_user_touched_is_never_a_negative() -> None:
    vectors = _catalog(4, 1)
    a, b, c, d = list(vectors)
    history = {"u": [(a, 1.0), (b, 1.0), (c, -0.5)]}
    data = population.triples(history, vectors, {c: 10, d: 10}, 3, seed=0)
    assert len(data.negative) > 0
    assert all(np.allclose(n, vectors[d]) for n in data.negative)


def test_training_learns_what_the_population_likes_beyond_cosine() -> None:
    # Everyone avoids the titles on one side of a shared direction, whatever their own taste:
    # cosine to a taste only partly sees it, the layer's item term learns it.
    vectors = _catalog(600, 2)
    ids = list(vectors)
    matrix = np.stack([vectors[c] for c in ids])
    rng = np.random.default_rng(3)
    histories = {}
    for u in range(150):
        scores = matrix @ rng.standard_normal(DIM)
        scores[matrix[:, 0] < 0.2] = -9.0
        liked = np.argsort(-scores)[:15]
        histories[str(u)] = [(ids[i], 0.8) for i in rng.permutation(liked)]
    data = population.triples(histories, vectors, dict.fromkeys(ids, 1), 4, seed=0)
    layer = population.train(data, rank=8, epochs=20, seed=0)
    cosine = population.pairwise_accuracy(None, data)
    assert population.pairwise_accuracy(layer, data) > cosine + 0.02
    again = population.train(data, rank=8, epochs=20, seed=0)
    assert np.array_equal(layer.a, again.a) and np.array_equal(layer.bias, again.bias)


def test_the_layer_input_is_the_taste_unless_recency_is_on(monkeypatch: pytest.MonkeyPatch) -> None:
    vectors = list(_catalog(4, 4).values())
    taste = vectors[0]
    recent = [vectors[1], vectors[2], vectors[3]]
    monkeypatch.setattr(population, "RECENT_MIX", 0.0)
    assert np.array_equal(population.layer_input(taste, recent), taste)
    monkeypatch.setattr(population, "RECENT_K", 2)
    monkeypatch.setattr(population, "RECENT_MIX", 0.5)
    assert np.array_equal(population.layer_input(taste, []), taste)
    got = population.layer_input(taste, recent)
    # Half the taste, half the mean of the latest two (the third, older, left out); unit length.
    mean = (vectors[1] + vectors[2]) / 2
    want = 0.5 * taste + 0.5 * mean / np.linalg.norm(mean)
    assert np.allclose(got, want / np.linalg.norm(want), atol=1e-6)
    assert abs(float(np.linalg.norm(got)) - 1.0) < 1e-6


def test_a_triple_sees_as_recent_only_the_liked_titles_before_its_positive(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(population, "RECENT_K", 1)
    monkeypatch.setattr(population, "RECENT_MIX", 1.0)
    vectors = _catalog(5, 5)
    a, b, c, d, n = list(vectors)
    # Oldest first: a liked, b disliked, c liked, d liked.
    history = {"u": [(a, 1.0), (b, -0.5), (c, 1.0), (d, 1.0)]}
    data = population.triples(history, vectors, {n: 5}, 1, seed=0)
    assert [population_id(vectors, x) for x in data.positive] == [a, c, d]
    # a has nothing before it: its taste without it; c's recent is a (b is disliked); d's is c.
    rest = sum(w * vectors[t].astype(np.float64) for t, w in history["u"][1:])
    assert np.allclose(data.preference[0], rest / np.linalg.norm(rest), atol=1e-6)
    assert np.allclose(data.preference[1], vectors[a], atol=1e-6)
    assert np.allclose(data.preference[2], vectors[c], atol=1e-6)


def population_id(vectors: dict[uuid.UUID, np.ndarray], x: np.ndarray) -> uuid.UUID:
    return next(c for c, v in vectors.items() if np.allclose(v, x))
