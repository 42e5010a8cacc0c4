"""Facet counts of a result set: how many results per genre, platform and decade.

Count over every result that passed the filters, before the page is cut, so the numbers say
what a click on a facet would give.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from schemas.discovery import Facets, SearchResult


def decade_of(year: int) -> str:
    """1994 -> '1990s'."""
    return f"{year - year % 10}s"


def _ordered(counts: Counter[str]) -> dict[str, int]:
    # Most frequent first, then by name: a stable order for clients and for cached JSON.
    return dict(sorted(counts.items(), key=lambda item: (-item[1], item[0])))


def facet_counts(results: Iterable[SearchResult]) -> Facets:
    """Each result counts once per genre and platform it has; results without a year have
    no decade."""
    genres: Counter[str] = Counter()
    platforms: Counter[str] = Counter()
    decades: Counter[str] = Counter()
    for result in results:
        genres.update(set(result.genres))
        platforms.update(set(result.platforms))
        if result.release_year is not None:
            decades[decade_of(result.release_year)] += 1
    return Facets(genre=_ordered(genres), platform=_ordered(platforms), decade=_ordered(decades))
