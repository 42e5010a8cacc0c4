"""A user's taste profile and the pure rules that fold one event at a time into it.

Preference vector. docs/RULES.md weighs each title by 0.95^(age_days / 30) x its weight (the
engagement, the rating, -0.5 for a dismissal: agents/sona/taste.py). The preference vector is
the normalized sum

    P = normalize( sum_i  w_i v_i ),   w_i = 0.95^((T - t_i) / 30 days) x e_i

for any reference time T. A title's term is folded in by `fold_taste` (a change of its weight
folds the difference at the same t_i), once the title has a vector. Changing T multiplies every
term by the same factor, which the normalization removes: the direction does not depend on
"now", so it is kept referenced to the newest event seen (`taste_as_of`). An event newer than
that decays the sum up to its own time before adding itself; an older one (arriving late) is
added already decayed. Either way the
stored sum equals the formula above with T = newest timestamp, so the result is the same
whatever order events arrive in (up to float rounding).

Genre affinities follow docs/RULES.md's moving average, new = 0.9 old + 0.1 engagement, which by
definition weighs the latest arrivals most: they are order-dependent, unlike the rest. The
hourly histogram counts viewings by the hour on the user's own clock (`time_zone`, the zone
the user's devices last reported).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, tzinfo
from types import MappingProxyType
from typing import TypeVar

import numpy as np
import numpy.typing as npt

from agents.sona.lora import DimensionMismatch
from agents.sona.training import Viewing, engagement_label
from schemas.sync import DeviceType

DECAY_PER_PERIOD = 0.95
DECAY_PERIOD_DAYS = 30.0
GENRE_KEEP = 0.9
GENRE_LEARN = 0.1
# A dismissal is no engagement with the title's genres: it pulls their affinity towards 0.
DISMISS_GENRE_ENGAGEMENT = 0.0
HOURS = 24

V = TypeVar("V")

F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]


def decay(age: timedelta) -> float:
    """0.95 per 30 days of age; an event from the future (clock skew) counts as new."""
    days = max(age.total_seconds(), 0.0) / 86_400
    return float(DECAY_PER_PERIOD ** (days / DECAY_PERIOD_DAYS))


def event_weight(engagement: float, at: datetime, now: datetime) -> float:
    """docs/RULES.md's weight of one event at time `now`: 0.95^(age_days / 30) x engagement."""
    return decay(now - at) * engagement


def local_hour(at: datetime, tz: tzinfo | None = None) -> int:
    """The hour on the user's clock: in `tz` when given, else in the timestamp's own offset."""
    return (at.astimezone(tz) if tz is not None else at).hour


@dataclass(frozen=True, slots=True)
class WatchEvent:
    """A counted viewing: its habits (hour, device) and its genres; its taste is folded by
    `fold_taste` once the title has a vector."""

    content_id: str
    genres: tuple[str, ...]
    at: datetime
    viewing: Viewing
    device_type: DeviceType | None = None

    def __post_init__(self) -> None:
        _check_aware(self.at)


@dataclass(frozen=True, slots=True)
class DismissEvent:
    content_id: str
    genres: tuple[str, ...]
    at: datetime

    def __post_init__(self) -> None:
        _check_aware(self.at)


@dataclass(frozen=True, slots=True)
class RatingEvent:
    content_id: str
    genres: tuple[str, ...]
    at: datetime
    # What the rating says of the title's genres, 0-1 (agents/sona/taste.py).
    engagement: float

    def __post_init__(self) -> None:
        _check_aware(self.at)


ProfileEvent = WatchEvent | DismissEvent | RatingEvent


def _frozen_map(values: Mapping[str, V]) -> Mapping[str, V]:
    return MappingProxyType(dict(values))


def _check_aware(at: datetime) -> None:
    # Comparing a naive with an aware timestamp raises TypeError in the middle of an update.
    if at.utcoffset() is None:
        raise ValueError(f"event time {at.isoformat()} has no UTC offset")


@dataclass(frozen=True, slots=True)
class UserProfile:
    """Immutable; every update returns a new profile. `taste` is the weighted sum referenced to
    `taste_as_of` (float64: it is a running sum of many decayed terms)."""

    dim: int
    taste: F64
    taste_as_of: datetime | None = None
    genre_affinities: Mapping[str, float] = field(default_factory=dict)
    hourly: tuple[int, ...] = (0,) * HOURS
    device_mix: Mapping[str, int] = field(default_factory=dict)
    events_applied: int = 0
    # The zone the user's devices last reported (schemas/time_zone.py), None: never said.
    time_zone: str | None = None

    def __post_init__(self) -> None:
        taste = np.array(self.taste, dtype=np.float64)
        if taste.ndim != 1 or taste.shape[0] != self.dim:
            raise DimensionMismatch("profile taste vector", self.dim, taste.shape[-1])
        if len(self.hourly) != HOURS:
            raise ValueError(f"hourly histogram needs {HOURS} slots, got {len(self.hourly)}")
        taste.flags.writeable = False
        object.__setattr__(self, "taste", taste)
        object.__setattr__(self, "hourly", tuple(int(n) for n in self.hourly))
        object.__setattr__(self, "genre_affinities", _frozen_map(self.genre_affinities))
        object.__setattr__(self, "device_mix", _frozen_map(self.device_mix))

    @classmethod
    def empty(cls, dim: int) -> UserProfile:
        return cls(dim=dim, taste=np.zeros(dim, dtype=np.float64))

    @property
    def preference(self) -> F32:
        """The unit preference vector; all zeros while nothing has been learned."""
        norm = float(np.linalg.norm(self.taste))
        if norm < 1e-12:
            return np.zeros(self.dim, dtype=np.float32)
        return (self.taste / norm).astype(np.float32)

    @property
    def has_history(self) -> bool:
        """Anything learned: a taste, or at least genres (a title without a vector yet)."""
        return self.taste_as_of is not None or bool(self.genre_affinities)

    @property
    def has_taste(self) -> bool:
        """A preference vector with a direction to compare titles by."""
        return float(np.linalg.norm(self.taste)) >= 1e-12


@dataclass(frozen=True, slots=True)
class StoredProfile:
    """A profile as the user_profiles row keeps it: with the viewings counted since the user's
    adapter was last trained (training is due from SONA_MIN_TRAINING_EVENTS of them)."""

    profile: UserProfile
    events_since_training: int = 0


def _with_taste(profile: UserProfile, vector: npt.ArrayLike, weight: float, at: datetime) -> F64:
    v = np.asarray(vector, dtype=np.float64)
    if v.ndim != 1 or v.shape[0] != profile.dim:
        raise DimensionMismatch("content vector", profile.dim, v.shape[-1])
    as_of = profile.taste_as_of
    if as_of is None:
        return weight * v
    if at > as_of:
        return profile.taste * decay(at - as_of) + weight * v
    return profile.taste + (weight * decay(as_of - at)) * v


def _newest(as_of: datetime | None, at: datetime) -> datetime:
    return at if as_of is None or at > as_of else as_of


def _with_genres(
    affinities: Mapping[str, float], genres: tuple[str, ...], engagement: float
) -> dict[str, float]:
    updated = dict(affinities)
    # A title listing a genre twice is still one observation of it.
    for genre in dict.fromkeys(g.strip().lower() for g in genres):
        updated[genre] = GENRE_KEEP * updated.get(genre, 0.0) + GENRE_LEARN * engagement
    return updated


def fold_taste(
    profile: UserProfile, vector: npt.ArrayLike, weight: float, at: datetime
) -> UserProfile:
    """The profile with `weight` x `vector` (an event of time `at`) added to the taste sum."""
    _check_aware(at)
    return replace(
        profile,
        taste=_with_taste(profile, vector, weight, at),
        taste_as_of=_newest(profile.taste_as_of, at),
    )


def apply_watch(
    profile: UserProfile, event: WatchEvent, *, tz: tzinfo | None = None
) -> UserProfile:
    """Fold one viewing's habits and genres in. A view under 30 % still says when and on what
    the user watches (hourly histogram, device mix) but nothing about genres."""
    hourly = list(profile.hourly)
    hourly[local_hour(event.at, tz)] += 1
    devices = dict(profile.device_mix)
    if event.device_type is not None:
        devices[event.device_type.value] = devices.get(event.device_type.value, 0) + 1
    genres = profile.genre_affinities
    engagement = engagement_label(event.viewing)
    if engagement is not None:
        genres = _with_genres(genres, event.genres, engagement)
    return replace(
        profile,
        genre_affinities=genres,
        hourly=tuple(hourly),
        device_mix=devices,
        events_applied=profile.events_applied + 1,
    )


def apply_dismiss(profile: UserProfile, event: DismissEvent) -> UserProfile:
    """No engagement with the title's genres; not a viewing, so the hourly histogram and
    device mix are left alone (its -0.5 of taste is the title's weight: taste.py)."""
    return replace(
        profile,
        genre_affinities=_with_genres(
            profile.genre_affinities, event.genres, DISMISS_GENRE_ENGAGEMENT
        ),
        events_applied=profile.events_applied + 1,
    )


def apply_rating(profile: UserProfile, event: RatingEvent) -> UserProfile:
    """A rating is one more observation of the title's genres, at the rating's engagement."""
    return replace(
        profile,
        genre_affinities=_with_genres(profile.genre_affinities, event.genres, event.engagement),
        events_applied=profile.events_applied + 1,
    )


def apply_event(
    profile: UserProfile, event: ProfileEvent, *, tz: tzinfo | None = None
) -> UserProfile:
    if isinstance(event, DismissEvent):
        return apply_dismiss(profile, event)
    if isinstance(event, RatingEvent):
        return apply_rating(profile, event)
    return apply_watch(profile, event, tz=tz)
