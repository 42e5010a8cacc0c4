"""The read model of a series: its seasons, their episode counts and where each can be
watched. Pure: built from rows the store reads (agents/readmodel/store.py)."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field

import orjson

UNNUMBERED = None  # the season of episodes a feed gave no season for


@dataclass(frozen=True, slots=True)
class EpisodeFact:
    series_id: uuid.UUID
    season_number: int | None
    platforms: frozenset[str]  # platforms offering the episode itself, now


@dataclass
class _Season:
    season_id: uuid.UUID | None
    episodes: int = 0
    platforms: set[str] = field(default_factory=set)


def series_document(
    series_id: uuid.UUID,
    title: str,
    series_platforms: Iterable[str],
    seasons: Iterable[tuple[int, uuid.UUID]],
    episodes: Iterable[EpisodeFact],
    season_platforms: Iterable[tuple[int, str]],
) -> bytes:
    """{series_id, title, season_count, episode_count, platforms, seasons: [{season_number,
    season_id, episode_count, platforms}]}, seasons in order (specials, season 0, first;
    episodes without a season last, season_number null).

    A season's platforms: those offering the whole series, the season (a season listing) or
    any of its episodes: "Season 2 is on Netflix, Season 3 on Max"."""
    whole = set(series_platforms)
    by_number: dict[int | None, _Season] = {n: _Season(sid) for n, sid in seasons}
    for ep in episodes:
        season = by_number.setdefault(ep.season_number, _Season(None))
        season.episodes += 1
        season.platforms |= ep.platforms
    for number, platform in season_platforms:
        by_number.setdefault(number, _Season(None)).platforms.add(platform)
    numbered = sorted(n for n in by_number if n is not None)
    order: list[int | None] = [*numbered, *([UNNUMBERED] if UNNUMBERED in by_number else [])]
    out = [
        {
            "season_number": n,
            "season_id": str(by_number[n].season_id) if by_number[n].season_id else None,
            "episode_count": by_number[n].episodes,
            "platforms": sorted(by_number[n].platforms | whole),
        }
        for n in order
    ]
    return orjson.dumps(
        {
            "series_id": str(series_id),
            "title": title,
            "season_count": len([n for n in numbered if n != 0]),
            "episode_count": sum(s.episodes for s in by_number.values()),
            "platforms": sorted(whole),
            "seasons": out,
        }
    )
