"""Turn a validated raw platform item into clean fields ready for entity resolution.

Nothing here raises for a RawCatalogItem that validated: values this step cannot map (an
unknown maturity rating, an odd video quality) are dropped and named in `warnings`, so the
caller can log them without losing the title.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from urllib.parse import quote

from agents.titles.names import TRAILING_ARTICLE, TRAILING_YEAR, normalize_title
from schemas.content import (
    ContentType,
    Credit,
    ExternalIds,
    Images,
    MaturityRating,
    PlatformAvailability,
    SeriesMetadata,
    VideoQuality,
)
from schemas.ingestion import RawAvailability, RawCatalogItem

DESCRIPTION_MAX = 5000

# Per-platform deep-link and web templates. The app schemes follow DOMAIN's netflix://title/{id}
# style; they are this project's conventions, not verified partner specifications.
DEEP_LINKS: dict[str, str] = {
    "netflix": "netflix://title/{id}",
    "prime_video": "primevideo://watch/{id}",
    "disney_plus": "disneyplus://watch/{id}",
    "hulu": "hulu://watch/{id}",
    "hbo_max": "hbomax://watch/{id}",
    "apple_tv_plus": "appletv://watch/{id}",
}
# DOMAIN's web fallback is https://{platform}.com/watch/{id}; platform ids such as prime_video
# are not host names, so known platforms get their real host.
WEB_HOSTS: dict[str, str] = {
    "netflix": "netflix.com",
    "prime_video": "primevideo.com",
    "disney_plus": "disneyplus.com",
    "hulu": "hulu.com",
    "hbo_max": "max.com",
    "apple_tv_plus": "tv.apple.com",
}

_MATURITY: dict[str, MaturityRating] = {
    "G": MaturityRating.G,
    "PG": MaturityRating.PG,
    "PG13": MaturityRating.PG_13,
    "R": MaturityRating.R,
    "NC17": MaturityRating.NC_17,
    "TVY": MaturityRating.TV_Y,
    "TVY7": MaturityRating.TV_Y7,
    "TVY7FV": MaturityRating.TV_Y7,
    "TVG": MaturityRating.TV_G,
    "TVPG": MaturityRating.TV_PG,
    "TV14": MaturityRating.TV_14,
    "TVMA": MaturityRating.TV_MA,
}
# Known to mean "no rating": dropped without a warning.
_UNRATED = frozenset({"NR", "UR", "UNRATED", "NOTRATED", "NONE", "NA"})

_VIDEO: dict[str, VideoQuality] = {
    **{k: VideoQuality.SD for k in ("sd", "480p", "576p", "480i", "dvd")},
    **{k: VideoQuality.HD for k in ("hd", "720p", "1080p", "1080i", "fhd", "fullhd", "hd1080")},
    **{k: VideoQuality.UHD for k in ("uhd", "4k", "2160p", "4kuhd", "ultrahd", "uhd4k")},
    **{
        k: VideoQuality.HDR
        for k in (
            "hdr",
            "hdr10",
            "hdr10+",
            "hdr10plus",
            "dolbyvision",
            "dv",
            "hlg",
        )
    },
}
_VIDEO_ORDER = list(VideoQuality)


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
    availability: tuple[PlatformAvailability, ...]
    keywords: tuple[str, ...]
    credits: tuple[Credit, ...]
    images: Images
    series: SeriesMetadata | None
    source_updated_at: datetime
    warnings: tuple[str, ...] = ()

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


def normalize_maturity(value: str | None) -> tuple[MaturityRating | None, str | None]:
    """('pg-13') -> (PG-13, None); ('16+') -> (None, warning)."""
    if value is None:
        return None, None
    key = re.sub(r"[^A-Z0-9]", "", value.upper())
    key = key.removeprefix("RATED")
    if key in _MATURITY:
        return _MATURITY[key], None
    if key in _UNRATED or not key:
        return None, None
    return None, f"unknown maturity rating {value!r} dropped"


def normalize_video_qualities(values: list[str]) -> tuple[list[VideoQuality], list[str]]:
    found: set[VideoQuality] = set()
    unknown: list[str] = []
    for value in values:
        quality = _VIDEO.get(re.sub(r"[\s_\-]", "", value.casefold()))
        if quality is None:
            unknown.append(value)
        else:
            found.add(quality)
    return sorted(found, key=_VIDEO_ORDER.index), unknown


def deep_link(platform: str, item_id: str) -> str:
    template = DEEP_LINKS.get(platform)
    return template.format(id=quote(item_id, safe="")) if template else web_url(platform, item_id)


def web_url(platform: str, item_id: str) -> str:
    host = WEB_HOSTS.get(platform) or f"{platform.replace('_', '')}.com"
    return f"https://{host}/watch/{quote(item_id, safe='')}"


def _availability(
    raw: RawAvailability, platform: str, item_id: str, warnings: list[str]
) -> PlatformAvailability:
    qualities, unknown = normalize_video_qualities(raw.video_qualities)
    warnings.extend(f"unknown video quality {q!r} dropped" for q in unknown)
    price_cents, currency = raw.price_cents, raw.currency
    if raw.availability_type in ("subscription", "free") and (price_cents or currency):
        # Feeds put the monthly fee or "0.00 USD" on subscription offers; the canonical model
        # keeps prices for rentals and purchases only.
        if price_cents:
            warnings.append(f"price dropped from a {raw.availability_type} offer")
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


def _description(text: str | None) -> str | None:
    if text is None:
        return None
    text = text.strip()
    if len(text) <= DESCRIPTION_MAX:
        return text or None
    cut = text[: DESCRIPTION_MAX - 1]
    # Cut at a word boundary when one is near, so the text does not end mid-word.
    space = cut.rfind(" ", DESCRIPTION_MAX - 200)
    return (cut[:space] if space > 0 else cut).rstrip() + "\u2026"


def normalize_item(raw: RawCatalogItem) -> NormalizedItem:
    warnings: list[str] = []
    title, title_year = clean_display_title(raw.title)
    year = raw.year
    if year is None and raw.release_date is not None:
        year = raw.release_date.year
    if year is None:
        year = title_year
    dated = raw.release_date
    if raw.year is not None and dated is not None and abs(raw.year - dated.year) > 1:
        warnings.append(
            f"year {raw.year} disagrees with release_date {raw.release_date}; keeping the year"
        )
    maturity, maturity_warning = normalize_maturity(raw.maturity_rating)
    if maturity_warning:
        warnings.append(maturity_warning)
    ids = raw.external_ids
    external_ids = ExternalIds(
        eidr=ids.eidr,
        imdb=ids.imdb,
        tmdb=ids.tmdb,
        tvdb=ids.tvdb,
        gracenote=ids.gracenote,
        platform_ids={raw.platform: raw.platform_item_id},
    )
    availability = tuple(
        _availability(a, raw.platform, raw.platform_item_id, warnings) for a in raw.availability
    )
    series = None
    if raw.season_count is not None or raw.episode_count is not None:
        series = SeriesMetadata(season_count=raw.season_count, episode_count=raw.episode_count)
    return NormalizedItem(
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
        description=_description(raw.description),
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
        warnings=tuple(warnings),
    )


def availability_of(
    platform: str, item_id: str, raw: Iterable[RawAvailability]
) -> list[PlatformAvailability]:
    """A feed's availability entries in canonical form (for availability-only updates)."""
    warnings: list[str] = []
    return [_availability(a, platform, item_id, warnings) for a in raw]
