"""Which episode of a series comes after the one just finished, and continue watching per series
(no I/O; docs/SYNC.md, "Series in continue watching").

An episode has a place when it has a season (1 or more) and an episode number. The next episode
is the first placed episode after the finished one in (season, episode) order, so a gap in the
numbers (E4 missing) goes on to E5, a season's end to the next season's first listed episode, and
the last episode of the series gives none. An episode listed only by its absolute number (how
anime and daily shows are listed, docs/INGESTION.md "Missing numbers") is followed by the next
absolute number. Specials (season 0) and episodes without numbers are in neither order: they are
never "next", and finishing one does not move the series on (they stay titles of their own in
continue watching).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from agents.sync.progress import Position, is_complete


@dataclass(frozen=True, slots=True)
class Episode:
    """One episode of a series, in the catalog's canonical numbering (migration 0040)."""

    content_id: uuid.UUID
    series_id: uuid.UUID
    season_number: int | None
    episode_number: int | None
    absolute_number: int | None = None

    def place(self) -> tuple[int, int] | None:
        """(season, episode), or None for a special or an episode missing a number."""
        if self.season_number is None or self.episode_number is None or self.season_number < 1:
            return None
        return (self.season_number, self.episode_number)

    def absolute(self) -> int | None:
        """The number across the series, for an episode not a special."""
        return None if self.season_number == 0 else self.absolute_number

    def in_order(self) -> bool:
        """Whether the episode has a next one to look for (and so speaks for its series)."""
        return self.place() is not None or self.absolute() is not None


def next_episode(finished: Episode, episodes: Iterable[Episode]) -> Episode | None:
    """The episode to play after `finished`, among its series' `episodes` (any order)."""
    # The finished episode's own numbering decides: seasons when it has them, else absolute.
    key: Callable[[Episode], Any] = Episode.place
    after: Any = finished.place()
    if after is None:
        key, after = Episode.absolute, finished.absolute()
    if after is None:
        return None
    later = [
        (k, e.content_id.int, e)
        for e in episodes
        if e.series_id == finished.series_id
        and e.content_id != finished.content_id
        and (k := key(e)) is not None
        and k > after
    ]
    # Two episodes sharing a place (a feed that numbers a two-parter alike): the content id
    # orders them, so every replica names the same one.
    return min(later, key=lambda t: (t[0], t[1]))[2] if later else None


@dataclass(frozen=True, slots=True)
class UpNext:
    """A series' line in continue watching: the episode to play and where to start it.

    `position` is the episode's own open position when the user already started it, else None
    (start at 0). `since` is the series' latest write (the finished episode's when `finished`),
    which orders the line among the others."""

    series_id: uuid.UUID
    episode: Episode
    position: Position | None
    since: Position
    finished: bool


def series_lines(
    latest: Mapping[uuid.UUID, tuple[Position, Episode]],
    episodes: Mapping[uuid.UUID, Iterable[Episode]],
    open_positions: Mapping[uuid.UUID, Position],
) -> list[UpNext]:
    """One line per series from its latest placed episode's position.

    `latest`: per series, the newest write among its placed episodes and that episode.
    `episodes`: per series, its episode list (needed for series whose latest is complete).
    `open_positions`: the user's open positions by title (the next episode may be started).
    An open latest episode is the line itself; a complete one gives its next episode, or no line
    at the series' end."""
    lines = []
    for series_id, (position, episode) in latest.items():
        if not is_complete(position):
            lines.append(UpNext(series_id, episode, position, position, finished=False))
            continue
        upcoming = next_episode(episode, episodes.get(series_id, ()))
        if upcoming is None:
            continue
        started = open_positions.get(upcoming.content_id)
        lines.append(UpNext(series_id, upcoming, started, position, finished=True))
    return lines


def latest_per_series(
    positions: Iterable[tuple[Position, Episode]],
) -> dict[uuid.UUID, tuple[Position, Episode]]:
    """The newest write per series among episodes in order (specials and unnumbered ones
    skipped)."""
    latest: dict[uuid.UUID, tuple[Position, Episode]] = {}
    for position, episode in positions:
        if not episode.in_order():
            continue
        held = latest.get(episode.series_id)
        if held is None or _rank(position) > _rank(held[0]):
            latest[episode.series_id] = (position, episode)
    return latest


def _rank(position: Position) -> tuple[tuple[int, int, str, float, float, str], int]:
    """Writes to different episodes compared: the newer wins, the title id breaks a tie."""
    return (position.order(), position.content_id.int)
