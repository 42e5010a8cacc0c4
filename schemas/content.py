"""Canonical content, its availability and external ids, and the content lifecycle events."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from enum import StrEnum
from typing import Annotated, ClassVar

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from schemas.envelope import Payload
from schemas.storable import INT32_MAX, POPULARITY_MAX, Instant, Text, documented_date

# Bounds of a canonical record (see schemas/storable.py for why every one is checked on entry).
# Lists a merge of several platforms' listings can grow (agents/ingestion/merge.py) are several
# times what one listing may carry (schemas/ingestion.py), and merge caps them here.
MAX_ALTERNATE_TITLES = 100
MAX_GENRES = 50
MAX_KEYWORDS = 500
MAX_CREDITS = 500
MAX_OFFERS = 1000
MAX_PLATFORMS = 200
MAX_REGIONS = 300
MAX_LANGUAGES = 300
MAX_QUALITIES = 32
MAX_COUNT = 100_000  # seasons, episodes
MAX_PRICE_CENTS = 10_000_000


class ContentType(StrEnum):
    movie = "movie"
    series = "series"
    episode = "episode"
    short = "short"
    documentary = "documentary"
    special = "special"


class MaturityRating(StrEnum):
    G = "G"
    PG = "PG"
    PG_13 = "PG-13"
    R = "R"
    NC_17 = "NC-17"
    TV_Y = "TV-Y"
    TV_Y7 = "TV-Y7"
    TV_G = "TV-G"
    TV_PG = "TV-PG"
    TV_14 = "TV-14"
    TV_MA = "TV-MA"


class AvailabilityType(StrEnum):
    subscription = "subscription"
    rental = "rental"
    purchase = "purchase"
    free = "free"


class VideoQuality(StrEnum):
    SD = "SD"
    HD = "HD"
    UHD = "UHD"
    HDR = "HDR"


# What a region code may be sent as: two ASCII letters, either case, blanks around trimmed
# (the gateway's OpenAPI document says so: gateway/json_body.py).
REGION_PATTERN = r"^\s*[A-Za-z]{2}\s*$"
# Codes feeds and clients use that ISO 3166-1 gives to no country, and the code they mean: the
# United Kingdom is GB, Greece GR. Every region entering the system goes through region_code
# (catalog items, availability feeds, trusted records, search and recommendation requests), so
# a region asked for is spelled as the offers are stored: `region=uk` finds what a feed sent
# as UK.
REGION_ALIASES = {"UK": "GB", "EL": "GR"}


def region_code(value: str) -> str:
    """' uk ' -> 'GB', 'us' -> 'US'. Not checked: checked_region says whether it is a code."""
    code = value.strip()
    # ASCII only: "ß".upper() is "SS", which would pass as a region code.
    if not code.isascii():
        return code
    code = code.upper()
    return REGION_ALIASES.get(code, code)


def checked_region(region: str) -> str:
    """An ISO 3166-1 alpha-2 code (as region_code spells it); anything else is an error."""
    # isascii(): str.isalpha() also accepts letters such as "Ä".
    if len(region) != 2 or not (region.isascii() and region.isalpha()):
        raise ValueError(f"{region!r} is not an ISO 3166-1 alpha-2 region code")
    return region


def asked_region(value: object, label: str = "") -> object:
    """A region a client sends, as a before-validator takes it: by the one rule ('uk' -> 'GB'),
    or an error saying what a region is. Non-strings are left to the field's own type check."""
    if not isinstance(value, str):
        return value
    try:
        return checked_region(region_code(value))
    except ValueError:
        raise ValueError(
            f"{label}{value!r} is not an ISO 3166-1 alpha-2 code such as 'US'"
        ) from None


def checked_regions(regions: list[str]) -> list[str]:
    """ISO 3166-1 alpha-2 codes, deduplicated and sorted; anything else is an error."""
    return sorted({checked_region(region) for region in regions})


class _Data(BaseModel):
    model_config = ConfigDict(
        extra="forbid", frozen=True, str_strip_whitespace=True, allow_inf_nan=False
    )


class ExternalIds(_Data):
    eidr: Text | None = Field(default=None, max_length=64)
    imdb: Text | None = Field(default=None, pattern=r"^tt\d{5,10}$")
    tmdb: Text | None = Field(default=None, max_length=32)
    tvdb: Text | None = Field(default=None, max_length=32)
    gracenote: Text | None = Field(default=None, max_length=64)
    # Per-platform ids: {"netflix": "80100172"}.
    platform_ids: dict[
        Annotated[Text, Field(min_length=1, max_length=64, pattern=r"^[a-z0-9_]+$")],
        Annotated[Text, Field(min_length=1, max_length=200)],
    ] = Field(default_factory=dict, max_length=MAX_PLATFORMS)


# The kinds of availability that carry a price (and only they do).
PAID_AVAILABILITY = (AvailabilityType.rental, AvailabilityType.purchase)


class PlatformAvailability(_Data):
    platform: Text = Field(min_length=1, max_length=64, pattern=r"^[a-z0-9_]+$")
    availability_type: AvailabilityType
    price_cents: int | None = Field(default=None, ge=0, le=MAX_PRICE_CENTS)
    currency: Text | None = Field(default=None, pattern=r"^[A-Z]{3}$")
    video_qualities: list[VideoQuality] = Field(default_factory=list, max_length=MAX_QUALITIES)
    audio_qualities: list[Annotated[Text, Field(max_length=64)]] = Field(
        default_factory=list, max_length=MAX_QUALITIES
    )
    subtitle_languages: list[Annotated[Text, Field(max_length=35)]] = Field(
        default_factory=list, max_length=MAX_LANGUAGES
    )
    # ISO 3166-1 alpha-2; an empty list means the title is no longer available there.
    regions: list[Text] = Field(default_factory=list, max_length=MAX_REGIONS)
    available_from: Instant | None = None
    available_until: Instant | None = None
    deep_link: Text | None = Field(default=None, max_length=2000)
    web_url: Text | None = Field(default=None, max_length=2000)

    @field_validator("regions", mode="before")
    @classmethod
    def _region_codes(cls, value: object) -> object:
        if not isinstance(value, list):
            return value
        return [region_code(r) if isinstance(r, str) else r for r in value]

    @field_validator("regions")
    @classmethod
    def _check_regions(cls, value: list[str]) -> list[str]:
        return checked_regions(value)

    @model_validator(mode="after")
    def _check_price(self) -> PlatformAvailability:
        paid = self.availability_type in PAID_AVAILABILITY
        if paid and (self.price_cents is None or self.currency is None):
            raise ValueError(f"{self.availability_type} needs price_cents and currency")
        if not paid and (self.price_cents is not None or self.currency is not None):
            raise ValueError(
                f"{self.availability_type} has no price: leave price_cents/currency null"
            )
        start, end = self.available_from, self.available_until
        if start is not None and end is not None:
            # Comparing naive with aware datetimes raises TypeError, which pydantic does not turn
            # into a ValidationError: one such record would escape decode() and stall a consumer.
            if (start.tzinfo is None) != (end.tzinfo is None):
                raise ValueError(
                    "available_from and available_until must both have a UTC offset, or neither"
                )
            if end < start:
                raise ValueError("available_until is before available_from")
        return self


class SeriesMetadata(_Data):
    """Of a series: its counts. Of an episode: where it sits in its series, in the catalog's
    canonical numbering (docs/INGESTION.md, "Series"); season 0 holds the specials."""

    season_count: int | None = Field(default=None, ge=0, le=MAX_COUNT)
    episode_count: int | None = Field(default=None, ge=0, le=MAX_COUNT)
    season_number: int | None = Field(default=None, ge=0, le=MAX_COUNT)
    episode_number: int | None = Field(default=None, ge=0, le=MAX_COUNT)
    # An episode's series (its canonical id).
    parent_id: uuid.UUID | None = None
    season_id: uuid.UUID | None = Field(
        default=None, description="an episode's season: its canonical id"
    )
    absolute_number: int | None = Field(
        default=None, ge=1, le=MAX_COUNT, description="the episode's number across all seasons"
    )


class Credit(_Data):
    name: Text = Field(min_length=1, max_length=300)
    role: Text = Field(min_length=1, max_length=64)
    character: Text | None = Field(default=None, max_length=300)


class Images(_Data):
    poster: Text | None = Field(default=None, max_length=2000)
    backdrop: Text | None = Field(default=None, max_length=2000)
    thumbnail: Text | None = Field(default=None, max_length=2000)


class CanonicalContent(_Data):
    canonical_id: uuid.UUID
    content_type: ContentType
    title: Text = Field(min_length=1, max_length=500)
    original_title: Text | None = Field(default=None, max_length=500)
    alternate_titles: list[Annotated[Text, Field(max_length=500)]] = Field(
        default_factory=list, max_length=MAX_ALTERNATE_TITLES
    )
    description: Text | None = Field(default=None, max_length=5000)
    release_year: int | None = Field(default=None, ge=1800, le=2100)
    release_date: date | None = Field(default=None, ge=date(1800, 1, 1), le=date(2100, 12, 31))
    _release_date_form = field_validator("release_date", mode="before")(documented_date)
    runtime_minutes: int | None = Field(default=None, ge=0, le=10000)
    genres: list[Annotated[Text, Field(min_length=1, max_length=64)]] = Field(
        min_length=1, max_length=MAX_GENRES
    )
    maturity_rating: MaturityRating | None = None
    external_ids: ExternalIds = Field(default_factory=ExternalIds)
    availability: list[PlatformAvailability] = Field(default_factory=list, max_length=MAX_OFFERS)
    series: SeriesMetadata | None = None
    images: Images = Field(default_factory=Images)
    credits: list[Credit] = Field(default_factory=list, max_length=MAX_CREDITS)
    average_rating: float | None = Field(default=None, ge=0, le=10)
    rating_count: int = Field(default=0, ge=0, le=INT32_MAX)
    popularity_score: float = Field(default=0.0, ge=0, le=POPULARITY_MAX)
    original_language: Text | None = Field(default=None, max_length=16)
    keywords: list[Annotated[Text, Field(max_length=200)]] = Field(
        default_factory=list, max_length=MAX_KEYWORDS
    )
    data_quality_score: float | None = Field(default=None, ge=0, le=1)
    source_platforms: list[
        Annotated[Text, Field(min_length=1, max_length=64, pattern=r"^[a-z0-9_]+$")]
    ] = Field(default_factory=list, max_length=MAX_PLATFORMS)
    # The producer's own clock for this version of the title: newer wins, whatever arrives first.
    updated_at: Instant


class ContentSubmitted(Payload):
    """A trusted producer's canonical record, to be stored if it is new or newer."""

    event_type: ClassVar[str] = "content.submitted"
    content: CanonicalContent


class ContentIngested(Payload):
    """A title the catalog did not have before, now stored."""

    event_type: ClassVar[str] = "content.ingested"
    content: CanonicalContent


class ContentUpdated(Payload):
    """A known title changed: the new full record and the top-level fields that changed."""

    event_type: ClassVar[str] = "content.updated"
    content: CanonicalContent
    changed_fields: list[str] = Field(default_factory=list)


class AvailabilityRow(_Data):
    """One (title, platform, region) row of where a title can be watched."""

    platform: str
    region: str = Field(pattern=r"^[A-Z]{2}$")
    availability_type: AvailabilityType
    price_cents: int | None = None
    currency: str | None = None
    deep_link: str | None = None
    web_fallback: str | None = None
    available_from: datetime | None = None
    expires_at: datetime | None = None


class AvailabilityChanged(Payload):
    """What appeared, changed and expired for one title on one platform."""

    event_type: ClassVar[str] = "content.availability_changed"
    canonical_id: uuid.UUID
    platform: str
    appeared: list[AvailabilityRow] = Field(default_factory=list)
    changed: list[AvailabilityRow] = Field(default_factory=list)
    expired: list[AvailabilityRow] = Field(default_factory=list)
    previous: list[AvailabilityRow] = Field(
        default_factory=list,
        description="the rows `changed` replaced, in the same order (a price before and "
        "after); empty in events written before it existed",
    )


class MetadataEnriched(Payload):
    """A title's version now has its embedding in the vector store and its quality score."""

    event_type: ClassVar[str] = "content.metadata_enriched"
    canonical_id: uuid.UUID
    source_version: datetime
    data_quality_score: float = Field(ge=0, le=1)
    embedding_model: str
    dimension: int


class ContentExpiring(Payload):
    """A title's offer leaves a platform in a region within `window_days` (7, 3 or 1): one
    notice per offer (platform, region, offer type) and window."""

    event_type: ClassVar[str] = "content.expiring"
    canonical_id: uuid.UUID
    platform: str
    region: str
    expires_at: datetime
    window_days: int
    # Optional only because notices written before it was added lack it.
    availability_type: AvailabilityType | None = Field(
        default=None,
        description="which offer ends (a rental and a purchase ending together are two "
        "notices); always set by the agents, absent in notices written before it existed",
    )


class ContentLookupRequested(Payload):
    """The gateway missed a title in the read model: an agent should fetch it from PostgreSQL.

    The answer goes to the Redis pub/sub channel named in the request: the document's JSON,
    or an empty message when there is no such title.
    """

    event_type: ClassVar[str] = "content.lookup"
    canonical_id: uuid.UUID
    reply_channel: str = Field(min_length=1, max_length=300)
