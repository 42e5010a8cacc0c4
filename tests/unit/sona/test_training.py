"""docs/RULES.md's engagement labels, the skipped short views, and when to (re)train."""

from __future__ import annotations

import numpy as np
import pytest

from agents.sona.lora import UserLoRAAdapter
from agents.sona.training import (
    MIN_TRAINING_EVENTS,
    NotEnoughEvents,
    Viewing,
    completion_term,
    engagement_label,
    should_retrain,
    train_on_viewings,
    training_examples,
)
from tests.unit.sona.factories import DIM, basis, random_unit


@pytest.mark.parametrize(
    ("viewing", "expected"),
    [
        # c = 1.0: 0.4 x 1.0 + 0.3 x 4/4 + 0.2
        (Viewing(completion=1.0, rating=5, rewatch=True), 0.9),
        # c = 0.5 at the threshold; rating 1 adds nothing
        (Viewing(completion=0.3, rating=1), 0.2),
        # c = 0.5 + 0.35/1.4 = 0.75 -> 0.3; no rating -> neutral 3 -> 0.3 x 2/4 = 0.15
        (Viewing(completion=0.65), 0.45),
        # c = 0.5 + 0.56/1.4 = 0.9 -> 0.36; rating 4 -> 0.225; rewatch 0.2
        (Viewing(completion=0.86, rating=4, rewatch=True), 0.785),
        # c = 0.5 + 0.7/1.4 = 1.0 -> 0.4; rating 2 -> 0.075
        (Viewing(completion=1.0, rating=2), 0.475),
    ],
)
def test_labels_match_hand_computed_values(viewing: Viewing, expected: float) -> None:
    assert engagement_label(viewing) == pytest.approx(expected, abs=1e-12)


def test_completion_term_runs_from_half_to_one() -> None:
    assert completion_term(0.3) == pytest.approx(0.5)
    assert completion_term(1.0) == pytest.approx(1.0)


@pytest.mark.parametrize("completion", [0.0, 0.1, 0.29, 0.2999])
def test_views_under_thirty_percent_are_skipped(completion: float) -> None:
    assert engagement_label(Viewing(completion=completion, rating=5, rewatch=True)) is None


def test_training_examples_keep_order_and_skip_short_views() -> None:
    viewings = [
        (basis(0), Viewing(completion=1.0, rating=5)),
        (basis(1), Viewing(completion=0.1, rating=5)),
        (basis(2), Viewing(completion=0.3, rating=1)),
    ]
    examples = training_examples(viewings)

    assert [int(np.argmax(e.vector)) for e in examples] == [0, 2]
    assert [e.label for e in examples] == pytest.approx([0.7, 0.2])
    assert examples[0].vector.dtype == np.float32


@pytest.mark.parametrize(
    "bad",
    [
        {"completion": 1.2},
        {"completion": -0.1},
        {"completion": float("nan")},
        {"completion": 0.5, "rating": 0},
        {"completion": 0.5, "rating": 6},
    ],
)
def test_out_of_range_viewings_are_refused(bad: dict) -> None:
    with pytest.raises(ValueError):
        Viewing(**bad)


def test_should_retrain_after_ten_events() -> None:
    assert MIN_TRAINING_EVENTS == 10
    assert not should_retrain(9)
    assert should_retrain(10)
    assert should_retrain(25)
    assert not should_retrain(4, min_events=5)
    assert should_retrain(5, min_events=5)


def test_training_needs_ten_usable_events() -> None:
    rng = np.random.default_rng(0)
    adapter = UserLoRAAdapter.fresh(DIM, seed=1)
    preference = random_unit(rng)
    usable = [(random_unit(rng), Viewing(completion=0.9, rating=4)) for _ in range(9)]
    short = [(random_unit(rng), Viewing(completion=0.1)) for _ in range(5)]

    # Fourteen events, but the five abandoned ones teach nothing.
    with pytest.raises(NotEnoughEvents, match="9 usable") as caught:
        train_on_viewings(adapter, usable + short, preference)
    assert caught.value.usable == 9

    enough = [*usable, (random_unit(rng), Viewing(completion=1.0)), *short]
    run = train_on_viewings(adapter, enough, preference)
    assert len(run.losses) == 5
    assert run.adapter.b_user.any()
