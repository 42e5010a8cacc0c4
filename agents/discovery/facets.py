"""Facet counts of a result set: how many results per genre, platform and decade.

Count over every result that passed the filters, before the page is cut, so the numbers say
what a click on a facet would give. A browse, whose results can be the whole catalog, counts
the same way in SQL (agents/discovery/store.py) and orders its counts here.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping

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


def facets_of_counts(
    genres: Mapping[str, int], platforms: Mapping[str, int], decades: Mapping[str, int]
) -> Facets:
    """Facets counted elsewhere (a browse counts them in PostgreSQL: agents/discovery/store.py),
    in the order facet_counts gives."""
    return Facets(
        genre=_ordered(Counter(genres)),
        platform=_ordered(Counter(platforms)),
        decade=_ordered(Counter(decades)),
    )
