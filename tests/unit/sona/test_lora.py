"""The two-tier LoRA adapter: dimensions, scoring, and training of the user layer only."""

from __future__ import annotations

import time

import numpy as np
import pytest

from agents.sona.lora import (
    ALPHA,
    RANK,
    DimensionMismatch,
    TrainingExample,
    UserLoRAAdapter,
    base_layer,
    train,
    user_seed,
)
from tests.unit.sona.factories import DIM, cluster, random_unit, unit


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(7)


@pytest.fixture
def adapter() -> UserLoRAAdapter:
    return UserLoRAAdapter.fresh(DIM, seed=user_seed("user-1"))


def test_rank_alpha_and_scaling_are_domain_values(adapter: UserLoRAAdapter) -> None:
    assert (adapter.rank, adapter.alpha, adapter.scaling) == (RANK, ALPHA, 2.0) == (8, 16.0, 2.0)
    assert adapter.a_user.shape == (8, DIM)
    assert adapter.b_user.shape == (DIM, 8)
    assert adapter.a_user.dtype == adapter.b_user.dtype == np.float32


def test_candidate_vectors_of_another_dimension_raise(
    adapter: UserLoRAAdapter, rng: np.random.Generator
) -> None:
    preference = random_unit(rng)
    with pytest.raises(DimensionMismatch, match=r"dimension 512.*dimension is 384") as caught:
        adapter.score_many(rng.standard_normal((10, 512)), preference)
    assert (caught.value.expected, caught.value.got) == (384, 512)
    with pytest.raises(DimensionMismatch, match="768"):
        adapter.score(random_unit(rng, 768), preference)


def test_a_preference_vector_of_another_dimension_raises(
    adapter: UserLoRAAdapter, rng: np.random.Generator
) -> None:
    with pytest.raises(DimensionMismatch, match=r"preference vector has dimension 768.*384"):
        adapter.score_many(rng.standard_normal((3, DIM)), random_unit(rng, 768))


def test_weights_of_another_dimension_raise(rng: np.random.Generator) -> None:
    a = rng.standard_normal((8, 512)).astype(np.float32)
    b = np.zeros((512, 8), dtype=np.float32)
    with pytest.raises(DimensionMismatch, match=r"A_user.*512.*384"):
        UserLoRAAdapter(dim=DIM, a_user=a, b_user=b)
    with pytest.raises(DimensionMismatch, match=r"B_user.*512.*384"):
        UserLoRAAdapter(dim=DIM, a_user=rng.standard_normal((8, DIM)), b_user=b)


def test_a_flat_candidate_list_is_refused_rather_than_reshaped(
    adapter: UserLoRAAdapter, rng: np.random.Generator
) -> None:
    with pytest.raises(ValueError, match="N x dim"):
        adapter.score_many(rng.standard_normal(DIM * 2), random_unit(rng))


def test_a_fresh_adapter_scores_zero_from_its_user_layer(
    adapter: UserLoRAAdapter, rng: np.random.Generator
) -> None:
    preference = random_unit(rng)
    candidates = np.stack([random_unit(rng) for _ in range(50)])

    assert not adapter.b_user.any()
    assert not adapter.user_direction(preference).any()
    # The whole score is the base layer's: scaling x dot(B_base A_base x, p).
    a_base, b_base = base_layer(DIM)
    expected = 2.0 * (candidates @ a_base.T @ b_base.T) @ preference
    np.testing.assert_allclose(adapter.score_many(candidates, preference), expected, atol=1e-6)
    # ... which for unit vectors stays a few hundredths: a new user is barely reranked.
    assert np.abs(expected).max() < 0.1


def test_the_base_layer_is_the_same_for_every_user_and_the_user_layer_is_not() -> None:
    one = UserLoRAAdapter.fresh(DIM, seed=user_seed("alice"))
    other = UserLoRAAdapter.fresh(DIM, seed=user_seed("bob"))
    again = UserLoRAAdapter.fresh(DIM, seed=user_seed("alice"))

    for mine, theirs in zip(one.base, other.base, strict=True):
        np.testing.assert_array_equal(mine, theirs)
    assert not np.array_equal(one.a_user, other.a_user)
    np.testing.assert_array_equal(one.a_user, again.a_user)


def test_output_is_scaling_times_both_layers(rng: np.random.Generator) -> None:
    a_user = rng.standard_normal((8, DIM)).astype(np.float32)
    b_user = (0.1 * rng.standard_normal((DIM, 8))).astype(np.float32)
    adapter = UserLoRAAdapter(dim=DIM, a_user=a_user, b_user=b_user)
    x = random_unit(rng)
    a_base, b_base = base_layer(DIM)

    expected = 2.0 * (b_base @ (a_base @ x) + b_user @ (a_user @ x))
    np.testing.assert_allclose(adapter.output(x), expected, rtol=1e-5, atol=1e-6)


def test_scores_are_clamped_to_plus_minus_one(rng: np.random.Generator) -> None:
    preference = random_unit(rng)
    a_user = rng.standard_normal((8, DIM)).astype(np.float32)
    # B_user = p (A x)^T x 10 makes dot(output(x), p) far above 1 for x and far below for -x.
    x = random_unit(rng)
    b_user = (10 * np.outer(preference, a_user @ x)).astype(np.float32)
    adapter = UserLoRAAdapter(dim=DIM, a_user=a_user, b_user=b_user)

    assert adapter.logits(np.stack([x]), preference)[0] > 1.0
    assert adapter.score(x, preference) == 1.0
    assert adapter.score(-x, preference) == -1.0


def test_vectorized_scores_equal_one_at_a_time(rng: np.random.Generator) -> None:
    adapter = UserLoRAAdapter(
        dim=DIM,
        a_user=rng.standard_normal((8, DIM)) / np.sqrt(8),
        b_user=0.05 * rng.standard_normal((DIM, 8)),
    )
    preference = random_unit(rng)
    candidates = np.stack([random_unit(rng) for _ in range(40)])

    one_by_one = [float(np.clip(adapter.output(x) @ preference, -1, 1)) for x in candidates]
    np.testing.assert_allclose(adapter.score_many(candidates, preference), one_by_one, atol=1e-5)


def test_a_thousand_candidates_score_well_under_a_millisecond(
    adapter: UserLoRAAdapter, rng: np.random.Generator
) -> None:
    candidates = rng.standard_normal((1000, DIM)).astype(np.float32)
    preference = random_unit(rng)
    timings = []
    for _ in range(30):
        start = time.perf_counter()
        scores = adapter.score_many(candidates, preference)
        timings.append(time.perf_counter() - start)
    assert scores.shape == (1000,)
    assert min(timings) < 0.0005


def test_the_adapter_cannot_be_changed_in_place(adapter: UserLoRAAdapter) -> None:
    with pytest.raises(ValueError, match="read-only"):
        adapter.b_user[0, 0] = 1.0
    a_base, _ = adapter.base
    with pytest.raises(ValueError, match="read-only"):
        a_base[0, 0] = 1.0


# --- training ----------------------------------------------------------------------------------


def genre_examples(rng: np.random.Generator) -> tuple[list, list, np.ndarray]:
    """Comedy titles labelled 1, horror titles labelled 0, and a preference between them."""
    comedy_centre, horror_centre = random_unit(rng), random_unit(rng)
    comedy = cluster(rng, comedy_centre, 12)
    horror = cluster(rng, horror_centre, 12)
    preference = unit(np.mean(comedy[:6] + horror[:6], axis=0))
    return comedy, horror, preference


def test_training_raises_comedy_scores_relative_to_horror(
    adapter: UserLoRAAdapter, rng: np.random.Generator
) -> None:
    comedy, horror, preference = genre_examples(rng)
    examples = [TrainingExample(v, 1.0) for v in comedy[:6]] + [
        TrainingExample(v, 0.0) for v in horror[:6]
    ]
    # Held-out titles of each genre: the adapter must generalize, not memorize.
    held_comedy, held_horror = np.stack(comedy[6:]), np.stack(horror[6:])

    def gap(a: UserLoRAAdapter) -> float:
        return float(
            a.score_many(held_comedy, preference).mean()
            - a.score_many(held_horror, preference).mean()
        )

    before = gap(adapter)
    run = train(adapter, examples, preference)  # docs/RULES.md's defaults: 5 epochs, lr 0.001
    after = gap(run.adapter)

    assert len(run.losses) == 5
    assert list(run.losses) == sorted(run.losses, reverse=True)
    assert run.losses[-1] < run.losses[0]
    assert after - before > 0.05, (before, after)
    assert (
        run.adapter.score_many(held_comedy, preference).min()
        > run.adapter.score_many(held_horror, preference).max()
    )


def test_training_never_changes_the_base_layer_or_the_input_adapter(
    adapter: UserLoRAAdapter, rng: np.random.Generator
) -> None:
    comedy, horror, preference = genre_examples(rng)
    examples = [TrainingExample(v, 1.0) for v in comedy] + [TrainingExample(v, 0.0) for v in horror]
    base_before = [array.copy() for array in base_layer(DIM)]
    a_before, b_before = adapter.a_user.copy(), adapter.b_user.copy()

    trained = train(adapter, examples, preference, epochs=20, lr=0.01).adapter

    for before, now, theirs in zip(base_before, base_layer(DIM), trained.base, strict=True):
        np.testing.assert_array_equal(before, now)
        np.testing.assert_array_equal(before, theirs)
    np.testing.assert_array_equal(adapter.a_user, a_before)
    np.testing.assert_array_equal(adapter.b_user, b_before)
    assert trained.b_user.any()
    assert not np.array_equal(trained.a_user, a_before)


def test_training_is_deterministic(adapter: UserLoRAAdapter, rng: np.random.Generator) -> None:
    comedy, horror, preference = genre_examples(rng)
    examples = [TrainingExample(v, 0.9) for v in comedy] + [TrainingExample(v, 0.2) for v in horror]

    first = train(adapter, examples, preference)
    second = train(adapter, examples, preference)

    assert first.losses == second.losses
    np.testing.assert_array_equal(first.adapter.a_user, second.adapter.a_user)
    np.testing.assert_array_equal(first.adapter.b_user, second.adapter.b_user)


def test_training_checks_dimensions_and_labels(
    adapter: UserLoRAAdapter, rng: np.random.Generator
) -> None:
    preference = random_unit(rng)
    with pytest.raises(DimensionMismatch, match="training vector has dimension 768"):
        train(adapter, [TrainingExample(random_unit(rng, 768), 1.0)], preference)
    with pytest.raises(DimensionMismatch, match="preference vector has dimension 512"):
        train(adapter, [TrainingExample(random_unit(rng), 1.0)], random_unit(rng, 512))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        train(adapter, [TrainingExample(random_unit(rng), 1.5)], preference)
