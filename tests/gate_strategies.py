"""Hypothesis strategies for what producers send: catalog items and canonical records built from
the schemas' fields, mixing plausible values with the extremes a feed or an attacker can send
(NUL and other control characters, huge and negative integers, 1e400, NaN, far dates and
offsets, long texts and lists, wrong types, unknown fields)."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

from hypothesis import strategies as st

# Text: usually ordinary, sometimes hostile. st.text() never makes lone surrogates (JSON
# parsers refuse them anyway), so one is added explicitly.
_HOSTILE_TEXT = st.sampled_from(
    ["", " ", "\x00", "a\x00b", "\ud800", "\u200b", "\t\n", "\u0000title", "x" * 600, "é" * 300]
)
TEXT = st.one_of(
    st.text(max_size=40),
    st.text(alphabet=st.characters(min_codepoint=0, max_codepoint=0x2FF), max_size=20),
    _HOSTILE_TEXT,
)
HUGE_INTS = st.sampled_from(
    [-1, 0, 1, 2**31 - 1, 2**31, 2**63, 2**64, 123456789012345678901234567890, -(2**63)]
)
FLOATS = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([1e400, -1e400, float("nan"), 1e308, 5e-324, 10.0, 10.0000001, -0.0]),
)
NUMBERS = st.one_of(st.integers(-(10**6), 10**6), HUGE_INTS, FLOATS)
ANYTHING = st.one_of(
    st.none(), st.booleans(), NUMBERS, TEXT, st.just([]), st.just({}), st.just([1, "a", None])
)


def _offset() -> st.SearchStrategy[timezone | None]:
    return st.one_of(
        st.none(),
        st.just(UTC),
        st.integers(-23 * 60 - 59, 23 * 60 + 59).map(lambda m: timezone(timedelta(minutes=m))),
    )


DATETIMES = st.one_of(
    st.datetimes(
        min_value=datetime(1990, 1, 1), max_value=datetime(2030, 1, 1), timezones=_offset()
    ).map(lambda d: d.isoformat()),
    st.datetimes(timezones=_offset()).map(lambda d: d.isoformat()),
    st.sampled_from(
        [
            "9999-12-31T23:00:00-05:00",
            "0001-01-01T00:00:00+01:00",
            "9999-12-31T23:59:59.999999Z",
            "2025-02-30T00:00:00Z",
            "yesterday",
            "",
        ]
    ),
)
DATES = st.one_of(
    st.dates().map(date.isoformat),
    st.sampled_from(["0001-01-01", "9999-12-31", "1799-12-31", "2100-12-31", "2025-13-01"]),
)
YEARS = st.one_of(
    st.integers(1790, 2110),
    HUGE_INTS,
    FLOATS,
    st.sampled_from(["1999", " 1999 ", "2011-2019", "2011-", "nineteen", "", "1e3"]),
)
RUNTIMES = st.one_of(
    NUMBERS,
    st.sampled_from(["112", "1h 52m", "1:52", "PT1H52M", "112 min", "99999 min", "-5", "PT", ""]),
)
GENRES = st.one_of(
    st.lists(
        st.one_of(
            st.sampled_from(["Drama", "Sci-Fi & Fantasy", "Thriler", "Kids", "Open", "comedy"]),
            TEXT,
        ),
        max_size=6,
    ),
    st.just(["drama"] * 60),
    st.sampled_from(["Drama, Comedy", "", None]),
)
CONTENT_TYPES = st.one_of(
    st.sampled_from(["movie", "Film", "TV Series", "documentary", "short", "podcast", ""]), TEXT
)
PLATFORMS = st.sampled_from(["netflix", "Prime Video", "hulu", "Disney+", "", "a" * 65, "ne\x00t"])


@st.composite
def offers(draw: st.DrawFn) -> dict[str, Any]:
    offer: dict[str, Any] = {
        "availability_type": draw(
            st.one_of(st.sampled_from(["subscription", "rent", "buy", "free", "svod"]), TEXT)
        )
    }
    for name, values in (
        ("price_cents", st.one_of(HUGE_INTS, st.integers(0, 10_000_000))),
        ("price", st.one_of(st.sampled_from(["3.99", "Infinity", "NaN", "1e400", "-1"]), FLOATS)),
        ("currency", st.sampled_from(["USD", "usd", "US", "", "EU\x00"])),
        ("regions", st.one_of(st.lists(st.sampled_from(["US", "gb", "uk", "ZZZ", "ß"])), TEXT)),
        ("video_qualities", st.lists(st.one_of(st.sampled_from(["4K", "1080p", "IMAX"]), TEXT))),
        ("audio_qualities", st.lists(TEXT, max_size=3)),
        ("subtitle_languages", st.lists(TEXT, max_size=3)),
        ("available_from", DATETIMES),
        ("available_until", DATETIMES),
        ("deep_link", st.one_of(st.just("netflix://title/1"), TEXT)),
        ("web_url", st.one_of(st.just("https://x.example/watch/1"), TEXT)),
    ):
        if draw(st.booleans()):
            offer[name] = draw(values)
    return offer


@st.composite
def catalog_items(draw: st.DrawFn) -> dict[str, Any]:
    """A raw catalog item: the required fields usually present and plausible, every field
    sometimes extreme, sometimes of a wrong type."""
    item: dict[str, Any] = {
        "platform": draw(PLATFORMS),
        "platform_item_id": draw(st.one_of(st.uuids().map(str), HUGE_INTS, TEXT)),
        "title": draw(
            st.one_of(
                st.sampled_from(["King Kong (1933)", "Matrix, The", "Heat", "(1999)", ", The"]),
                TEXT,
            )
        ),
        "content_type": draw(CONTENT_TYPES),
        "source_updated_at": draw(DATETIMES),
    }
    optional: dict[str, st.SearchStrategy[Any]] = {
        "year": YEARS,
        "release_date": DATES,
        "runtime": RUNTIMES,
        "genres": GENRES,
        "description": st.one_of(TEXT, st.just("word " * 4500)),
        "rating": st.one_of(FLOATS, st.sampled_from(["7.5", "", "n/a"])),
        "rating_count": st.one_of(HUGE_INTS, st.sampled_from(["", "12", None])),
        "popularity": NUMBERS,
        "maturity_rating": st.one_of(st.sampled_from(["PG-13", "Open", "16+", "NR"]), TEXT),
        "original_language": st.one_of(st.sampled_from(["en", "EN_us", "x" * 20]), TEXT),
        "original_title": TEXT,
        "season_count": NUMBERS,
        "episode_count": NUMBERS,
        "external_ids": st.fixed_dictionaries(
            {},
            optional={
                "eidr": st.sampled_from(["10.5240/7791-8534-2C23-9030-8610-5", "10.5240/x", ""]),
                "imdb": st.one_of(st.sampled_from(["tt0133093", "133093", "nm1"]), HUGE_INTS),
                "tmdb": st.one_of(HUGE_INTS, st.sampled_from(["603", "6o3", "9" * 40])),
                "tvdb": st.one_of(HUGE_INTS, TEXT),
                "gracenote": TEXT,
            },
        ),
        "availability": st.lists(offers(), max_size=3),
        "keywords": st.one_of(st.lists(TEXT, max_size=4), st.just(["k"] * 150)),
        "credits": st.lists(
            st.one_of(
                TEXT,
                st.fixed_dictionaries({"name": TEXT}, optional={"role": TEXT, "character": TEXT}),
            ),
            max_size=3,
        ),
        "images": st.fixed_dictionaries({}, optional={"poster": TEXT, "backdrop": TEXT}),
        "trailer_url": TEXT,  # unknown to the schema
    }
    for name, values in optional.items():
        if draw(st.integers(0, 2)) == 0:
            item[name] = draw(values)
    if draw(st.integers(0, 15)) == 0:
        # A required field missing, or replaced by anything at all.
        field = draw(st.sampled_from(sorted(item)))
        if draw(st.booleans()):
            del item[field]
        else:
            item[field] = draw(ANYTHING)
    return item


@st.composite
def canonical_records(draw: st.DrawFn) -> dict[str, Any]:
    """A canonical record as POST /api/v1/content takes it."""
    record: dict[str, Any] = {
        "canonical_id": str(draw(st.uuids())),
        "content_type": draw(st.sampled_from(["movie", "series", "episode", "documentary"])),
        "title": draw(st.one_of(st.just("Heat"), TEXT)),
        "genres": draw(st.one_of(st.just(["drama"]), st.lists(TEXT, max_size=3))),
        "updated_at": draw(DATETIMES),
    }
    optional: dict[str, st.SearchStrategy[Any]] = {
        "release_year": st.one_of(st.integers(1790, 2110), HUGE_INTS),
        "release_date": DATES,
        "runtime_minutes": NUMBERS,
        "description": TEXT,
        "original_title": TEXT,
        "alternate_titles": st.lists(TEXT, max_size=3),
        "average_rating": FLOATS,
        "rating_count": HUGE_INTS,
        "popularity_score": FLOATS,
        "data_quality_score": FLOATS,
        "keywords": st.lists(TEXT, max_size=3),
        "credits": st.lists(st.fixed_dictionaries({"name": TEXT, "role": TEXT}), max_size=2),
        "series": st.fixed_dictionaries({}, optional={"season_count": NUMBERS}),
        "external_ids": st.fixed_dictionaries(
            {},
            optional={
                "eidr": TEXT,
                "tmdb": TEXT,
                "platform_ids": st.dictionaries(TEXT, TEXT, max_size=2),
            },
        ),
        "images": st.fixed_dictionaries({}, optional={"poster": TEXT}),
        "source_platforms": st.lists(st.sampled_from(["netflix", "Bad Name", ""]), max_size=2),
        "availability": st.lists(
            offers().map(lambda o: {"platform": "netflix", **o, "price": None}), max_size=2
        ),
    }
    for name, values in optional.items():
        if draw(st.integers(0, 2)) == 0:
            record[name] = draw(values)
    if "availability" in record:
        for offer in record["availability"]:
            offer.pop("price", None)
    return record


def new_id() -> str:
    return uuid.uuid4().hex[:10]
