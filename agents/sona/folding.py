"""What one batch of progress reports, ratings or dismissals does, without I/O: the rows it
changes (sessions, feedback, taste weights), the profiles it folds into, and the users whose
adapter is due for training. The training handlers load the inputs and write the results.

Events are taken in batch order, which keeps each user's own order (the topics are keyed by
user), so the result does not depend on how the broker cut the stream into batches.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, tzinfo
from typing import Any

import numpy as np
import numpy.typing as npt

from agents.sona.lora import TrainingExample
from agents.sona.profile import (
    DismissEvent,
    RatingEvent,
    StoredProfile,
    WatchEvent,
    apply_dismiss,
    apply_rating,
    apply_watch,
)
from agents.sona.taste import rating_engagement, settle, weighed
from agents.sona.training import Viewing
from agents.sona.viewings import (
    ViewingState,
    completion_of,
    on_dismissal,
    on_progress,
    on_rating,
)
from schemas.envelope import Envelope
from schemas.sona import ContentDismissed, ContentRated
from schemas.sync import DeviceType, PlaybackState
from schemas.time_zone import zone_of

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


def _zone(name: str | None) -> tzinfo | None:
    return zone_of(name) if name else None


def sessions_of(
    reports: Sequence[Envelope[Any]],
    states: Mapping[SessionKey, ViewingState],
    zones: Mapping[str, str | None] | None = None,
) -> tuple[dict[SessionKey, ViewingState], list[Counted], dict[str, str | None]]:
    """(every row the reports changed, the viewings they completed in report order, each
    user's zone after the batch). `states` are the rows as stored before the batch and
    `zones` the users' known zones (a report naming its own zone moves its user there); the
    inputs are not changed. A viewing's hour is read on the user's clock."""
    current = dict(states)
    zone_names = dict(zones or {})
    changed: dict[SessionKey, ViewingState] = {}
    counted: list[Counted] = []
    for env in reports:
        p = env.payload
        key = (p.user_id, p.content_id)
        if p.time_zone:
            zone_names[p.user_id] = p.time_zone
        at = datetime.fromtimestamp(p.timestamp.physical_us / 1e6, tz=UTC)
        state, viewing = on_progress(
            current.get(key),
            p.content_id,
            completion_of(p.position_seconds, p.duration_seconds),
            p.state is PlaybackState.stopped,
            at,
            _zone(zone_names.get(p.user_id)),
        )
        state = weighed(state)
        current[key] = changed[key] = state
        if viewing is not None:
            counted.append(Counted(env, state, viewing))
    return changed, counted, zone_names


def feedback_of(
    events: Sequence[Envelope[Any]],
    states: Mapping[SessionKey, ViewingState],
    zones: Mapping[str, str | None] | None = None,
) -> tuple[dict[SessionKey, ViewingState], list[Envelope[Any]]]:
    """(every row the ratings or dismissals changed, the events that changed one). A rating
    older than the one kept, or a second dismissal, changes nothing."""
    current = dict(states)
    names = zones or {}
    changed: dict[SessionKey, ViewingState] = {}
    applied: list[Envelope[Any]] = []
    for env in events:
        p = env.payload
        key = (p.user_id, p.content_id)
        tz = _zone(names.get(p.user_id))
        if isinstance(p, ContentRated):
            state = on_rating(current.get(key), p.content_id, p.rating, p.timestamp, tz)
        elif isinstance(p, ContentDismissed):
            state = on_dismissal(current.get(key), p.content_id, p.timestamp, tz)
        else:
            raise TypeError(f"not feedback: {type(p).__name__}")
        if state is None:
            continue
        state = weighed(state)
        current[key] = changed[key] = state
        applied.append(env)
    return changed, applied


def device_type(name: str | None) -> DeviceType | None:
    """A registered device's type, or None for one unknown or of a type we do not know."""
    return DeviceType(name) if name in DeviceType.__members__ else None


def fold_viewings(
    profiles: Mapping[str, StoredProfile],
    counted: Sequence[Counted],
    *,
    genres: Mapping[uuid.UUID, tuple[str, ...]],
    devices: Mapping[tuple[str, str], str],
    zones: Mapping[str, str | None] | None = None,
) -> dict[str, StoredProfile]:
    """The profiles with each viewing's habits and genres folded in, in order, each one more
    event towards the next training round; the users' zones as `zones` says (taste: `settle`)."""
    out = dict(profiles)
    for user, name in (zones or {}).items():
        if user in out and name and out[user].profile.time_zone != name:
            stored = out[user]
            out[user] = replace(stored, profile=replace(stored.profile, time_zone=name))
    for c in counted:
        p = c.cause.payload
        event = WatchEvent(
            content_id=str(p.content_id),
            genres=genres.get(p.content_id, ()),
            at=c.state.watched_at,
            viewing=c.viewing,
            device_type=device_type(devices.get((p.user_id, p.device_id))),
        )
        stored = out[p.user_id]
        profile = apply_watch(stored.profile, event, tz=_zone(stored.profile.time_zone))
        out[p.user_id] = StoredProfile(profile, stored.events_since_training + 1)
    return out


def fold_feedback(
    profiles: Mapping[str, StoredProfile],
    applied: Sequence[Envelope[Any]],
    *,
    genres: Mapping[uuid.UUID, tuple[str, ...]],
) -> dict[str, StoredProfile]:
    """The profiles with each rating's or dismissal's genres folded in, each one more event
    towards the next training round (taste: `settle`)."""
    out = dict(profiles)
    for env in applied:
        p = env.payload
        stored = out[p.user_id]
        titled = genres.get(p.content_id, ())
        if isinstance(p, ContentRated):
            profile = apply_rating(
                stored.profile,
                RatingEvent(str(p.content_id), titled, p.timestamp, rating_engagement(p.rating)),
            )
        else:
            profile = apply_dismiss(
                stored.profile, DismissEvent(str(p.content_id), titled, p.timestamp)
            )
        out[p.user_id] = StoredProfile(profile, stored.events_since_training + 1)
    return out


def settle_rows(
    profiles: Mapping[str, StoredProfile],
    rows: Mapping[SessionKey, ViewingState],
    vectors: Mapping[uuid.UUID, npt.NDArray[np.float32]],
) -> tuple[dict[str, StoredProfile], dict[SessionKey, ViewingState]]:
    """Each row's unfolded weight folded into its user's taste, where the title has a vector;
    (the profiles, the rows whose bookkeeping moved)."""
    out = dict(profiles)
    moved: dict[SessionKey, ViewingState] = {}
    for key, state in rows.items():
        user, content_id = key
        stored = out[user]
        profile, settled = settle(stored.profile, state, vectors.get(content_id))
        if settled is not state:
            out[user] = replace(stored, profile=profile)
            moved[key] = settled
    return out, moved


@dataclass(frozen=True, slots=True)
class LikingChanges:
    """How many more users like each title (a positive taste weight), and how many more
    titles each user likes, after a batch than before: counts the training transactions keep
    so that no request has to count them (agents/sona/candidates_store.py)."""

    by_title: dict[uuid.UUID, int]
    by_user: dict[str, int]


def liking_changes(
    before: Mapping[SessionKey, ViewingState], after: Mapping[SessionKey, ViewingState]
) -> LikingChanges:
    by_title: dict[uuid.UUID, int] = {}
    by_user: dict[str, int] = {}
    for key, state in after.items():
        old = before.get(key)
        delta = int(state.taste_weight > 0) - int(old is not None and old.taste_weight > 0)
        if delta:
            by_title[state.content_id] = by_title.get(state.content_id, 0) + delta
            by_user[key[0]] = by_user.get(key[0], 0) + delta
    return LikingChanges(
        {cid: n for cid, n in by_title.items() if n}, {u: n for u, n in by_user.items() if n}
    )


def due_for_training(profiles: Mapping[str, StoredProfile], min_events: int) -> list[str]:
    """The users with enough new events for a training round, in the profiles' order."""
    return [u for u, s in profiles.items() if s.events_since_training >= min_events]


def latest_causes(events: Sequence[Counted | Envelope[Any]]) -> dict[str, Envelope[Any]]:
    """Each user's latest event: what a training round answers to."""
    out: dict[str, Envelope[Any]] = {}
    for event in events:
        env = event.cause if isinstance(event, Counted) else event
        out[str(env.payload.user_id)] = env
    return out


def training_examples_of(
    rows: Sequence[ViewingState], vectors: Mapping[uuid.UUID, npt.NDArray[np.float32]]
) -> list[TrainingExample]:
    """(vector, label) of each row with something to teach and a vector, in the given order."""
    out: list[TrainingExample] = []
    for state in rows:
        label = state.label()
        vector = vectors.get(state.content_id)
        if label is not None and vector is not None:
            out.append(TrainingExample(np.asarray(vector, dtype=np.float32), label))
    return out
