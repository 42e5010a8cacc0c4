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

import re
from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, ValidationError, ValidationInfo

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


# Validation context of a request body (gateway/json_body.py): times are taken only in the
# forms its OpenAPI document names. Pydantic alone would also read "0.5" as a Unix time.
DOCUMENTED_FORMS = "documented_forms"
_DATE_TIME = re.compile(r"\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:[Zz]|[+-]\d{2}:\d{2})")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def is_date_time(text: str) -> bool:
    """RFC 3339 `date-time`, the offset included (JSON Schema's format)."""
    return _DATE_TIME.fullmatch(text) is not None


def _documented_form(pattern: re.Pattern[str], parse: Callable[[str], object], example: str) -> Any:
    def check(value: object, info: ValidationInfo) -> object:
        if not (isinstance(value, str) and info.context and info.context.get(DOCUMENTED_FORMS)):
            return value
        if pattern.fullmatch(value) is None:
            raise ValueError(f"write it as {example}")
        # Parsed here: past a function, a strict validation no longer takes the JSON string.
        return parse(value)

    return BeforeValidator(check)


def error_reason(error: Mapping[str, Any]) -> str:
    """The reason of one pydantic error as a producer is told it: pydantic's message, except a
    length bound on a text: on a `Text` (a str with a validator) pydantic applies the bound as
    to any sequence and says "at most N items after validation", which reads as a list."""
    text = error.get("input")
    bound = (error.get("ctx") or {}).get(
        "max_length" if error.get("type") == "too_long" else "min_length"
    )
    if error.get("type") in ("too_long", "too_short") and isinstance(text, str) and bound:
        most = "at most" if error["type"] == "too_long" else "at least"
        return f"String should have {most} {bound} characters, not {len(text)}"
    return str(error.get("msg", "invalid"))


def describe_validation_error(exc: ValidationError) -> str:
    """A record's first 20 problems on one line, `field: reason; ...`: the reason a dead letter
    carries in its headers and `mgw dlq` prints."""
    return "; ".join(
        f"{'.'.join(str(p) for p in err['loc']) or '(record)'}: {error_reason(err)}"
        for err in exc.errors()[:20]
    )


# Every string and time field of an entering payload is one of these: checked where it is
# parsed, so an error names the field (a check of the whole record afterwards could not).
Text = Annotated[str, AfterValidator(storable_text)]
Instant = Annotated[
    datetime,
    _documented_form(
        _DATE_TIME,
        datetime.fromisoformat,
        "an RFC 3339 date-time with its offset: 2026-12-01T20:00:00Z",
    ),
    AfterValidator(utc_convertible),
]
# A validator rather than a type: wrapping `date` would put its ge/le bounds into the JSON
# Schema as unknown keywords.
documented_date = _documented_form(_DATE, date.fromisoformat, "an ISO 8601 date: 2026-12-01").func
