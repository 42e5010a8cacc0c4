"""Natural-language search: the request on its topic, the parsed intent, and the response.

Pure data. Genre and platform values are the canonical ids (`science_fiction`, `prime_video`);
this module checks their shape, the discovery agent maps free text onto them.
"""

from __future__ import annotations

import math
import re
import uuid
from typing import ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from schemas.content import ContentType, MaturityRating, asked_region
from schemas.envelope import Payload
from schemas.ingestion import normalize_platform

MAX_QUERY_LENGTH = 500
DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 100

# CanonicalContent's release_year bounds. An open-ended range ("after 2010") is closed with
# them, so a year range is always two ints and excludes no title that has a year.
YEAR_MIN = 1800
YEAR_MAX = 2100
RATING_MIN = 0.0
RATING_MAX = 10.0

Strategy = Literal["vector", "keyword", "popularity", "graph"]
STRATEGIES: tuple[Strategy, ...] = ("vector", "keyword", "popularity", "graph")

YearRange = tuple[int, int]
RatingRange = tuple[float, float]

# The content types a search can ask for: every type of the catalog but `episode`, since an
# episode is shown as its series (docs/DISCOVERY.md, "Series and episodes").
SEARCHABLE_CONTENT_TYPES: tuple[str, ...] = tuple(
    t.value for t in ContentType if t is not ContentType.episode
)

_ID = re.compile(r"^[a-z0-9_]+$")
_ID_SEPARATORS = re.compile(r"[\s\-]+")


def _genre_id(name: str) -> str:
    """'Sci-Fi' -> 'sci_fi', 'Action & Adventure' -> 'action_and_adventure': a genre name as
    an id the discovery agent maps onto canonical genres as the genre tables read the name
    (agreements/genres.py reads '&' as 'and')."""
    return _ID_SEPARATORS.sub("_", name.casefold().replace("&", " and "))


def _ids(field: str, values: list[str], *, platforms: bool = False) -> list[str]:
    """Lower-case ids, deduplicated and sorted: filters are sets, and a fixed order lets equal
    filters serialize (and hash, for the cache key) the same."""
    out: set[str] = set()
    for value in values:
        value = value.strip()
        ident = normalize_platform(value) if platforms else _genre_id(value)
        if not _ID.match(ident):
            raise ValueError(f"{field}: {value!r} is not an id of lower-case letters, digits, _")
        out.add(ident)
    return sorted(out)


def checked_year_range(field: str, value: YearRange | None) -> YearRange | None:
    if value is None:
        return None
    start, end = value
    for year in value:
        if not YEAR_MIN <= year <= YEAR_MAX:
            raise ValueError(f"{field}: year {year} is outside {YEAR_MIN}-{YEAR_MAX}")
    if start > end:
        raise ValueError(f"{field}: from {start} is after to {end}")
    return value


class _Data(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


class IntentFilters(_Data):
    """Hard filters the query itself asked for ("on Netflix", "from the 90s", "horror")."""

    genres: list[str] = Field(default_factory=list, max_length=18)
    platforms: list[str] = Field(default_factory=list, max_length=32)
    year_range: YearRange | None = None
    # "comedy series", "tv shows", "movies from the 80s": the kinds of title asked for
    # (SEARCHABLE_CONTENT_TYPES); empty: any.
    content_types: list[str] = Field(default_factory=list, max_length=5)

    @field_validator("genres")
    @classmethod
    def _genres(cls, value: list[str]) -> list[str]:
        return _ids("genres", value)

    @field_validator("content_types")
    @classmethod
    def _content_types(cls, value: list[str]) -> list[str]:
        # A kind this version does not know (a model's "tv show") is dropped, never a 422.
        return sorted({v.strip().casefold() for v in value} & set(SEARCHABLE_CONTENT_TYPES))

    @field_validator("platforms")
    @classmethod
    def _platforms(cls, value: list[str]) -> list[str]:
        return _ids("platforms", value, platforms=True)

    @field_validator("year_range")
    @classmethod
    def _years(cls, value: YearRange | None) -> YearRange | None:
        return checked_year_range("year_range", value)


class ParsedIntent(_Data):
    """What a query means: soft preferences (mood, themes, references) and hard filters."""

    # Mood families of agents/sona/moods.py ("happy", "scared"): they boost, never filter.
    mood: list[str] = Field(default_factory=list, max_length=8)
    themes: list[str] = Field(default_factory=list, max_length=20)
    # Titles the user compares with: "like Shrek" -> ["Shrek"].
    references: list[str] = Field(default_factory=list, max_length=10)
    filters: IntentFilters = Field(default_factory=IntentFilters)
    # The words left for keyword and vector search once filters took theirs; may be empty.
    fallback_query: str = Field(default="", max_length=MAX_QUERY_LENGTH)
    confidence: float = Field(ge=0.0, le=1.0)
    source: Literal["llm", "rules"]


class SearchFilters(_Data):
    """Filters a client sends with a query; every condition given must hold."""

    genres: list[str] = Field(default_factory=list, max_length=18)
    platforms: list[str] = Field(default_factory=list, max_length=32)
    # ISO 3166-1 alpha-2: the platforms must offer the title there.
    region: str | None = None
    year_range: YearRange | None = None
    rating_range: RatingRange | None = None
    # The highest maturity rating allowed; unrated titles do not pass a limit.
    content_rating_limit: MaturityRating | None = None
    blocked_genres: list[str] = Field(default_factory=list, max_length=18)
    # Only titles of these content types (SEARCHABLE_CONTENT_TYPES); empty: any. No length
    # bound: the validator makes it a set of at most those five, however often one is sent.
    content_types: list[str] = Field(default_factory=list)

    @field_validator("genres", "blocked_genres")
    @classmethod
    def _genres(cls, value: list[str], info: ValidationInfo) -> list[str]:
        return _ids(info.field_name or "genres", value)

    @field_validator("platforms")
    @classmethod
    def _platforms(cls, value: list[str]) -> list[str]:
        return _ids("platforms", value, platforms=True)

    @field_validator("content_types")
    @classmethod
    def _content_types(cls, value: list[str]) -> list[str]:
        # Any case ('Movie'); a set, sorted, for the cache key like the other lists.
        wanted = {v.strip().casefold() for v in value}
        for kind in sorted(wanted):
            if kind not in SEARCHABLE_CONTENT_TYPES:
                raise ValueError(
                    f"content_types: {kind!r} is not one of {', '.join(SEARCHABLE_CONTENT_TYPES)}"
                    + (" (an episode is found as its series)" if kind == "episode" else "")
                )
        return sorted(wanted)

    @field_validator("region", mode="before")
    @classmethod
    def _region(cls, value: object) -> object:
        # The rule offers are stored by: 'uk' asks for GB.
        return asked_region(value, "region: ")

    @field_validator("content_rating_limit", mode="before")
    @classmethod
    def _rating_limit(cls, value: object) -> object:
        # Ratings are written upper-case (PG-13, TV-MA); a client's 'pg-13' means the same.
        # Nothing else is forgiven: ' pg' or 'PG13' is not a rating the document names.
        return value.upper() if isinstance(value, str) and value.isascii() else value

    @field_validator("year_range")
    @classmethod
    def _years(cls, value: YearRange | None) -> YearRange | None:
        return checked_year_range("year_range", value)

    @field_validator("rating_range")
    @classmethod
    def _ratings(cls, value: RatingRange | None) -> RatingRange | None:
        if value is None:
            return None
        low, high = value
        for rating in value:
            if not (math.isfinite(rating) and RATING_MIN <= rating <= RATING_MAX):
                raise ValueError(f"rating_range: {rating} is outside {RATING_MIN}-{RATING_MAX}")
        if low > high:
            raise ValueError(f"rating_range: from {low} is above to {high}")
        return value


class SearchRequested(Payload):
    """A natural-language search, from the gateway to the discovery agent.

    The answer, a SearchResponse as JSON, goes to the Redis pub/sub channel named here.
    """

    event_type: ClassVar[str] = "discovery.search"

    query: str = Field(min_length=1, max_length=MAX_QUERY_LENGTH)
    filters: SearchFilters = Field(default_factory=SearchFilters)
    page: int = Field(default=1, ge=1)
    page_size: int = Field(default=DEFAULT_PAGE_SIZE, ge=1, le=MAX_PAGE_SIZE)
    # With a user, results are personalized (and cached per user).
    user_id: str | None = Field(default=None, min_length=1, max_length=128)
    reply_channel: str = Field(min_length=1, max_length=300)
    # Asked without a credential: an LLM reading of the query spends the global anonymous
    # budget (DISCOVERY_ANONYMOUS_LLM_PER_MINUTE / _PER_DAY). Absent: counted as anonymous.
    anonymous: bool = True

    @field_validator("query", mode="before")
    @classmethod
    def _query(cls, value: object) -> object:
        # Blank queries fail min_length instead of reaching the parser as "".
        return " ".join(value.split()) if isinstance(value, str) else value


class StrategyScores(_Data):
    """Each strategy's share of a result's fused score; None when it did not find the title."""

    vector: float | None = Field(default=None, ge=0)
    keyword: float | None = Field(default=None, ge=0)
    popularity: float | None = Field(default=None, ge=0)
    graph: float | None = Field(default=None, ge=0)


class SeasonAvailability(_Data):
    """Where one season of a series result can be watched now."""

    # 0: the specials; None: episodes a feed gave no season for.
    season_number: int | None = Field(default=None, ge=0)
    episode_count: int = Field(default=0, ge=0)
    # Platforms offering the whole series, this season, or any of its episodes (in the asked
    # region only, when one was given).
    platforms: list[str] = Field(default_factory=list)


class MatchedEpisode(_Data):
    """The episode whose own title (or text) a series result was found by."""

    canonical_id: uuid.UUID
    title: str = Field(min_length=1, max_length=500)
    season_number: int | None = Field(default=None, ge=0)
    episode_number: int | None = Field(default=None, ge=0)


class SearchResult(_Data):
    canonical_id: uuid.UUID
    title: str = Field(min_length=1, max_length=500)
    release_year: int | None = None
    genres: list[str] = Field(default_factory=list)
    platforms: list[str] = Field(default_factory=list)
    relevance_score: float = Field(ge=0)
    match_reasons: list[str] = Field(default_factory=list)
    strategy_scores: StrategyScores = Field(default_factory=StrategyScores)
    # The catalog's content type (movie, series, ...); None from an older agent.
    content_type: str | None = None
    # Of a series: each season, in order (specials first, unnumbered episodes last), with
    # where it can be watched; None for other titles.
    seasons: list[SeasonAvailability] | None = None
    # Of a series found through episodes: the best-ranked of them (its title, S/E numbers).
    matched_episodes: list[MatchedEpisode] = Field(default_factory=list)


class Facets(_Data):
    """Counts over the whole filtered result set, not just the page: {name: count}."""

    genre: dict[str, int] = Field(default_factory=dict)
    platform: dict[str, int] = Field(default_factory=dict)
    decade: dict[str, int] = Field(default_factory=dict)


class SearchResponse(_Data):
    results: list[SearchResult] = Field(default_factory=list)
    total_count: int = Field(ge=0)
    page: int = Field(ge=1)
    page_size: int = Field(ge=1, le=MAX_PAGE_SIZE)
    query_parsed: ParsedIntent
    search_time_ms: float = Field(ge=0)
    facets: Facets = Field(default_factory=Facets)
    strategies_used: list[Strategy] = Field(default_factory=list)
    strategies_failed: list[Strategy] = Field(default_factory=list)


MAX_SUGGEST_QUERY_LENGTH = 100


class Suggestion(_Data):
    """A title or a person whose name starts like what the user is typing."""

    kind: Literal["title", "person"]
    text: str = Field(min_length=1, max_length=500)
    canonical_id: uuid.UUID | None = None  # a title's
    release_year: int | None = None  # a title's
    titles: int | None = Field(default=None, ge=0)  # how many titles credit a person


class SuggestResponse(_Data):
    query: str
    suggestions: list[Suggestion] = Field(default_factory=list, max_length=10)
