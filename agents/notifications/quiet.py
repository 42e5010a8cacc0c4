"""Quiet hours (no I/O): when an alert raised now may reach the user, in their local time."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

from schemas.notifications import QuietHours
from schemas.time_zone import zone_of


def _inside(local: time, quiet: QuietHours) -> bool:
    if quiet.start == quiet.end:
        return False  # an empty span, not the whole day
    if quiet.start < quiet.end:
        return quiet.start <= local < quiet.end
    return local >= quiet.start or local < quiet.end  # spans midnight


def release_at(now: datetime, time_zone: str, quiet: QuietHours | None) -> datetime | None:
    """None: deliver now. Otherwise the UTC instant the user's quiet hours end.

    The end is taken on the local calendar (22:00-07:00 raised at 23:30 ends at 07:00 the next
    local day), so a daylight-saving change inside the span moves it as the user's clock does.
    """
    if quiet is None:
        return None
    zone = zone_of(time_zone)
    local = now.astimezone(zone)
    wall = local.time().replace(tzinfo=None)
    if not _inside(wall, quiet):
        return None
    day = local.date()
    if wall >= quiet.end:  # past today's end: the span ends tomorrow
        day += timedelta(days=1)
    end = datetime.combine(day, quiet.end, tzinfo=zone)
    return end.astimezone(UTC)
