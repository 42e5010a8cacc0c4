"""Parental controls: whether a title may be shown under a profile's limits, and why not.

Pure rules shared by the agents (search filters, recommendations) and the gateway (a title
read directly, suggestions), so every path refuses the same titles for the same reason.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from schemas.accounts import ProfileLimits
from schemas.content import MaturityRating
from schemas.discovery import SearchFilters

# One scale across the film and TV systems, by the youngest audience each admits.
MATURITY_LEVEL: dict[MaturityRating, int] = {
    MaturityRating.G: 0,
    MaturityRating.TV_Y: 0,
    MaturityRating.TV_G: 0,
    MaturityRating.TV_Y7: 1,
    MaturityRating.PG: 2,
    MaturityRating.TV_PG: 2,
    MaturityRating.PG_13: 3,
    MaturityRating.TV_14: 3,
    MaturityRating.R: 4,
    MaturityRating.TV_MA: 4,
    MaturityRating.NC_17: 5,
}


def maturity_allowed(value: object, limit: MaturityRating | None) -> bool:
    if limit is None:
        return True
    try:
        rating = MaturityRating(value)  # type: ignore[arg-type]
    except ValueError:
        return False  # unrated or unknown: not shown under a limit
    return MATURITY_LEVEL[rating] <= MATURITY_LEVEL[limit]


def refusal(maturity: object, genres: Iterable[str], limits: ProfileLimits) -> str | None:
    """Why the title may not be shown under `limits`; None when it may."""
    limit = limits.content_rating_limit
    if not maturity_allowed(maturity, limit):
        if not (isinstance(maturity, str) and maturity):
            return f"unrated, and this profile's limit is {limit}"
        return f"rated {maturity}, above this profile's limit {limit}"
    blocked = sorted(set(genres) & set(limits.blocked_genres))
    if blocked:
        return f"genre {blocked[0]} is blocked for this profile"
    return None


def rated_as_series(title: Mapping[str, Any]) -> str | None:
    """The series an episode with no rating of its own is judged by (feeds rate a series,
    seldom each episode; search judges an episode by its series too): its id, or None when the
    title is judged by itself."""
    if title.get("content_type") != "episode" or title.get("maturity_rating"):
        return None
    parent = (title.get("series") or {}).get("parent_id")
    return str(parent) if parent else None


def title_refusal(
    title: Mapping[str, Any], limits: ProfileLimits, series: Mapping[str, Any] | None = None
) -> str | None:
    """`refusal` of a title as the catalog's document holds it; an episode that `rated_as_series`
    names a series for takes that series' rating, and its genres too (None: the series is not
    known, so the episode stays unrated)."""
    maturity, genres = title.get("maturity_rating"), list(title.get("genres") or ())
    if series is not None and rated_as_series(title):
        maturity = series.get("maturity_rating")
        genres += series.get("genres") or []
    return refusal(maturity, genres, limits)


def limits_tag(limits: ProfileLimits | None) -> str:
    """The limits as a short stable text for cache keys ('-' without any)."""
    if limits is None or not limits.restricts:
        return "-"
    rating = limits.content_rating_limit.value if limits.content_rating_limit else ""
    return f"{rating}/{','.join(limits.blocked_genres)}"


def stricter_limit(
    asked: MaturityRating | None, profile: MaturityRating | None
) -> MaturityRating | None:
    """The lower of two maturity limits (None: no limit)."""
    if asked is None or profile is None:
        return profile if asked is None else asked
    return asked if MATURITY_LEVEL[asked] <= MATURITY_LEVEL[profile] else profile


def within_limits(filters: SearchFilters, limits: ProfileLimits | None) -> SearchFilters:
    """A search's filters under the acting profile's limits: a client may narrow them (a lower
    maturity limit, more blocked genres), never widen them."""
    if limits is None or not limits.restricts:
        return filters
    return filters.model_copy(
        update={
            "content_rating_limit": stricter_limit(
                filters.content_rating_limit, limits.content_rating_limit
            ),
            "blocked_genres": sorted({*filters.blocked_genres, *limits.blocked_genres}),
        }
    )
