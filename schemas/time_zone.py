"""A device's time zone as clients send it: an IANA zone name ("Europe/Paris", which follows
daylight saving) or a fixed UTC offset ("+01:00", "-05:30"). Pure data, shared by the
payloads that carry it (progress reports) and the gateway (recommendation requests)."""

from __future__ import annotations

import functools
import re
import zoneinfo
from datetime import timedelta, timezone, tzinfo
from typing import Annotated

from pydantic import AfterValidator, Field

# What a zone name or an offset can look like; whether the name is a known zone is checked
# against the time-zone database (tzdata), which a pattern cannot state.
_ZONE_OFFSET = r"[+-](?:0[0-9]|1[0-4]):[0-5][0-9]"
_ZONE_NAME = r"[A-Za-z][A-Za-z0-9_+-]{0,30}(?:/[A-Za-z0-9_+-]{1,30}){0,2}"
TIME_ZONE_PATTERN = f"^(?:{_ZONE_OFFSET}|{_ZONE_NAME})$"
_OFFSET = re.compile(r"^([+-])(\d{2}):(\d{2})$")
UNKNOWN_ZONE = "unknown time zone"
# How the HTTP contract names the rule the pattern cannot state (docs/HTTP_CONTRACT.md).
UNKNOWN_ZONE_RULE = "a `time_zone` the time-zone database does not know (" + UNKNOWN_ZONE + ")"


def zone_of(name: str) -> tzinfo:
    """The tzinfo a zone name or offset names; ValueError (saying `UNKNOWN_ZONE`) otherwise."""
    offset = _OFFSET.match(name)
    if offset:
        sign = -1 if offset.group(1) == "-" else 1
        delta = timedelta(hours=int(offset.group(2)), minutes=int(offset.group(3)))
        if delta > timedelta(hours=14):
            raise ValueError(f"{UNKNOWN_ZONE} {name!r}: offsets lie within -14:00..+14:00")
        return timezone(sign * delta)
    # Only names the database lists: ZoneInfo itself would also try "America", a directory.
    if name not in _known_names():
        raise ValueError(
            f"{UNKNOWN_ZONE} {name!r}: an IANA zone name (Europe/Paris) or an offset (+01:00)"
        )
    return zoneinfo.ZoneInfo(name)


@functools.cache
def _known_names() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def _known(name: str) -> str:
    zone_of(name)
    return name


TimeZoneName = Annotated[
    str, Field(min_length=1, max_length=64, pattern=TIME_ZONE_PATTERN), AfterValidator(_known)
]
