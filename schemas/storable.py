"""What the stores behind the pipeline accept, as bounds the payload models check on entry.

Validation is the single gate: a record the gateway or a topic's decoder accepts must be
storable everywhere downstream, because a record refused later (by PostgreSQL, a JSON encoder,
a later model) has already been acknowledged and can only be dead-lettered or, worse, block a
sweep. The bounds that matter:
- text: PostgreSQL `text` and `jsonb` refuse U+0000, and UTF-8 cannot carry lone surrogates
  (U+D800-U+DFFF), which Python strings built from JSON escapes can hold;
- integers: PostgreSQL `integer` columns hold 32 bits, JSON readers 64; counts are held to 32;
- floats: finite only (JSON has no Infinity or NaN);
- times: convertible to UTC (9999-12-31T23:00-05:00 is not: it is past year 9999 in UTC).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from pydantic import AfterValidator

INT32_MAX = 2_147_483_647
# Platforms' popularity scales differ (TMDb's goes into the thousands); far above any of them.
POPULARITY_MAX = 1e9
_SURROGATES = range(0xD800, 0xE000)


def text_problem(value: str) -> str | None:
    """Why PostgreSQL would refuse this text, or None."""
    if "\x00" in value:
        return "contains U+0000 (NUL), which PostgreSQL text cannot store"
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as exc:
            code = ord(value[exc.start])
            if code in _SURROGATES:
                return f"contains a lone surrogate U+{code:04X}, which is not valid UTF-8"
            return f"is not encodable as UTF-8 at position {exc.start}"
    return None


def storable_text(value: str) -> str:
    # The common case in two C calls: this runs for every string of every entering record.
    if "\x00" not in value and value.isascii():
        return value
    problem = text_problem(value)
    if problem:
        raise ValueError(f"text {problem}")
    return value


def utc_convertible(value: datetime) -> datetime:
    """The value itself, after checking it can be expressed in UTC (naive means UTC)."""
    if value.tzinfo is not None:
        try:
            value.astimezone(UTC)
        except OverflowError:
            raise ValueError(f"{value.isoformat()} is out of range once converted to UTC") from None
    return value


# Every string and time field of an entering payload is one of these: checked where it is
# parsed, so an error names the field (a check of the whole record afterwards could not).
Text = Annotated[str, AfterValidator(storable_text)]
Instant = Annotated[datetime, AfterValidator(utc_convertible)]
