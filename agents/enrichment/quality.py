"""Data quality score of a canonical record, 0-1, with docs/RULES.md's weights."""

from __future__ import annotations

from schemas.content import CanonicalContent

WEIGHTS: dict[str, float] = {
    "title": 0.1,
    "overview": 0.2,
    "year": 0.1,
    "runtime": 0.1,
    "genres": 0.2,
    "rating": 0.1,
    "user_rating": 0.1,
    "embedding": 0.1,
}


def quality_parts(content: CanonicalContent, has_embedding: bool) -> dict[str, bool]:
    """Which of the weighted facts the record has (for logs: what would raise its score)."""
    return {
        "title": bool(content.title.strip()),
        "overview": bool(content.description and content.description.strip()),
        "year": content.release_year is not None,
        "runtime": bool(content.runtime_minutes),
        "genres": bool(content.genres),
        "rating": content.average_rating is not None,
        "user_rating": content.rating_count > 0,
        "embedding": has_embedding,
    }


def quality_score(content: CanonicalContent, has_embedding: bool) -> float:
    parts = quality_parts(content, has_embedding)
    return round(sum(WEIGHTS[name] for name, present in parts.items() if present), 3)
