"""Data quality score with docs/RULES.md's weights."""

from __future__ import annotations

from typing import Any

import pytest

from agents.enrichment.quality import WEIGHTS, quality_parts, quality_score
from tests.unit.ingestion_factories import content

FULL: dict[str, Any] = {
    "description": "A hacker learns the truth.",
    "release_year": 1999,
    "runtime_minutes": 136,
    "average_rating": 8.7,
    "rating_count": 1000,
}


def test_weights_sum_to_one() -> None:
    assert sum(WEIGHTS.values()) == pytest.approx(1.0)
    assert WEIGHTS == {
        "title": 0.1,
        "overview": 0.2,
        "year": 0.1,
        "runtime": 0.1,
        "genres": 0.2,
        "rating": 0.1,
        "user_rating": 0.1,
        "embedding": 0.1,
    }


def test_complete_record_with_embedding_scores_one() -> None:
    assert quality_score(content(**FULL), has_embedding=True) == 1.0
    assert quality_score(content(**FULL), has_embedding=False) == 0.9


def test_bare_record_scores_title_and_genres_only() -> None:
    # Title and >= 1 genre are required by CanonicalContent.
    assert quality_score(content(), has_embedding=False) == 0.3


@pytest.mark.parametrize(
    ("field", "value", "gain"),
    [
        ("description", "Text", 0.2),
        ("release_year", 1999, 0.1),
        ("runtime_minutes", 136, 0.1),
        ("average_rating", 0.0, 0.1),
        ("rating_count", 3, 0.1),
    ],
)
def test_each_fact_adds_its_weight(field: str, value: Any, gain: float) -> None:
    base = quality_score(content(), has_embedding=False)
    assert quality_score(content(**{field: value}), has_embedding=False) == round(base + gain, 3)


@pytest.mark.parametrize(
    ("field", "value"),
    [("description", "   "), ("runtime_minutes", 0), ("rating_count", 0), ("average_rating", None)],
)
def test_empty_values_do_not_count(field: str, value: Any) -> None:
    assert quality_score(content(**{field: value}), has_embedding=False) == 0.3


def test_score_is_rounded_to_three_decimals() -> None:
    score = quality_score(content(description="x", rating_count=1), has_embedding=False)
    assert score == 0.6 and str(score) == "0.6"


def test_parts_say_what_is_missing() -> None:
    parts = quality_parts(content(release_year=2000), has_embedding=False)
    assert [k for k, present in parts.items() if not present] == [
        "overview",
        "runtime",
        "rating",
        "user_rating",
        "embedding",
    ]
