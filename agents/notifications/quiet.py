"""Quiet hours (no I/O): when an alert raised now may reach the user, in their local time."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

from schemas.notifications import QuietHours
from schemas.time_zone import zone_of


def _inside(local: time, start: time, end: time) -> bool:
    if start == end:
        return False  # an empty span, not the whole day
    if start < end:
        return start <= local < end
    return local >= start or local < end  # spans midnight


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
    start, end_time = quiet.start_time, quiet.end_time
    if not _inside(wall, start, end_time):
        return None
    day = local.date()
    if wall >= end_time:  # past today's end: the span ends tomorrow
        day += timedelta(days=1)
    end = datetime.combine(day, end_time, tzinfo=zone)
    return end.astimezone(UTC)
