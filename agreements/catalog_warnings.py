"""What the pipeline will not keep of a valid catalog item as sent, said out loud.

A catalog item that validates is accepted, but normalization may still drop or change parts of
it: an unknown maturity rating or video quality, a genre no table knows, a price on a
subscription offer, a description beyond 5000 characters, a release year that cannot be right.
Each such case is an ItemWarning of a fixed kind. The same function names them in two places:
- the catalog producer (gateway batch endpoint, `mgw ingest`) returns them with each accepted
  item, together with the fields the schema ignores (unknown_fields), so the producer can fix
  its feed at once;
- the ingestion agent (agents/ingestion/normalize.py) counts them per kind
  (mgw_ingest_warnings_total) and keeps them with the item's mapping (`mgw ingest-report`).

The vocabularies that decide what is dropped (maturity ratings, video qualities, genres in
agreements/genres.py) live here so that both places use the one table. Pure.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from agreements.genres import classify_genres
from agreements.text import title_year
from schemas.content import AvailabilityType, MaturityRating, VideoQuality
from schemas.ingestion import (
    SERIES_FIELD_ALIASES,
    SERIES_ID_ALIASES,
    RawAvailability,
    RawCatalogItem,
    RawCredit,
    RawExternalIds,
    RawImages,
)

DESCRIPTION_MAX = 5000
# Listings announce titles up to about two years ahead; a year further past the listing's own
# clock is a typo or a wrong century ("King Kong (1933)" sent with year 2033).
YEARS_AHEAD = 2

# The kinds, as metric labels and report keys.
UNKNOWN_FIELD = "unknown_field"
UNKNOWN_GENRE = "unknown_genre"
UNKNOWN_MATURITY_RATING = "unknown_maturity_rating"
UNKNOWN_VIDEO_QUALITY = "unknown_video_quality"
PRICE_DROPPED = "price_dropped"
DESCRIPTION_CUT = "description_cut"
IMPLAUSIBLE_YEAR = "implausible_year"
YEAR_DISAGREES = "year_disagrees"
# Two items of one platform item in one batch: only one of them can be the stored version.
SUPERSEDED_IN_BATCH = "superseded_in_batch"
KINDS = (
    UNKNOWN_FIELD,
    UNKNOWN_GENRE,
    UNKNOWN_MATURITY_RATING,
    UNKNOWN_VIDEO_QUALITY,
    PRICE_DROPPED,
    DESCRIPTION_CUT,
    IMPLAUSIBLE_YEAR,
    YEAR_DISAGREES,
    SUPERSEDED_IN_BATCH,
)
# Named when an item is sent (the batch endpoint, `mgw ingest`), never kept with a stored
# item: the pipeline sees neither the fields the schema ignores nor the batch an item came in.
SENT_ONLY = (UNKNOWN_FIELD, SUPERSEDED_IN_BATCH)


@dataclass(frozen=True, slots=True)
class ItemWarning:
    kind: str  # one of KINDS
    field: str  # dotted path in the item, as in validation errors: "availability.0.price_cents"
    message: str

    def as_dict(self) -> dict[str, str]:
        return {"kind": self.kind, "field": self.field, "message": self.message}


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
        for k in ("hdr", "hdr10", "hdr10+", "hdr10plus", "dolbyvision", "dv", "hlg")
    },
}
_VIDEO_ORDER = list(VideoQuality)


def normalize_maturity(value: str | None) -> tuple[MaturityRating | None, str | None]:
    """('pg-13') -> (PG-13, None); ('16+') -> (None, why it was dropped)."""
    if value is None:
        return None, None
    key = re.sub(r"[^A-Z0-9]", "", value.upper())
    key = key.removeprefix("RATED")
    if key in _MATURITY:
        return _MATURITY[key], None
    if key in _UNRATED or not key:
        return None, None
    return None, f"unknown maturity rating {value!r} dropped"


def normalize_video_qualities(values: Iterable[str]) -> tuple[list[VideoQuality], list[str]]:
    """The known qualities, in order, and the names that mean nothing to us."""
    found: set[VideoQuality] = set()
    unknown: list[str] = []
    for value in values:
        quality = _VIDEO.get(re.sub(r"[\s_\-]", "", value.casefold()))
        if quality is None:
            unknown.append(value)
        else:
            found.add(quality)
    return sorted(found, key=_VIDEO_ORDER.index), unknown


def offer_keeps_price(offer: RawAvailability) -> bool:
    """Prices are kept for rentals and purchases only; feeds put the monthly fee or
    "0.00 USD" on subscription and free offers."""
    return offer.availability_type in (AvailabilityType.rental, AvailabilityType.purchase)


def offer_warnings(
    offers: Sequence[RawAvailability], at: str = "availability"
) -> list[ItemWarning]:
    out: list[ItemWarning] = []
    for index, offer in enumerate(offers):
        _, unknown = normalize_video_qualities(offer.video_qualities)
        out += [
            ItemWarning(
                UNKNOWN_VIDEO_QUALITY,
                f"{at}.{index}.video_qualities",
                f"unknown video quality {name!r} dropped",
            )
            for name in unknown
        ]
        if offer.price_cents and not offer_keeps_price(offer):
            out.append(
                ItemWarning(
                    PRICE_DROPPED,
                    f"{at}.{index}.price_cents",
                    f"price dropped from a {offer.availability_type} offer",
                )
            )
    return out


def cut_description(text: str | None) -> str | None:
    """At most DESCRIPTION_MAX characters, cut at a word boundary when one is near."""
    if text is None:
        return None
    text = text.strip()
    if len(text) <= DESCRIPTION_MAX:
        return text or None
    cut = text[: DESCRIPTION_MAX - 1]
    space = cut.rfind(" ", DESCRIPTION_MAX - 200)
    return (cut[:space] if space > 0 else cut).rstrip() + "\u2026"


def choose_year(item: RawCatalogItem) -> tuple[int | None, list[ItemWarning]]:
    """The release year to keep: the `year` field, else the release date's, else the one the
    title ends with; and what disagrees.

    A year more than YEARS_AHEAD past the listing's own clock (source_updated_at) is a typo or
    a wrong century: the release date's or the title's year replaces it when that one is
    plausible, and either way a warning says so.
    """
    warnings: list[ItemWarning] = []
    horizon = item.source_updated_at.year + YEARS_AHEAD
    from_date = item.release_date.year if item.release_date is not None else None
    from_title = title_year(item.title)
    given = item.year
    if given is not None and given > horizon:
        plausible = [
            (y, source)
            for y, source in ((from_date, "release_date"), (from_title, "title"))
            if y is not None and 1800 <= y <= horizon
        ]
        if plausible:
            year, source = plausible[0]
            message = (
                f"year {given} is after {horizon}, more than {YEARS_AHEAD} years past the "
                f"listing's date; using {year} from the {source}"
            )
        else:
            year = given
            message = (
                f"year {given} is after {horizon}, more than {YEARS_AHEAD} years past the "
                "listing's date; kept, as nothing else gives the year"
            )
        return year, [ItemWarning(IMPLAUSIBLE_YEAR, "year", message)]
    year = given if given is not None else from_date if from_date is not None else from_title
    if year is not None and year > horizon:
        source = "release_date" if given is None and from_date is not None else "title"
        warnings.append(
            ItemWarning(
                IMPLAUSIBLE_YEAR,
                source,
                f"year {year} (from the {source}) is more than {YEARS_AHEAD} years past the "
                "listing's date",
            )
        )
    if given is not None and from_date is not None and abs(given - from_date) > 1:
        warnings.append(
            ItemWarning(
                YEAR_DISAGREES,
                "year",
                f"year {given} disagrees with release_date {item.release_date}; keeping the year",
            )
        )
    if year is not None and from_title is not None and abs(year - from_title) > 1:
        warnings.append(
            ItemWarning(
                YEAR_DISAGREES,
                "title",
                f"the title says {from_title}, the item {year}; keeping {year}",
            )
        )
    return year, warnings


def item_warnings(item: RawCatalogItem) -> list[ItemWarning]:
    """Everything normalization will drop or change in this valid item, field by field."""
    out: list[ItemWarning] = []
    _, year_warnings = choose_year(item)
    out += year_warnings
    _, maturity = normalize_maturity(item.maturity_rating)
    if maturity:
        out.append(ItemWarning(UNKNOWN_MATURITY_RATING, "maturity_rating", maturity))
    unknown = classify_genres(item.platform, item.genres).unknown
    out += [
        ItemWarning(UNKNOWN_GENRE, "genres", f"unknown genre {name!r} dropped") for name in unknown
    ]
    if item.description is not None and len(item.description.strip()) > DESCRIPTION_MAX:
        out.append(
            ItemWarning(
                DESCRIPTION_CUT,
                "description",
                f"description of {len(item.description.strip())} characters cut to "
                f"{DESCRIPTION_MAX}",
            )
        )
    out += offer_warnings(item.availability or ())
    return out


# Names each part of an item accepts besides its fields (aliases its validators read).
_ALIASES: dict[type, frozenset[str]] = {
    RawCatalogItem: frozenset({"overview", *SERIES_FIELD_ALIASES, *SERIES_ID_ALIASES}),
    RawAvailability: frozenset({"price"}),
}
_NESTED: dict[str, type] = {
    "external_ids": RawExternalIds,
    "series_ids": RawExternalIds,
    "images": RawImages,
}
_NESTED_LISTS: dict[str, type] = {
    "availability": RawAvailability,
    "credits": RawCredit,
}


def _unknown_keys(data: Mapping[str, Any], model: type, at: str) -> list[ItemWarning]:
    known = set(model.model_fields) | _ALIASES.get(model, frozenset())  # type: ignore[attr-defined]
    return [
        ItemWarning(UNKNOWN_FIELD, f"{at}{key}", f"unknown field {key!r} ignored")
        for key in data
        if key not in known
    ]


def unknown_fields(data: Mapping[str, Any]) -> list[ItemWarning]:
    """Fields of an item as sent that the schema ignores (a misspelt "runtime_minutes" would
    otherwise lose the runtime without a word)."""
    out = _unknown_keys(data, RawCatalogItem, "")
    for name, model in _NESTED.items():
        value = data.get(name)
        if isinstance(value, Mapping):
            out += _unknown_keys(value, model, f"{name}.")
    for name, model in _NESTED_LISTS.items():
        value = data.get(name)
        if isinstance(value, list):
            for index, entry in enumerate(value):
                if isinstance(entry, Mapping):
                    out += _unknown_keys(entry, model, f"{name}.{index}.")
    return out


def count_by_kind(warnings: Iterable[ItemWarning]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for warning in warnings:
        counts[warning.kind] = counts.get(warning.kind, 0) + 1
    return counts


def parse_warnings(rows: Iterable[Mapping[str, Any]]) -> list[ItemWarning]:
    """Warnings back from their stored form (as_dict)."""
    return [ItemWarning(str(r["kind"]), str(r["field"]), str(r["message"])) for r in rows]
