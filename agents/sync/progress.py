"""Playback position per (user, title): a last-writer-wins register, and continue watching.

The newer HLC wins, on a tie the larger device_id (docs/RULES.md). Two different writes with the
same clock and device should not happen; if a misbehaving device sends them anyway, the position
values break the tie, so every replica still picks the same winner whatever the arrival order.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from agents.sync.clock import lww_key
from schemas.sync import HLC, PlaybackState, ProgressUpdate

# A title counts as watched above this share of its duration (docs/RULES.md).
COMPLETE_ABOVE = 0.9


@dataclass(frozen=True, slots=True)
class Position:
    """The register's value: where one user is in one title, and which write put it there."""

    user_id: str
    content_id: uuid.UUID
    position_seconds: float
    duration_seconds: float
    state: PlaybackState
    timestamp: HLC
    device_id: str

    @classmethod
    def of(cls, update: ProgressUpdate) -> Position:
        return cls(
            user_id=update.user_id,
            content_id=update.content_id,
            position_seconds=update.position_seconds,
            duration_seconds=update.duration_seconds,
            state=update.state,
            timestamp=update.timestamp,
            device_id=update.device_id,
        )

    def order(self) -> tuple[int, int, str, float, float, str]:
        """Total order of writes: LWW first, then the values (see the module docstring)."""
        return (
            *lww_key(self.timestamp, self.device_id),
            self.position_seconds,
            self.duration_seconds,
            self.state.value,
        )


@dataclass(frozen=True, slots=True)
class Merge:
    winner: Position
    # False for a redelivered or stale update: nothing to store, nothing to publish.
    changed: bool


def pick(a: Position, b: Position) -> Position:
    """The later of two writes to the same register."""
    if (a.user_id, a.content_id) != (b.user_id, b.content_id):
        raise ValueError(
            f"cannot merge progress of {a.user_id}/{a.content_id} with {b.user_id}/{b.content_id}"
        )
    return a if a.order() >= b.order() else b


def merge(current: Position | None, update: ProgressUpdate | Position) -> Merge:
    """The register after `update` arrives; `changed` says whether the update won."""
    incoming = update if isinstance(update, Position) else Position.of(update)
    if current is None:
        return Merge(winner=incoming, changed=True)
    winner = pick(current, incoming)
    return Merge(winner=winner, changed=winner != current)


def merge_states(
    a: Mapping[uuid.UUID, Position], b: Mapping[uuid.UUID, Position]
) -> dict[uuid.UUID, Position]:
    """Join two replicas of one user's registers (title -> position): the later write per title."""
    joined = dict(a)
    for content_id, position in b.items():
        held = joined.get(content_id)
        joined[content_id] = position if held is None else pick(held, position)
    return joined


def completion(position: Position) -> float:
    """Share of the title watched, 0..1."""
    return min(position.position_seconds / position.duration_seconds, 1.0)


def is_complete(position: Position) -> bool:
    return completion(position) > COMPLETE_ABOVE


def continue_watching(positions: Iterable[Position], limit: int | None = None) -> list[Position]:
    """One user's latest position per title, newest first, leaving out titles already watched.

    A title whose latest write is complete is left out even if an older write was not: the
    question is where the user is now.
    """
    latest: dict[uuid.UUID, Position] = {}
    for position in positions:
        held = latest.get(position.content_id)
        latest[position.content_id] = position if held is None else pick(held, position)
    open_titles = [p for p in latest.values() if not is_complete(p)]
    # Ties on the clock (two titles stamped alike) fall back to the title id for a stable list.
    open_titles.sort(key=lambda p: (p.order(), p.content_id.int), reverse=True)
    return open_titles if limit is None else open_titles[:limit]
