"""What a viewing teaches the adapter: docs/RULES.md's engagement label, the training examples, and
when a user has enough new events to retrain.

    c     = 0.5 + (completion - 0.3) / 1.4            (0.5 at 30 %, 1.0 at 100 %)
    label = 0.4 c + 0.3 (rating - 1) / 4 + 0.2 if rewatch

Views under 30 % completion are skipped: an abandoned title says too little either way.
Labels lie in [0.2, 0.9]. The same number is the profile's engagement (profile.py).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from agents.sona.lora import (
    EPOCHS,
    LEARNING_RATE,
    TrainingExample,
    TrainingRun,
    UserLoRAAdapter,
    train,
)

MIN_COMPLETION = 0.3
MIN_TRAINING_EVENTS = 10
# No rating: the middle of the 1-5 scale, so an unrated view neither gains nor loses against
# the rated ones for the rating term (0.3 x 2/4 = 0.15).
NEUTRAL_RATING = 3


class NotEnoughEvents(ValueError):
    def __init__(self, usable: int, needed: int = MIN_TRAINING_EVENTS) -> None:
        super().__init__(f"{usable} usable viewing events; training needs at least {needed}")
        self.usable = usable
        self.needed = needed


@dataclass(frozen=True, slots=True)
class Viewing:
    """How a user engaged with one title: completion 0-1, an optional 1-5 rating, a rewatch."""

    completion: float
    rating: int | None = None
    rewatch: bool = False

    def __post_init__(self) -> None:
        if not (math.isfinite(self.completion) and 0.0 <= self.completion <= 1.0):
            raise ValueError(f"completion must lie in [0, 1], got {self.completion}")
        if self.rating is not None and not 1 <= self.rating <= 5:
            raise ValueError(f"rating must be 1-5, got {self.rating}")


def completion_term(completion: float) -> float:
    """docs/RULES.md's c: 0.5 at the 30 % threshold, rising linearly to 1.0 at a finished title."""
    return 0.5 + (completion - MIN_COMPLETION) / 1.4


def engagement_label(viewing: Viewing) -> float | None:
    """docs/RULES.md's label for one viewing, or None when the view is too short to count."""
    if viewing.completion < MIN_COMPLETION:
        return None
    rating = NEUTRAL_RATING if viewing.rating is None else viewing.rating
    label = 0.4 * completion_term(viewing.completion) + 0.3 * (rating - 1) / 4
    if viewing.rewatch:
        label += 0.2
    return label


def training_examples(
    viewings: Iterable[tuple[npt.ArrayLike, Viewing]],
) -> list[TrainingExample]:
    """(content vector, label) for each viewing that counts, in the order given."""
    examples: list[TrainingExample] = []
    for vector, viewing in viewings:
        label = engagement_label(viewing)
        if label is not None:
            examples.append(TrainingExample(np.asarray(vector, dtype=np.float32), label))
    return examples


def training_steps(viewings: Iterable[Viewing], epochs: int = EPOCHS) -> int:
    """SGD steps of one round: one per usable viewing per epoch (the adapter's iterations)."""
    return epochs * sum(1 for v in viewings if engagement_label(v) is not None)


def should_retrain(events_since_last_training: int, min_events: int = MIN_TRAINING_EVENTS) -> bool:
    return events_since_last_training >= min_events


def train_on_examples(
    adapter: UserLoRAAdapter,
    examples: Sequence[TrainingExample],
    preference: npt.ArrayLike,
    *,
    epochs: int = EPOCHS,
    lr: float = LEARNING_RATE,
) -> TrainingRun:
    """docs/RULES.md's training round: at least 10 usable events, else NotEnoughEvents."""
    if len(examples) < MIN_TRAINING_EVENTS:
        raise NotEnoughEvents(len(examples))
    return train(adapter, examples, preference, epochs=epochs, lr=lr)


def train_on_viewings(
    adapter: UserLoRAAdapter,
    viewings: Sequence[tuple[npt.ArrayLike, Viewing]],
    preference: npt.ArrayLike,
    *,
    epochs: int = EPOCHS,
    lr: float = LEARNING_RATE,
) -> TrainingRun:
    """A training round on viewings alone. Usable means after the < 30 % views are skipped:
    ten abandoned titles teach nothing."""
    return train_on_examples(adapter, training_examples(viewings), preference, epochs=epochs, lr=lr)
