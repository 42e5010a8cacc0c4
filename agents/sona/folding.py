"""What one batch of progress reports does, without I/O: the sessions it moves on, the
viewings it completes, the profiles those viewings are folded into, and the users whose
adapter is due for training. The training handler loads the inputs and writes the results.

Reports are taken in batch order, which keeps each user's own order (the topic is keyed by
user), so the result does not depend on how the broker cut the stream into batches.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
import numpy.typing as npt

from agents.sona.profile import StoredProfile, WatchEvent, apply_watch
from agents.sona.training import Viewing
from agents.sona.viewings import ViewingState, completion_of, on_progress
from schemas.envelope import Envelope
from schemas.sync import DeviceType, PlaybackState

SessionKey = tuple[str, uuid.UUID]  # (user, title)


@dataclass(frozen=True, slots=True)
class Counted:
    """A viewing completed by a report: the report (its envelope), the session it closed."""

    cause: Envelope[Any]
    state: ViewingState
    viewing: Viewing

    @property
    def user_id(self) -> str:
        return str(self.cause.payload.user_id)


def sessions_of(
    reports: Sequence[Envelope[Any]], states: Mapping[SessionKey, ViewingState]
) -> tuple[dict[SessionKey, ViewingState], list[Counted]]:
    """(every session the reports changed, the viewings they completed, in report order).
    `states` are the sessions as stored before the batch; it is not changed."""
    current = dict(states)
    changed: dict[SessionKey, ViewingState] = {}
    counted: list[Counted] = []
    for env in reports:
        p = env.payload
        key = (p.user_id, p.content_id)
        at = datetime.fromtimestamp(p.timestamp.physical_us / 1e6, tz=UTC)
        state, viewing = on_progress(
            current.get(key),
            p.content_id,
            completion_of(p.position_seconds, p.duration_seconds),
            p.state is PlaybackState.stopped,
            at,
        )
        current[key] = changed[key] = state
        if viewing is not None:
            counted.append(Counted(env, state, viewing))
    return changed, counted


def device_type(name: str | None) -> DeviceType | None:
    """A registered device's type, or None for one unknown or of a type we do not know."""
    return DeviceType(name) if name in DeviceType.__members__ else None


def fold_viewings(
    profiles: Mapping[str, StoredProfile],
    counted: Sequence[Counted],
    *,
    genres: Mapping[uuid.UUID, tuple[str, ...]],
    vectors: Mapping[uuid.UUID, npt.NDArray[np.float32]],
    devices: Mapping[tuple[str, str], str],
    dim: int,
) -> dict[str, StoredProfile]:
    """The profiles with each viewing folded in, in order, each one more event towards the
    next training round. A title without a vector yet still counts for habits and genres,
    not for taste."""
    out = dict(profiles)
    for c in counted:
        p = c.cause.payload
        event = WatchEvent(
            content_id=str(p.content_id),
            vector=vectors.get(p.content_id, np.zeros(dim, dtype=np.float32)),
            genres=genres.get(p.content_id, ()),
            at=c.state.watched_at,
            viewing=c.viewing,
            device_type=device_type(devices.get((p.user_id, p.device_id))),
        )
        stored = out[p.user_id]
        out[p.user_id] = StoredProfile(
            apply_watch(stored.profile, event), stored.events_since_training + 1
        )
    return out


def due_for_training(profiles: Mapping[str, StoredProfile], min_events: int) -> list[str]:
    """The users with enough new viewings for a training round, in the profiles' order."""
    return [u for u, s in profiles.items() if s.events_since_training >= min_events]


def last_cause(counted: Sequence[Counted], user_id: str) -> Envelope[Any]:
    """The report behind the user's latest viewing: what a training round answers to."""
    return next(c.cause for c in reversed(counted) if c.user_id == user_id)
