"""Which titles a search may return: the filter test, the merge of request and intent
filters, and where the vector search applies them.

A candidate is the payload of a title as a mapping: the read model's document (a
CanonicalContent as JSON, with `availability` offers) or the vector store's flat payload
(`platforms` and `regions` lists). Every condition set must hold; list conditions match when
the title has at least one of the values, as the vector store's own filter does, so a search
returns the same titles whether the store filtered or this module did.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from agents.discovery.intent_rules import canonical_genres

# The scale lives with the parental-control rules every path shares; re-exported here.
from agreements.parental_controls import MATURITY_LEVEL as MATURITY_LEVEL
from agreements.parental_controls import maturity_allowed
from schemas.discovery import ParsedIntent, SearchFilters

# docs/RULES.md: filter inside the vector store when fewer than 10% of titles pass, else fetch
# 3 x top_k nearest without a filter and filter those (HNSW walks slow down under a filter,
# and a loose filter leaves enough of the over-fetch).
SELECTIVITY_THRESHOLD = 0.1
OVERFETCH_FACTOR = 3
VECTOR_TOP_K = 50


def _strings(value: object) -> set[str]:
    if isinstance(value, str):
        return {value}
    if isinstance(value, list | tuple | set | frozenset):
        return {v for v in value if isinstance(v, str)}
    return set()


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def _offers(payload: Mapping[str, Any]) -> list[tuple[str, set[str]]] | None:
    """(platform, regions) of each offer still listed somewhere; None for a flat payload."""
    availability = payload.get("availability")
    if not isinstance(availability, list):
        return None
    offers = []
    for offer in availability:
        if isinstance(offer, Mapping) and isinstance(offer.get("platform"), str):
            regions = {r.upper() for r in _strings(offer.get("regions"))}
            # An offer without regions means the title left that platform.
            if regions:
                offers.append((offer["platform"], regions))
    return offers


def payload_platforms(payload: Mapping[str, Any], region: str | None = None) -> list[str]:
    """Platforms offering the title (in `region` when given), sorted.

    A flat payload only says which platforms and which regions, not which pairs; there a
    region counts when the title is offered in it on any platform.
    """
    offers = _offers(payload)
    if offers is not None:
        wanted = region.upper() if region else None
        return sorted({p for p, regions in offers if wanted is None or wanted in regions})
    platforms = _strings(payload.get("platforms"))
    if region and region.upper() not in {r.upper() for r in _strings(payload.get("regions"))}:
        return []
    return sorted(platforms)


def payload_genres(payload: Mapping[str, Any]) -> list[str]:
    return sorted(_strings(payload.get("genres")))


def _within(value: float | None, bounds: tuple[float, float] | None) -> bool:
    if bounds is None:
        return True
    # Unknown values fail a bound: nothing shows the title is inside it.
    return value is not None and bounds[0] <= value <= bounds[1]


def matches(candidate: Mapping[str, Any], filters: SearchFilters) -> bool:
    """Whether the title passes every filter set; blocked genres always block."""
    if filters.content_types and candidate.get("content_type") not in filters.content_types:
        return False
    genres = set(payload_genres(candidate))
    if filters.blocked_genres and genres & set(filters.blocked_genres):
        return False
    if filters.genres and not genres & set(filters.genres):
        return False
    if filters.platforms or filters.region:
        platforms = set(payload_platforms(candidate, filters.region))
        if not platforms:
            return False
        if filters.platforms and not platforms & set(filters.platforms):
            return False
    if not _within(_number(candidate.get("release_year")), filters.year_range):
        return False
    if not _within(_number(candidate.get("average_rating")), filters.rating_range):
        return False
    return maturity_allowed(candidate.get("maturity_rating"), filters.content_rating_limit)


def merge_filters(request: SearchFilters, intent: ParsedIntent) -> SearchFilters:
    """The filters a search applies: the request's where it set them (the user chose them
    explicitly), the query's where it did not, the request's blocked genres always.

    Genre names are mapped onto canonical genres ("sci-fi" -> science_fiction) on the way.
    """
    wanted = intent.filters
    return SearchFilters(
        genres=canonical_genres(request.genres or wanted.genres),
        platforms=request.platforms or wanted.platforms,
        region=request.region,
        year_range=request.year_range or wanted.year_range,
        rating_range=request.rating_range,
        content_rating_limit=request.content_rating_limit,
        blocked_genres=canonical_genres(request.blocked_genres),
        content_types=request.content_types or wanted.content_types,
    )


def is_empty(filters: SearchFilters) -> bool:
    return filters == SearchFilters()


@dataclass(frozen=True, slots=True)
class VectorFetchPlan:
    filter_in_store: bool  # pass the filter to the vector store
    fetch_k: int  # how many nearest titles to ask for


def plan_vector_fetch(selectivity: float, top_k: int = VECTOR_TOP_K) -> VectorFetchPlan:
    """Where to filter, from the estimated share (0-1) of the catalog that passes."""
    if not 0.0 <= selectivity <= 1.0:  # also rejects NaN
        raise ValueError(f"selectivity {selectivity} is not a share between 0 and 1")
    if top_k < 1:
        raise ValueError(f"top_k {top_k} must be at least 1")
    if selectivity < SELECTIVITY_THRESHOLD:
        return VectorFetchPlan(filter_in_store=True, fetch_k=top_k)
    return VectorFetchPlan(filter_in_store=False, fetch_k=OVERFETCH_FACTOR * top_k)
