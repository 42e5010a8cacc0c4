"""Small builders shared by the ingestion unit tests (no services)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from agents.ingestion.normalize import NormalizedItem, normalize_item
from schemas.content import CanonicalContent
from schemas.ingestion import RawCatalogItem

T0 = datetime(2025, 1, 1, tzinfo=UTC)


def raw_dict(**overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "platform": "netflix",
        "platform_item_id": "80000001",
        "title": "The Matrix",
        "content_type": "movie",
        "year": 1999,
        "source_updated_at": T0.isoformat(),
    }
    data.update(overrides)
    return data


def raw(**overrides: Any) -> RawCatalogItem:
    return RawCatalogItem.model_validate(raw_dict(**overrides))


def item(**overrides: Any) -> NormalizedItem:
    return normalize_item(raw(**overrides))


def at(hours: float) -> str:
    return (T0 + timedelta(hours=hours)).isoformat()


def content(**overrides: Any) -> CanonicalContent:
    data: dict[str, Any] = {
        "canonical_id": uuid.UUID(int=1),
        "content_type": "movie",
        "title": "The Matrix",
        "genres": ["action"],
        "updated_at": T0,
    }
    data.update(overrides)
    return CanonicalContent.model_validate(data)
