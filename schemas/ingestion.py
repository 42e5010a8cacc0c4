"""What platforms send: one raw catalog item per record on the `content.raw` topic.

Upstream feeds are messy, so this model accepts the common variants (numeric strings, "1h 52m",
"TV Series", lower-case regions, blank strings for "unknown") and turns them into clean types.
What it cannot read it rejects, and pydantic's error names the field and the reason. Anything
that validates here must normalize without error (agents/ingestion/normalize.py): validation is
the single gate between a feed and the pipeline.

Unknown extra fields are ignored, not rejected: platforms add fields to their feeds all the time,
and one new field must not send a whole catalog to the dead-letter topic. The catalog producer
names them in each item's warnings (agreements/catalog_producer.py).

Every bound a later stage enforces is enforced here (schemas/storable.py): storable text, counts
that fit 32 bits, finite numbers, times that convert to UTC, list and text lengths.
"""

from __future__ import annotations

import math
import re
import unicodedata
import uuid
from collections.abc import Mapping
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from enum import Enum
from typing import Annotated, Any, ClassVar, TypeVar

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from schemas.content import AvailabilityType, ContentType, checked_regions, region_code
from schemas.envelope import Payload
from schemas.storable import INT32_MAX, POPULARITY_MAX, Instant, Text

# Per listing; a canonical record merged from several listings may hold more (schemas/content.py).
MAX_LIST_GENRES = 50
MAX_LIST_KEYWORDS = 100
MAX_LIST_CREDITS = 200
MAX_LIST_OFFERS = 50
MAX_LIST_REGIONS = 300
MAX_LIST_QUALITIES = 32
MAX_LIST_LANGUAGES = 300
MAX_COUNT = 100_000  # seasons, episodes

E = TypeVar("E", bound=Enum)

_BLANKS = frozenset({"", "n/a", "na", "none", "null", "nil", "-", "unknown"})

CONTENT_TYPE_ALIASES: dict[str, ContentType] = {
    **{
        k: ContentType.movie
        for k in (
            "movie",
            "movies",
            "film",
            "films",
            "feature",
            "feature film",
            "motion picture",
            "tv movie",
            "made for tv movie",
        )
    },
    **{
        k: ContentType.series
        for k in (
            "series",
            "tv",
            "show",
            "tv show",
            "tv series",
            "tvseries",
            "tv shows",
            "miniseries",
            "mini series",
            "limited series",
            "season",
            "serie",
        )
    },
    **{k: ContentType.episode for k in ("episode", "tv episode", "ep")},
    **{k: ContentType.short for k in ("short", "short film", "shorts")},
    **{k: ContentType.documentary for k in ("documentary", "doc", "docu", "documentary film")},
    **{k: ContentType.special for k in ("special", "tv special", "stand up special", "concert")},
}

AVAILABILITY_TYPE_ALIASES: dict[str, AvailabilityType] = {
    **{
        k: AvailabilityType.subscription
        for k in (
            "subscription",
            "sub",
            "svod",
            "flatrate",
            "included",
            "stream",
            "streaming",
        )
    },
    **{k: AvailabilityType.rental for k in ("rental", "rent", "tvod")},
    **{k: AvailabilityType.purchase for k in ("purchase", "buy", "est", "own")},
    **{k: AvailabilityType.free for k in ("free", "avod", "ads", "free with ads", "fast")},
}

PLATFORM_ALIASES: dict[str, str] = {
    "prime": "prime_video",
    "amazon": "prime_video",
    "amazon_prime": "prime_video",
    "amazon_prime_video": "prime_video",
    "primevideo": "prime_video",
    "hbo": "hbo_max",
    "max": "hbo_max",
    "hbomax": "hbo_max",
    "disney": "disney_plus",
    "disneyplus": "disney_plus",
    "apple_tv": "apple_tv_plus",
    "appletv": "apple_tv_plus",
    "appletv_plus": "apple_tv_plus",
    "apple": "apple_tv_plus",
}

_EIDR = re.compile(r"^10\.5240/(?:[0-9A-F]{4}-){5}[0-9A-Z]$")
_IMDB_IN_TEXT = re.compile(r"(?:^|[^0-9a-z])(tt\d{5,10})(?:$|[^0-9])|^(\d{5,10})$")
_NUMBER_TEXT = re.compile(r"^[sSeE]?0*(\d{1,6})$")
_YEAR_TEXT = re.compile(r"^(\d{4})(?:\s*[-\u2013\u2014]\s*(?:\d{4})?)?$")
_CLOCK = re.compile(r"^(\d+):([0-5]\d)(?::([0-5]\d))?$")
_ISO_DURATION = re.compile(r"^pt(?=\d)(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")
_HUMAN_DURATION = re.compile(
    r"^(?:(\d+)\s*(?:h|hr|hrs|hour|hours)\.?)?\s*,?\s*(?:(\d+)\s*(?:m|min|mins|minute|minutes)?\.?)?$"
)


def _is_blank(value: object) -> bool:
    return value is None or (isinstance(value, str) and value.strip().casefold() in _BLANKS)


def _key(text: str) -> str:
    return " ".join(re.sub(r"[_\-/]+", " ", text.casefold()).split())


def normalize_platform(value: str) -> str:
    """'Prime Video' / 'prime-video' / 'Disney+' / 'prime' -> 'prime_video' / 'disney_plus'.

    The one alias rule: items, availability updates, the ingest URL and the item lookup all
    name platforms through it."""
    text = unicodedata.normalize("NFKD", value.strip().casefold()).replace("+", " plus")
    slug = "_".join(re.findall(r"[a-z0-9]+", text))
    return PLATFORM_ALIASES.get(slug, slug)


def _parse_alias(
    value: object, aliases: Mapping[str, E], kind: type[E], example: str, hint: str
) -> E:
    if isinstance(value, kind):
        return value
    if not isinstance(value, str):
        raise ValueError(f"must be a string such as {example}")
    found = aliases.get(_key(value))
    if found is None:
        raise ValueError(f"unknown {hint.format(value=value)}")
    return found


_CONTENT_TYPE_HINT = (
    "content type {value!r}; expected one of "
    + ", ".join(t.value for t in ContentType)
    + " (or a synonym such as 'film', 'TV Series')"
)


def parse_content_type(value: object) -> ContentType:
    return _parse_alias(
        value, CONTENT_TYPE_ALIASES, ContentType, "'movie' or 'series'", _CONTENT_TYPE_HINT
    )


def parse_availability_type(value: object) -> AvailabilityType:
    return _parse_alias(
        value,
        AVAILABILITY_TYPE_ALIASES,
        AvailabilityType,
        "'subscription' or 'rental'",
        "availability type {value!r}; expected subscription, rental, purchase or free",
    )


def parse_year(value: object) -> int | None:
    """1999, "1999", " 1999 ", 1999.0 and series ranges "2011-2019" / "2011-" (first year)."""
    if _is_blank(value):
        return None
    if isinstance(value, bool):
        raise ValueError("a year is a number, not a boolean")
    if isinstance(value, float):
        if not value.is_integer():
            raise ValueError(f"{value!r} is not a whole year")
        return int(value)
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        match = _YEAR_TEXT.match(value.strip())
        if match:
            return int(match.group(1))
    raise ValueError(f"cannot read a year from {value!r}")


def parse_runtime(value: object) -> int | None:
    """Minutes from 112, 112.0, "112", "112 min", "1h 52m", "1:52", "PT1H52M"; 0 means unknown."""
    if _is_blank(value):
        return None
    if isinstance(value, bool):
        raise ValueError("a runtime is a number of minutes, not a boolean")
    if isinstance(value, int | float):
        # Infinity (JSON's 1e400) would overflow round(); NaN compares false with everything.
        if (isinstance(value, float) and not math.isfinite(value)) or value < 0:
            raise ValueError(f"runtime {value!r} must be a finite, non-negative number of minutes")
        if value > 10000:
            raise ValueError(f"runtime {value!r} minutes is implausibly long")
        minutes = round(value)
    elif isinstance(value, str):
        minutes = _parse_runtime_text(value.strip().casefold())
    else:
        raise ValueError(f"cannot read a runtime from {type(value).__name__}")
    if minutes > 10000:
        raise ValueError(f"runtime {minutes} minutes is implausibly long")
    # Feeds send 0 for "not known"; a canonical runtime of 0 would score as known.
    return minutes or None


def _parse_runtime_text(text: str) -> int:
    # "1:52" is h:mm (a feed meaning mm:ss would be describing a short under two hours anyway).
    for pattern in (_CLOCK, _ISO_DURATION):
        match = pattern.match(text.replace(" ", ""))
        if match:
            hours, mins, secs = (int(g) if g else 0 for g in match.groups())
            return hours * 60 + mins + round(secs / 60)
    match = _HUMAN_DURATION.match(text)
    if match and (match.group(1) or match.group(2)):
        return int(match.group(1) or 0) * 60 + int(match.group(2) or 0)
    raise ValueError(
        f"cannot read runtime {text!r}: expected minutes (112) or a duration such as "
        "'1h 52m', '112 min', '1:52' or 'PT1H52M'"
    )


def parse_imdb(value: object) -> str | None:
    """'tt0133093', '0133093', 133093, 'https://www.imdb.com/title/tt0133093/' -> 'tt0133093'."""
    if _is_blank(value):
        return None
    text = str(value).strip().casefold()
    match = _IMDB_IN_TEXT.search(text)
    if not match:
        raise ValueError(f"{value!r} is not an IMDb title id (tt followed by 5-10 digits)")
    if match.group(1):
        return match.group(1)
    return "tt" + match.group(2).zfill(7)


def parse_eidr(value: object) -> str | None:
    """EIDR content ids, with or without a 'doi:' prefix or resolver URL, any case."""
    if _is_blank(value):
        return None
    text = str(value).strip().upper()
    for prefix in ("HTTPS://DOI.ORG/", "HTTP://DX.DOI.ORG/", "DOI:"):
        if text.startswith(prefix):
            text = text[len(prefix) :]
    # A wrong EIDR would merge two titles with full confidence: reject rather than guess.
    if not _EIDR.match(text):
        raise ValueError(f"{value!r} is not an EIDR id (10.5240/XXXX-XXXX-XXXX-XXXX-XXXX-C)")
    return text


def parse_numeric_id(value: object, name: str) -> str | None:
    if _is_blank(value):
        return None
    if isinstance(value, bool):
        raise ValueError(f"{name} id must be digits")
    text = str(value).strip()
    if isinstance(value, float) and value.is_integer():
        text = str(int(value))
    if not text.isdigit() or not text.isascii() or len(text) > 32:
        raise ValueError(f"{value!r} is not a {name} id (digits only)")
    return text.lstrip("0") or "0"


def visible(text: str) -> bool:
    """Whether a text shows anything: a character that is neither whitespace nor a format
    character (Unicode category Cf: zero-width spaces and joiners, direction marks, BOM)."""
    return any(not c.isspace() and unicodedata.category(c) != "Cf" for c in text)


def _as_utc(value: datetime) -> datetime:
    # Feeds that omit the offset almost always mean UTC; mixing naive and aware datetimes would
    # make every later comparison raise.
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


def _string_list(value: object, *, split: str = ",|;") -> object:
    """None -> [], "a, b" -> ["a", "b"], blanks dropped, duplicates (any case) dropped."""
    if value is None:
        return []
    if isinstance(value, str):
        value = re.split(f"[{re.escape(split)}]", value)
    if not isinstance(value, list | tuple):
        return value
    out: list[object] = []
    seen: set[str] = set()
    for item in value:
        if isinstance(item, str):
            item = " ".join(item.split())
            if not item or item.casefold() in seen:
                continue
            seen.add(item.casefold())
        out.append(item)
    return out


class _Raw(BaseModel):
    model_config = ConfigDict(
        extra="ignore", frozen=True, str_strip_whitespace=True, allow_inf_nan=False
    )


class RawExternalIds(_Raw):
    eidr: Text | None = None
    imdb: Text | None = None
    tmdb: Text | None = None
    tvdb: Text | None = None
    gracenote: Text | None = Field(default=None, max_length=64)

    @field_validator("eidr", mode="before")
    @classmethod
    def _eidr(cls, value: object) -> str | None:
        return parse_eidr(value)

    @field_validator("imdb", mode="before")
    @classmethod
    def _imdb(cls, value: object) -> str | None:
        return parse_imdb(value)

    @field_validator("tmdb", "tvdb", mode="before")
    @classmethod
    def _numeric(cls, value: object, info: ValidationInfo) -> str | None:
        return parse_numeric_id(value, info.field_name)

    @field_validator("gracenote", mode="before")
    @classmethod
    def _gracenote(cls, value: object) -> object:
        return None if _is_blank(value) else str(value).strip()


class RawAvailability(_Raw):
    availability_type: AvailabilityType
    # Minor units. A feed may send `price` in major units ("3.99") instead; see _price below.
    price_cents: int | None = Field(default=None, ge=0, le=10_000_000)
    currency: Text | None = Field(default=None, pattern=r"^[A-Z]{3}$")
    regions: list[Text] = Field(default_factory=list, max_length=MAX_LIST_REGIONS)
    # Free text ("4K", "1080p", "Dolby Vision"); normalize maps what it knows to VideoQuality.
    video_qualities: list[Annotated[Text, Field(max_length=64)]] = Field(
        default_factory=list, max_length=MAX_LIST_QUALITIES
    )
    audio_qualities: list[Annotated[Text, Field(max_length=64)]] = Field(
        default_factory=list, max_length=MAX_LIST_QUALITIES
    )
    subtitle_languages: list[Annotated[Text, Field(max_length=35)]] = Field(
        default_factory=list, max_length=MAX_LIST_LANGUAGES
    )
    available_from: Instant | None = None
    available_until: Instant | None = None
    deep_link: Text | None = Field(
        default=None, max_length=2000, pattern=r"^[A-Za-z][\w+.-]*://\S+$"
    )
    web_url: Text | None = Field(default=None, max_length=2000, pattern=r"^https?://\S+$")

    @model_validator(mode="before")
    @classmethod
    def _price(cls, data: Any) -> Any:
        if not isinstance(data, dict) or "price" not in data:
            return data
        data = dict(data)
        price = data.pop("price")
        if _is_blank(price):
            return data
        try:
            cents = int((Decimal(str(price).strip()) * 100).to_integral_value())
        except (InvalidOperation, ValueError, OverflowError) as exc:
            # OverflowError: "Infinity" is a Decimal, but no number of cents.
            raise ValueError(f"price {price!r} is not a decimal amount") from exc
        given = data.get("price_cents")
        if given is not None and given != cents:
            raise ValueError(f"price {price} and price_cents {given} disagree")
        data["price_cents"] = cents
        return data

    @field_validator("availability_type", mode="before")
    @classmethod
    def _type(cls, value: object) -> AvailabilityType:
        return parse_availability_type(value)

    @field_validator("currency", mode="before")
    @classmethod
    def _currency(cls, value: object) -> object:
        if _is_blank(value):
            return None
        return value.strip().upper() if isinstance(value, str) else value

    @field_validator("deep_link", "web_url", mode="before")
    @classmethod
    def _blank_url(cls, value: object) -> object:
        return None if _is_blank(value) else value

    @field_validator("regions", mode="before")
    @classmethod
    def _regions(cls, value: object) -> object:
        value = _string_list(value, split=",;| ")
        if not isinstance(value, list):
            return value
        return [region_code(r) if isinstance(r, str) else r for r in value]

    @field_validator("regions")
    @classmethod
    def _check_regions(cls, value: list[str]) -> list[str]:
        return checked_regions(value)

    @field_validator("video_qualities", "audio_qualities", "subtitle_languages", mode="before")
    @classmethod
    def _lists(cls, value: object) -> object:
        return _string_list(value)

    @field_validator("available_from", "available_until", mode="before")
    @classmethod
    def _blank_time(cls, value: object) -> object:
        return None if _is_blank(value) else value

    @field_validator("available_from", "available_until")
    @classmethod
    def _utc(cls, value: datetime | None) -> datetime | None:
        return None if value is None else _as_utc(value)

    @model_validator(mode="after")
    def _check(self) -> RawAvailability:
        paid = self.availability_type in (AvailabilityType.rental, AvailabilityType.purchase)
        if paid and (self.price_cents is None or self.currency is None):
            raise ValueError(f"a {self.availability_type} offer needs price_cents and currency")
        if (
            self.available_from is not None
            and self.available_until is not None
            and self.available_until < self.available_from
        ):
            raise ValueError("available_until is before available_from")
        return self


class RawCredit(_Raw):
    name: Text = Field(min_length=1, max_length=300)
    role: Text = Field(default="cast", min_length=1, max_length=64)
    character: Text | None = Field(default=None, max_length=300)

    @field_validator("role", mode="before")
    @classmethod
    def _role(cls, value: object) -> object:
        if _is_blank(value):
            return "cast"
        return value.strip().casefold() if isinstance(value, str) else value

    @field_validator("character", mode="before")
    @classmethod
    def _character(cls, value: object) -> object:
        return None if _is_blank(value) else value


class RawImages(_Raw):
    poster: Text | None = Field(default=None, max_length=2000)
    backdrop: Text | None = Field(default=None, max_length=2000)
    thumbnail: Text | None = Field(default=None, max_length=2000)

    @field_validator("poster", "backdrop", "thumbnail", mode="before")
    @classmethod
    def _blank(cls, value: object) -> object:
        return None if _is_blank(value) else value


class RawCatalogItem(_Raw):
    """One title as one platform describes it, at one point of the platform's own clock."""

    platform: Text = Field(min_length=1, max_length=64, pattern=r"^[a-z0-9_]+$")
    platform_item_id: Text = Field(min_length=1, max_length=200)
    title: Text = Field(min_length=1, max_length=500)
    original_title: Text | None = Field(default=None, max_length=500)
    content_type: ContentType
    year: int | None = Field(default=None, ge=1800, le=2100)
    release_date: date | None = Field(default=None, ge=date(1800, 1, 1), le=date(2100, 12, 31))
    runtime: int | None = Field(default=None, ge=1, le=10000)
    genres: list[Annotated[Text, Field(max_length=100)]] = Field(
        default_factory=list, max_length=MAX_LIST_GENRES
    )
    # Long texts are accepted and cut to the canonical 5000 characters during normalization.
    description: Text | None = Field(default=None, max_length=20000)
    rating: float | None = Field(default=None, ge=0, le=10)
    rating_count: int = Field(default=0, ge=0, le=INT32_MAX)
    popularity: float = Field(default=0.0, ge=0, le=POPULARITY_MAX)
    maturity_rating: Text | None = Field(default=None, max_length=32)
    original_language: Text | None = Field(default=None, max_length=16)
    season_count: int | None = Field(default=None, ge=0, le=MAX_COUNT)
    episode_count: int | None = Field(default=None, ge=0, le=MAX_COUNT)
    external_ids: RawExternalIds = Field(default_factory=RawExternalIds)
    # Television (docs/INGESTION.md, "Series"): an episode, or a season listing (content type
    # series or "season" with a season_number), names its series by these; the episode's own
    # ids stay in external_ids.
    series_title: Text | None = Field(default=None, max_length=500)
    series_ids: RawExternalIds = Field(
        default_factory=RawExternalIds,
        description="the series' own ids (EIDR, IMDb tt of the series, TMDb tv id, TVDB)",
    )
    parent_id: Text | None = Field(
        default=None,
        max_length=200,
        description="this platform's own item id of the series (or season) the item belongs to",
    )
    season_number: int | None = Field(default=None, ge=0, le=MAX_COUNT, description="0: specials")
    episode_number: int | None = Field(default=None, ge=0, le=MAX_COUNT)
    absolute_number: int | None = Field(
        default=None, ge=1, le=MAX_COUNT, description="the episode's number across all seasons"
    )
    # Left out (or null): the item says nothing of its offers, and the platform's offers of the
    # title stay as they are (a metadata-only update). `[]`: the title left the platform.
    availability: list[RawAvailability] | None = Field(
        default=None,
        max_length=MAX_LIST_OFFERS,
        description="this platform's offers of the title, replacing those held; [] means it "
        "left the platform; absent or null leaves the offers unchanged",
    )
    keywords: list[Annotated[Text, Field(max_length=200)]] = Field(
        default_factory=list, max_length=MAX_LIST_KEYWORDS
    )
    credits: list[RawCredit] = Field(default_factory=list, max_length=MAX_LIST_CREDITS)
    images: RawImages = Field(default_factory=RawImages)
    # The platform's own version clock for this item: newer wins, whatever arrives first.
    source_updated_at: Instant

    @model_validator(mode="before")
    @classmethod
    def _aliases(cls, data: Any) -> Any:
        # "overview" is TMDb's name for the description; accept it rather than lose the text.
        if isinstance(data, dict) and "description" not in data and "overview" in data:
            data = {**data, "description": data["overview"]}
        if isinstance(data, dict):
            data = _series_aliases(data)
        return data

    @field_validator("platform", mode="before")
    @classmethod
    def _platform(cls, value: object) -> object:
        return normalize_platform(value) if isinstance(value, str) else value

    @field_validator("platform_item_id", mode="before")
    @classmethod
    def _item_id(cls, value: object) -> object:
        if isinstance(value, int) and not isinstance(value, bool):
            return str(value)
        return value

    @field_validator("title", "original_title", "series_title", mode="before")
    @classmethod
    def _title(cls, value: object, info: ValidationInfo) -> object:
        if not isinstance(value, str):
            return value
        collapsed = " ".join(value.split())
        if collapsed and not visible(collapsed):
            # Zero-width and other format characters are not whitespace to str.split(), so a
            # title of only U+200B passed as a title and was stored as one nobody can see.
            if info.field_name != "title":
                return None
            raise ValueError(
                "the title has no visible character (only "
                + ", ".join(sorted({f"U+{ord(c):04X}" for c in collapsed if c != " "}))
                + ")"
            )
        return collapsed

    @field_validator("season_number", "episode_number", "absolute_number", mode="before")
    @classmethod
    def _blank_number(cls, value: object) -> object:
        # Feeds send "", "N/A" or "02" for numbers; "02" is read as 2 by pydantic's lax mode.
        if _is_blank(value):
            return None
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, str) and (number := _NUMBER_TEXT.match(value.strip())):
            return int(number.group(1))  # "S02", "e5", "02"
        return value.strip() if isinstance(value, str) else value

    @field_validator("parent_id", mode="before")
    @classmethod
    def _parent_id(cls, value: object) -> object:
        if _is_blank(value):
            return None
        if isinstance(value, int) and not isinstance(value, bool):
            return str(value)
        return value

    @field_validator("original_title", "description", "maturity_rating", mode="before")
    @classmethod
    def _blank_text(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("content_type", mode="before")
    @classmethod
    def _content_type(cls, value: object) -> ContentType:
        return parse_content_type(value)

    @field_validator("year", mode="before")
    @classmethod
    def _year(cls, value: object) -> int | None:
        return parse_year(value)

    @field_validator("release_date", mode="before")
    @classmethod
    def _release_date(cls, value: object) -> object:
        if _is_blank(value):
            return None
        if isinstance(value, datetime):
            return value.date()
        if isinstance(value, str) and "T" in value:
            return value.split("T", 1)[0]
        return value

    @field_validator("runtime", mode="before")
    @classmethod
    def _runtime(cls, value: object) -> int | None:
        return parse_runtime(value)

    @field_validator("rating", mode="before")
    @classmethod
    def _rating(cls, value: object) -> object:
        # Only the 0-10 scale: a 0-5 or 0-100 value cannot be told apart from a 0-10 one
        # reliably (is 4 "4/5" or "4/10"?), so the producer must convert it.
        return None if _is_blank(value) else value

    @field_validator("rating_count", "popularity", mode="before")
    @classmethod
    def _zero_default(cls, value: object) -> object:
        return 0 if _is_blank(value) else value

    @field_validator("original_language", mode="before")
    @classmethod
    def _language(cls, value: object) -> object:
        if _is_blank(value):
            return None
        return value.strip().replace("_", "-").lower() if isinstance(value, str) else value

    @field_validator("genres", "keywords", mode="before")
    @classmethod
    def _lists(cls, value: object) -> object:
        return _string_list(value)

    @field_validator("external_ids", "series_ids", "images", mode="before")
    @classmethod
    def _none_object(cls, value: object) -> object:
        return {} if value is None else value

    @field_validator("credits", mode="before")
    @classmethod
    def _credits(cls, value: object) -> object:
        if value is None:
            return []
        if isinstance(value, list):
            # Bare names are a common shorthand for a cast list.
            return [{"name": v} if isinstance(v, str) else v for v in value]
        return value

    @field_validator("source_updated_at")
    @classmethod
    def _utc(cls, value: datetime) -> datetime:
        return _as_utc(value)

    @property
    def record_key(self) -> str:
        """The Kafka key on `content.raw`: all versions of one platform item share a partition."""
        return f"{self.platform}:{self.platform_item_id}"


# The spellings feeds use for the series fields (flat ids, TMDb's and Netflix's names).
SERIES_FIELD_ALIASES = {
    "series_name": "series_title",
    "show_title": "series_title",
    "show_name": "series_title",
    "season": "season_number",
    "season_no": "season_number",
    "episode": "episode_number",
    "episode_no": "episode_number",
    "absolute_episode_number": "absolute_number",
    "parent_item_id": "parent_id",
    "series_platform_id": "parent_id",
}
SERIES_ID_ALIASES = {
    "series_eidr": "eidr",
    "series_imdb": "imdb",
    "series_imdb_id": "imdb",
    "series_tmdb": "tmdb",
    "series_tmdb_id": "tmdb",
    "tmdb_tv_id": "tmdb",
    "series_tvdb": "tvdb",
}


def _series_aliases(data: dict[str, Any]) -> dict[str, Any]:
    """Other spellings of the series fields to ours; ours win when both are sent."""
    out = dict(data)
    for alias, name in SERIES_FIELD_ALIASES.items():
        if alias in out and name not in out:
            out[name] = out.pop(alias)
    flat = {name: out.pop(alias) for alias, name in SERIES_ID_ALIASES.items() if alias in out}
    if flat:
        held = out.get("series_ids")
        out["series_ids"] = {**flat, **(held if isinstance(held, dict) else {})}
    return out


class CatalogItemReceived(Payload):
    """One raw item of a platform's catalog batch, as received, before normalization."""

    event_type: ClassVar[str] = "content.raw"
    item: RawCatalogItem


class AvailabilityReceived(Payload):
    """A platform's full current availability of one item, without metadata.

    An empty `availability` list, or an entry with no regions, means the item is gone from the
    platform (or from those regions) as of `source_updated_at`.
    """

    event_type: ClassVar[str] = "content.availability.raw"
    platform: Text = Field(min_length=1, max_length=64, pattern=r"^[a-z0-9_]+$")
    platform_item_id: Text = Field(min_length=1, max_length=200)
    availability: list[RawAvailability] = Field(default_factory=list)
    source_updated_at: Instant

    @field_validator("platform", mode="before")
    @classmethod
    def _platform(cls, value: object) -> object:
        return normalize_platform(value) if isinstance(value, str) else value

    @field_validator("source_updated_at")
    @classmethod
    def _utc(cls, value: datetime) -> datetime:
        return _as_utc(value)

    @property
    def record_key(self) -> str:
        return f"{self.platform}:{self.platform_item_id}"


class ItemMappingRequested(Payload):
    """A producer asks which canonical title one of its items resolved to (the gateway's
    GET /api/v1/ingest/{platform}/items/{item_id}). The answer goes to the Redis pub/sub
    channel named in the request: an ItemMapping as JSON, or an empty message when the item is
    not stored (yet)."""

    event_type: ClassVar[str] = "content.item_lookup"
    platform: Text = Field(min_length=1, max_length=64, pattern=r"^[a-z0-9_]+$")
    platform_item_id: Text = Field(min_length=1, max_length=200)
    reply_channel: str = Field(min_length=1, max_length=300)


class MappingWarning(BaseModel):
    kind: str
    field: str
    message: str


class ItemMapping(BaseModel):
    """Where a platform item went: its canonical title, how it was matched, and what
    normalization dropped or changed of the version applied."""

    platform: str
    platform_item_id: str
    canonical_id: uuid.UUID
    method: str = Field(description="how the item was matched (external id, title, new, ...)")
    confidence: float
    source_updated_at: datetime = Field(description="the item version applied")
    warnings: list[MappingWarning] = Field(default_factory=list)
