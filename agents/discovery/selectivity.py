"""How much of the catalog a search's filters let through, estimated from catalog counts.

docs/RULES.md: filter inside the vector store when fewer than 10% of titles pass, else over-fetch
and filter after (agents.discovery.filters.plan_vector_fetch). The store cannot count under a filter
cheaply, so the discovery agent keeps a periodic snapshot of the catalog's counts per
genre, platform, region and release year (CatalogStats) and multiplies the shares of the
conditions set, as if they were independent. Only the conditions the vector store itself
applies are counted: rating and maturity are checked after the fetch either way.

Within one list condition the shares are summed (a title with two of the wanted genres is
counted twice), which over-estimates: the error leans to over-fetching, which only costs time,
never to filtering in the store with too few titles left.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from schemas.discovery import SearchFilters


@dataclass(frozen=True)
class CatalogStats:
    """Titles in the catalog, and how many carry each genre, platform, region and year."""

    total: int = 0
    genres: Mapping[str, int] = field(default_factory=dict)
    platforms: Mapping[str, int] = field(default_factory=dict)
    regions: Mapping[str, int] = field(default_factory=dict)
    years: Mapping[int, int] = field(default_factory=dict)


def _share(counts: Mapping[str, int], wanted: Iterable[str], total: int) -> float:
    return min(1.0, sum(counts.get(value, 0) for value in wanted) / total)


def estimate_selectivity(stats: CatalogStats, filters: SearchFilters) -> float:
    """The estimated share (0-1) of the catalog passing the store-side filters; 1.0 when the
    catalog is not counted yet (then the search over-fetches, which is always correct)."""
    if stats.total <= 0:
        return 1.0
    total = stats.total
    share = 1.0
    if filters.genres:
        share *= _share(stats.genres, filters.genres, total)
    if filters.blocked_genres:
        share *= 1.0 - _share(stats.genres, filters.blocked_genres, total)
    if filters.platforms:
        share *= _share(stats.platforms, filters.platforms, total)
    if filters.region:
        share *= _share(stats.regions, [filters.region], total)
    if filters.year_range is not None:
        low, high = filters.year_range
        in_range = sum(n for year, n in stats.years.items() if low <= year <= high)
        share *= min(1.0, in_range / total)
    return max(0.0, min(1.0, share))
