"""Turn a validated raw platform item into clean fields ready for entity resolution.

Nothing here raises for a RawCatalogItem that validated: values this step cannot map (an
unknown maturity rating, an odd video quality, an unknown genre, a year that cannot be right)
are dropped or replaced and named in `warnings` (agreements/catalog_warnings.py, the same list
the gateway returns to the producer), which the agent counts and keeps with the item's mapping.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from urllib.parse import quote

from agents.titles.names import TRAILING_ARTICLE, TRAILING_YEAR, normalize_title
from agreements.catalog_warnings import (
    ItemWarning,
    choose_year,
    cut_description,
    item_warnings,
    normalize_maturity,
    normalize_video_qualities,
    offer_keeps_price,
)
from schemas.content import (
    ContentType,
    Credit,
    ExternalIds,
    Images,
    MaturityRating,
    PlatformAvailability,
    SeriesMetadata,
)
from schemas.ingestion import RawAvailability, RawCatalogItem

# Per-platform deep-link and web templates. The app schemes follow docs/RULES.md's netflix://title/{id}
# style; they are this project's conventions, not verified partner specifications.
DEEP_LINKS: dict[str, str] = {
    "netflix": "netflix://title/{id}",
    "prime_video": "primevideo://watch/{id}",
    "disney_plus": "disneyplus://watch/{id}",
    "hulu": "hulu://watch/{id}",
    "hbo_max": "hbomax://watch/{id}",
    "apple_tv_plus": "appletv://watch/{id}",
}
# docs/RULES.md's web fallback is https://{platform}.com/watch/{id}; platform ids such as
# prime_video are not host names, so known platforms get their real host.
WEB_HOSTS: dict[str, str] = {
    "netflix": "netflix.com",
    "prime_video": "primevideo.com",
    "disney_plus": "disneyplus.com",
    "hulu": "hulu.com",
    "hbo_max": "max.com",
    "apple_tv_plus": "tv.apple.com",
}


# "The Office: Season 2", "The Office - Series 2", "The Office (Season 2)", "The Office S2".
SEASON_SUFFIX = re.compile(
    r"\s*(?:[:\-\u2013(,]\s*)?(?:season|series|staffel|saison|temporada)\s*\d+\)?\s*$"
    r"|\s+s\d{1,3}\s*$",
    re.IGNORECASE,
)


@dataclass(frozen=True, slots=True)
class SeriesRef:
    """The series an episode or season listing names (agents/ingestion/series.py)."""

    title: str | None
    normalized_title: str | None
    external_ids: ExternalIds  # the series' global ids, no platform ids
    parent_id: str | None  # the platform's own id of the series (or season)
    year: int | None = None


@dataclass(frozen=True, slots=True)
class NormalizedItem:
    platform: str
    platform_item_id: str
    content_type: ContentType
    title: str  # display title, cleaned ("Matrix, The (1999)" -> "The Matrix")
    normalized_title: str  # for matching only
    original_title: str | None
    year: int | None
    release_date: date | None
    runtime_minutes: int | None
    raw_genres: tuple[str, ...]
    description: str | None
    maturity_rating: MaturityRating | None
    average_rating: float | None
    rating_count: int
    popularity: float
    original_language: str | None
    external_ids: ExternalIds  # includes platform_ids {platform: platform_item_id}
    # None: the item says nothing of its offers (they stay as they are); (): none left.
    availability: tuple[PlatformAvailability, ...] | None
    keywords: tuple[str, ...]
    credits: tuple[Credit, ...]
    images: Images
    series: SeriesMetadata | None
    source_updated_at: datetime
    warnings: tuple[ItemWarning, ...] = ()
    # Television: the series named, and the item's own numbers (the platform's numbering).
    series_ref: SeriesRef | None = None
    season_number: int | None = None
    episode_number: int | None = None
    absolute_number: int | None = None

    @property
    def record_key(self) -> str:
        return f"{self.platform}:{self.platform_item_id}"


def clean_display_title(title: str) -> tuple[str, int | None]:
    """('Matrix, The (1999)') -> ('The Matrix', 1999): library-sort and year suffixes removed."""
    text = " ".join(title.split())
    year: int | None = None
    match = TRAILING_YEAR.search(text)
    if match and match.start() > 0:
        candidate = int(match.group(1))
        if 1800 <= candidate <= 2100:
            year = candidate
            text = text[: match.start()].rstrip()
    moved = TRAILING_ARTICLE.search(text)
    if moved and moved.start() > 0:
        article = moved.group(1)
        text = f"{article[0].upper()}{article[1:].lower()} {text[: moved.start()].rstrip()}"
    return text, year


def deep_link(platform: str, item_id: str) -> str:
    template = DEEP_LINKS.get(platform)
    return template.format(id=quote(item_id, safe="")) if template else web_url(platform, item_id)


def web_url(platform: str, item_id: str) -> str:
    host = WEB_HOSTS.get(platform) or f"{platform.replace('_', '')}.com"
    return f"https://{host}/watch/{quote(item_id, safe='')}"


def _availability(raw: RawAvailability, platform: str, item_id: str) -> PlatformAvailability:
    # What this drops is named by agreements.catalog_warnings.offer_warnings.
    qualities, _ = normalize_video_qualities(raw.video_qualities)
    price_cents, currency = raw.price_cents, raw.currency
    if not offer_keeps_price(raw):
        price_cents, currency = None, None
    return PlatformAvailability(
        platform=platform,
        availability_type=raw.availability_type,
        price_cents=price_cents,
        currency=currency,
        video_qualities=qualities,
        audio_qualities=list(raw.audio_qualities),
        subtitle_languages=list(raw.subtitle_languages),
        regions=list(raw.regions),
        available_from=raw.available_from,
        available_until=raw.available_until,
        deep_link=raw.deep_link or deep_link(platform, item_id),
        web_url=raw.web_url or web_url(platform, item_id),
    )


def normalize_item(raw: RawCatalogItem) -> NormalizedItem:
    title, _ = clean_display_title(raw.title)
    year, _ = choose_year(raw)
    maturity, _ = normalize_maturity(raw.maturity_rating)
    ids = raw.external_ids
    external_ids = ExternalIds(
        eidr=ids.eidr,
        imdb=ids.imdb,
        tmdb=ids.tmdb,
        tvdb=ids.tvdb,
        gracenote=ids.gracenote,
        platform_ids={raw.platform: raw.platform_item_id},
    )
    availability = (
        None
        if raw.availability is None
        else tuple(_availability(a, raw.platform, raw.platform_item_id) for a in raw.availability)
    )
    series = None
    if raw.season_count is not None or raw.episode_count is not None:
        series = SeriesMetadata(season_count=raw.season_count, episode_count=raw.episode_count)
    return NormalizedItem(
        series_ref=series_ref(raw),
        season_number=raw.season_number,
        episode_number=raw.episode_number,
        absolute_number=raw.absolute_number,
        platform=raw.platform,
        platform_item_id=raw.platform_item_id,
        content_type=raw.content_type,
        title=title,
        normalized_title=normalize_title(title),
        original_title=raw.original_title,
        year=year,
        release_date=raw.release_date,
        runtime_minutes=raw.runtime,
        raw_genres=tuple(raw.genres),
        description=cut_description(raw.description),
        maturity_rating=maturity,
        average_rating=raw.rating,
        rating_count=raw.rating_count,
        popularity=raw.popularity,
        original_language=raw.original_language,
        external_ids=external_ids,
        availability=availability,
        keywords=tuple(raw.keywords),
        credits=tuple(Credit(name=c.name, role=c.role, character=c.character) for c in raw.credits),
        images=Images(
            poster=raw.images.poster, backdrop=raw.images.backdrop, thumbnail=raw.images.thumbnail
        ),
        series=series,
        source_updated_at=raw.source_updated_at,
        warnings=tuple(item_warnings(raw)),
    )


def series_ref(raw: RawCatalogItem) -> SeriesRef | None:
    """What the item says of its series; None when it names none."""
    ids = raw.series_ids
    external = ExternalIds(eidr=ids.eidr, imdb=ids.imdb, tmdb=ids.tmdb, tvdb=ids.tvdb)
    has_ids = any((ids.eidr, ids.imdb, ids.tmdb, ids.tvdb))
    series_title = raw.series_title
    season_listing = raw.content_type is ContentType.series and raw.season_number is not None
    if not series_title and season_listing:
        # A season listing without a series title: "The Office - Season 2" names its series.
        series_title = SEASON_SUFFIX.sub("", raw.title).strip() or raw.title
    if not (series_title or raw.parent_id or has_ids):
        return None
    title = clean_display_title(series_title)[0] if series_title else None
    return SeriesRef(
        title=title,
        normalized_title=normalize_title(title) if title else None,
        external_ids=external,
        parent_id=raw.parent_id,
    )


def availability_of(
    platform: str, item_id: str, raw: Iterable[RawAvailability]
) -> list[PlatformAvailability]:
    """A feed's availability entries in canonical form (for availability-only updates; what
    they drop is named by agreements.catalog_warnings.offer_warnings)."""
    return [_availability(a, platform, item_id) for a in raw]
