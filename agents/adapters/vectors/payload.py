"""The payload stored next to a title's vector: what search filters on and shows."""

from __future__ import annotations

from typing import Any

from agents.adapters.vectors.store import CONTENT_TYPE, GENRES, PLATFORMS, REGIONS, RELEASE_YEAR
from schemas.content import CanonicalContent


def content_payload(content: CanonicalContent) -> dict[str, Any]:
    """Filter fields plus the title. Platforms and regions count only offers that still
    list a region (an empty region list means the title left that platform)."""
    offers = [offer for offer in content.availability if offer.regions]
    return {
        "title": content.title,
        CONTENT_TYPE: content.content_type.value,
        GENRES: sorted(set(content.genres)),
        RELEASE_YEAR: content.release_year,
        PLATFORMS: sorted({offer.platform for offer in offers}),
        REGIONS: sorted({region for offer in offers for region in offer.regions}),
    }
