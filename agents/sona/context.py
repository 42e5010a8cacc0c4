"""The moment a recommendation is asked for: time of day, device, mood, region, and how well a
title fits it (the mix's "context" source, weight .10).

Time buckets of the local hour (docs/RULES.md): night 0-6, morning 6-12, afternoon 12-18, evening
18-24, each start inclusive. Devices: a TV prefers runtimes >= 30 min, a phone or tablet
<= 60 min; web and desktop have no preference. Mood -> genres comes from agents.sona.moods.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, tzinfo

from agents.sona.moods import genres_for_mood
from schemas.content import checked_region, region_code
from schemas.sona import RecommendationContext, RecommendationsRequested, TimeBucket
from schemas.sync import DeviceType

BUCKET_HOURS: dict[TimeBucket, range] = {
    TimeBucket.night: range(0, 6),
    TimeBucket.morning: range(6, 12),
    TimeBucket.afternoon: range(12, 18),
    TimeBucket.evening: range(18, 24),
}
TV_MIN_RUNTIME = 30
MOBILE_MAX_RUNTIME = 60
MOBILE = frozenset({DeviceType.phone, DeviceType.tablet})
# The context source counts fully in the user's busiest bucket and half in one they never
# watch in: a request at an unusual hour says less about what they want then.
HABIT_FLOOR = 0.5
# A bucket holding at least its even share of the day (6 of 24 hours) is "your" time.
HABITUAL_SHARE = 6 / 24
# An unknown runtime neither fits nor misses the device.
UNKNOWN_RUNTIME_FIT = 0.5


def time_bucket(hour: int) -> TimeBucket:
    if not 0 <= hour < 24:
        raise ValueError(f"hour must be 0-23, got {hour}")
    return next(bucket for bucket, hours in BUCKET_HOURS.items() if hour in hours)


def bucket_share(hourly: Sequence[int], bucket: TimeBucket) -> float | None:
    """The bucket's fraction of a user's 24-slot viewing histogram; None with no history."""
    if len(hourly) != 24:
        raise ValueError(f"hourly histogram needs 24 slots, got {len(hourly)}")
    total = sum(hourly)
    if total <= 0:
        return None
    return sum(hourly[h] for h in BUCKET_HOURS[bucket]) / total


def habit_weight(hourly: Sequence[int], bucket: TimeBucket) -> float:
    """How much the context source counts now: 1.0 in the user's busiest bucket (or with no
    history to say otherwise), down to HABIT_FLOOR in a bucket they never watch in."""
    share = bucket_share(hourly, bucket)
    if share is None:
        return 1.0
    busiest = max(bucket_share(hourly, b) or 0.0 for b in TimeBucket)
    return HABIT_FLOOR + (1.0 - HABIT_FLOOR) * share / busiest


@dataclass(frozen=True, slots=True)
class Habit:
    """The user's habit for the request's time bucket, worked out once per request."""

    weight: float = 1.0
    # At least an even share of the user's viewing falls in this bucket: "your evening".
    habitual: bool = False


NO_HABIT = Habit()


def habit_of(hourly: Sequence[int] | None, bucket: TimeBucket) -> Habit:
    if hourly is None:
        return NO_HABIT
    share = bucket_share(hourly, bucket)
    return Habit(
        weight=habit_weight(hourly, bucket),
        habitual=share is not None and share >= HABITUAL_SHARE,
    )


@dataclass(frozen=True, slots=True)
class RuntimePreference:
    """A device's runtime bounds in minutes, None meaning unbounded: the store's SQL
    parameters (`runtime_minutes >= $min`, `<= $max`) and a predicate on one title."""

    min_minutes: int | None = None
    max_minutes: int | None = None

    @property
    def unbounded(self) -> bool:
        return self.min_minutes is None and self.max_minutes is None

    def accepts(self, runtime_minutes: int | None) -> bool:
        """Unknown runtimes pass, as `runtime_minutes IS NULL OR ...` would: a preference is
        not a reason to hide a title we know too little about."""
        if runtime_minutes is None:
            return True
        if self.min_minutes is not None and runtime_minutes < self.min_minutes:
            return False
        return self.max_minutes is None or runtime_minutes <= self.max_minutes


def runtime_preference(device_type: DeviceType | None) -> RuntimePreference:
    if device_type is DeviceType.tv:
        return RuntimePreference(min_minutes=TV_MIN_RUNTIME)
    if device_type in MOBILE:
        return RuntimePreference(max_minutes=MOBILE_MAX_RUNTIME)
    return RuntimePreference()


def _checked_region(region: str | None) -> str | None:
    if region is None:
        return None
    return checked_region(region_code(region))


@dataclass(frozen=True, slots=True)
class Context:
    time_bucket: TimeBucket
    device_type: DeviceType | None = None
    mood: str | None = None
    region: str | None = None

    @property
    def runtime(self) -> RuntimePreference:
        return runtime_preference(self.device_type)

    @property
    def mood_genres(self) -> tuple[str, ...]:
        """Genres the mood calls for; empty without a mood (docs/RULES.md's default is for moods we
        do not know, not for requests that named none)."""
        return genres_for_mood(self.mood) if self.mood else ()

    def echo(self) -> RecommendationContext:
        """The context as the response reports it."""
        return RecommendationContext(
            time_bucket=self.time_bucket,
            device_type=self.device_type,
            mood=self.mood,
            region=self.region,
        )


def build_context(
    *,
    at: datetime,
    device_type: DeviceType | str | None = None,
    mood: str | None = None,
    region: str | None = None,
    tz: tzinfo | None = None,
) -> Context:
    """The context of a request made at `at` (the client's clock; converted to `tz` if given,
    else read in its own UTC offset)."""
    local = at.astimezone(tz) if tz is not None else at
    word = mood.strip().lower() if mood else None
    return Context(
        time_bucket=time_bucket(local.hour),
        device_type=DeviceType(device_type) if device_type is not None else None,
        mood=word or None,
        region=_checked_region(region),
    )


def context_of(request: RecommendationsRequested, *, tz: tzinfo | None = None) -> Context:
    return build_context(
        at=request.at,
        device_type=request.device_type,
        mood=request.mood,
        region=request.region,
        tz=tz,
    )


@dataclass(frozen=True, slots=True)
class ContextFit:
    # 0-1, or None when the request gave nothing to fit (no mood, no device preference).
    score: float | None
    reasons: tuple[str, ...]


_DEVICE_REASON = {
    DeviceType.tv: "a good length for your TV",
    DeviceType.phone: "short enough for your phone",
    DeviceType.tablet: "short enough for your tablet",
}


def context_fit(
    context: Context,
    genres: Sequence[str],
    runtime_minutes: int | None,
    habit: Habit = NO_HABIT,
) -> ContextFit:
    """How well one title fits the moment: the mean of the mood match (any genre the mood
    calls for) and the device's runtime fit, times the habit weight of the time bucket."""
    parts: list[float] = []
    reasons: list[str] = []
    wanted = context.mood_genres
    if wanted:
        matches = any(g.strip().lower() in wanted for g in genres)
        parts.append(1.0 if matches else 0.0)
        if matches:
            reasons.append(f"matches mood: {context.mood}")
    preference = context.runtime
    if not preference.unbounded:
        if runtime_minutes is None:
            parts.append(UNKNOWN_RUNTIME_FIT)
        elif preference.accepts(runtime_minutes):
            parts.append(1.0)
            if context.device_type in _DEVICE_REASON:
                reasons.append(_DEVICE_REASON[context.device_type])
        else:
            parts.append(0.0)
    if not parts:
        return ContextFit(score=None, reasons=())

    fit = sum(parts) / len(parts)
    if fit >= 0.5 and habit.habitual:
        reasons.append(f"fits your {context.time_bucket.value} viewing")
    return ContextFit(score=fit * habit.weight, reasons=tuple(reasons))
