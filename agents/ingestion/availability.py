"""Availability as rows, what changed between two versions, and what is about to expire.

A row is one offer in one region: (platform, region, availability_type). docs/RULES.md speaks of
rows per (content, platform, region); the offer type is part of the key here because the same region
commonly has both a rental and a purchase offer (Prime Video, Apple TV), which one row per region
could not hold.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, fields
from datetime import datetime, timedelta

from schemas.content import AvailabilityType, PlatformAvailability

DEFAULT_WINDOWS_DAYS: tuple[int, ...] = (7, 3, 1)
# An offer's expiry that moved by less than this since its notice is the same expiry (feeds
# jitter by seconds, or by hours when they mix up time zones): no second notice. Moved by more,
# it is a new round (the licence was extended, and now ends again): noticed again.
SAME_EXPIRY = timedelta(days=1)

SlotKey = tuple[str, str, str]  # platform, region, availability_type


@dataclass(frozen=True, slots=True)
class Slot:
    """One offer in one region, without the content id (what a diff compares)."""

    platform: str
    region: str
    availability_type: AvailabilityType
    price_cents: int | None
    currency: str | None
    deep_link: str | None
    web_fallback: str | None
    available_from: datetime | None
    expires_at: datetime | None

    @property
    def key(self) -> SlotKey:
        return (self.platform, self.region, self.availability_type.value)

    def of(self, content_id: uuid.UUID) -> AvailabilityRow:
        """This slot as a row of one title (field by field: `asdict` deep-copies, and it showed
        up in profiles of the ingestion batch)."""
        return AvailabilityRow(*(getattr(self, name) for name in _SLOT_FIELDS), content_id)


@dataclass(frozen=True, slots=True)
class AvailabilityRow(Slot):
    """A platform_availability table row: one title's slot."""

    content_id: uuid.UUID


_SLOT_FIELDS = tuple(f.name for f in fields(Slot))


@dataclass(frozen=True, slots=True)
class AvailabilityDiff:
    appeared: tuple[Slot, ...]
    changed: tuple[tuple[Slot, Slot], ...]  # (old, new)
    # No longer offered: the caller records them as expiring now (an empty region list in a
    # feed lands here, as docs/RULES.md asks).
    expired: tuple[Slot, ...]

    @property
    def empty(self) -> bool:
        return not (self.appeared or self.changed or self.expired)


def slots(availability: Iterable[PlatformAvailability], platform: str | None = None) -> list[Slot]:
    """One slot per (platform, region, type), sorted; optionally for one platform only.

    Two entries of a feed for the same slot (duplicated lines) collapse into the last one.
    """
    out: dict[SlotKey, Slot] = {}
    for entry in availability:
        if platform is not None and entry.platform != platform:
            continue
        for region in entry.regions:
            slot = Slot(
                platform=entry.platform,
                region=region,
                availability_type=entry.availability_type,
                price_cents=entry.price_cents,
                currency=entry.currency,
                deep_link=entry.deep_link,
                web_fallback=entry.web_url,
                available_from=entry.available_from,
                expires_at=entry.available_until,
            )
            out[slot.key] = slot
    return [out[k] for k in sorted(out)]


def rows(
    content_id: uuid.UUID, availability: Iterable[PlatformAvailability]
) -> list[AvailabilityRow]:
    return [s.of(content_id) for s in slots(availability)]


def diff_availability(
    old: Iterable[PlatformAvailability], new: Iterable[PlatformAvailability], platform: str
) -> AvailabilityDiff:
    """What changed for one platform between two versions of a title's availability."""
    before = {s.key: s for s in slots(old, platform)}
    after = {s.key: s for s in slots(new, platform)}
    return AvailabilityDiff(
        appeared=tuple(after[k] for k in sorted(after.keys() - before.keys())),
        changed=tuple(
            (before[k], after[k])
            for k in sorted(before.keys() & after.keys())
            if before[k] != after[k]
        ),
        expired=tuple(before[k] for k in sorted(before.keys() - after.keys())),
    )


def platform_diffs(
    old: Sequence[PlatformAvailability],
    new: Sequence[PlatformAvailability],
    platforms: Iterable[str] | None = None,
) -> dict[str, AvailabilityDiff]:
    """The diff of each platform that changed, of `platforms` (default: every platform either
    version offers), in platform order."""
    if platforms is None:
        platforms = {a.platform for a in [*old, *new]}
    diffs = {platform: diff_availability(old, new, platform) for platform in sorted(platforms)}
    return {platform: diff for platform, diff in diffs.items() if not diff.empty}


def ended_at(expires_at: datetime | None, now: datetime) -> datetime:
    """When an offer that left the feed (a diff's `expired`) ended: now, unless it had ended
    already, whose end stays as it was."""
    return expires_at if expires_at is not None and expires_at <= now else now


@dataclass(frozen=True, slots=True)
class ExpiryNotice:
    content_id: uuid.UUID
    platform: str
    region: str
    availability_type: AvailabilityType
    window_days: int
    expires_at: datetime

    @property
    def dedupe_key(self) -> str:
        """One notice per offer and window: the periodic check emits each key once (again only
        when the expiry moved by SAME_EXPIRY or more since: a new round).

        The offer type is part of the key like it is part of the row key; the expiry time is
        not, so a feed that jitters expires_at by seconds does not re-notify.
        """
        return ":".join(
            (
                str(self.content_id),
                self.platform,
                self.region,
                self.availability_type.value,
                f"{self.window_days}d",
            )
        )


def expiring(
    rows: Iterable[AvailabilityRow],
    now: datetime,
    windows: Sequence[int] = DEFAULT_WINDOWS_DAYS,
) -> list[ExpiryNotice]:
    """Rows expiring within a window, each in the SMALLEST window it has reached.

    A row 2 days out is in the 3-day window; one already expired (expires_at <= now) is in
    none. Sorted by expiry, then row key.
    """
    if not windows or any(w <= 0 for w in windows):
        raise ValueError(f"windows must be positive numbers of days, got {list(windows)!r}")
    ordered = sorted(set(windows))
    notices: list[ExpiryNotice] = []
    for row in rows:
        if row.expires_at is None or row.expires_at <= now:
            continue
        left = row.expires_at - now
        window = next((w for w in ordered if left <= timedelta(days=w)), None)
        if window is None:
            continue
        notices.append(
            ExpiryNotice(
                content_id=row.content_id,
                platform=row.platform,
                region=row.region,
                availability_type=row.availability_type,
                window_days=window,
                expires_at=row.expires_at,
            )
        )
    notices.sort(
        key=lambda n: (
            n.expires_at,
            str(n.content_id),
            n.platform,
            n.region,
            n.availability_type.value,
        )
    )
    return notices
