"""Build or extend a canonical record from one normalized platform item (`merge_into`), or
take in a trusted producer's record of it (`merge_submitted`, rules of its own, below).

Rules of a platform item (deterministic, idempotent: merging it twice gives an equal record):
- scalar fields (title, description, year, runtime, rating, ...): the newest source wins when
  it has a value; an older source only fills what is missing. "Newest" compares the item's
  clock with the record's updated_at (the max of every clock merged so far), so for distinct
  clocks the outcome does not depend on arrival order. Nulls never clobber values.
- content_type stays as first resolved: flipping a known title's type would break every index.
- a replaced title is kept in alternate_titles (sorted, case-insensitively unique).
- external ids: union; a value already held is kept. platform_ids: this platform's id is set.
- availability: this platform's entries are replaced by the item's (an empty list removes
  them; an item without availability leaves them as they are); other platforms' entries are
  kept. Sorted, so list order in a feed is not a change.
- genres, keywords, source_platforms: union, in a fixed order.
- popularity: the maximum seen (each platform's popularity is on its own scale).
- updated_at = max of the source clocks.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Iterable
from typing import Any, TypeVar

from agents.ingestion.normalize import NormalizedItem
from agreements.genres import canonical_order, fallback_genres
from schemas.content import (
    MAX_ALTERNATE_TITLES,
    MAX_KEYWORDS,
    CanonicalContent,
    ExternalIds,
    Images,
    PlatformAvailability,
)

T = TypeVar("T")

_ID_FIELDS = ("eidr", "imdb", "tmdb", "tvdb", "gracenote")


def _pick(newer: bool, mine: T | None, held: T | None) -> T | None:
    if mine is not None and (newer or held is None):
        return mine
    return held


def _availability_order(a: PlatformAvailability) -> tuple[str, str, str]:
    return (a.platform, a.availability_type.value, a.model_dump_json())


def _unique_casefold(values: Iterable[str], exclude: str | None = None) -> list[str]:
    """Sorted, one spelling per case-insensitive value (the smallest, so order cannot matter)."""
    groups: dict[str, str] = {}
    for value in values:
        key = value.casefold()
        if exclude is not None and key == exclude.casefold():
            continue
        groups[key] = min(groups.get(key, value), value)
    return sorted(groups.values(), key=lambda v: (v.casefold(), v))


def _external_ids(held: ExternalIds | None, mine: ExternalIds) -> ExternalIds:
    if held is None:
        return mine.model_copy(update={"platform_ids": dict(sorted(mine.platform_ids.items()))})
    values: dict[str, Any] = {
        f: getattr(held, f) if getattr(held, f) is not None else getattr(mine, f)
        for f in _ID_FIELDS
    }
    platform_ids = {**held.platform_ids, **mine.platform_ids}
    return ExternalIds(**values, platform_ids=dict(sorted(platform_ids.items())))


def merge_into(
    existing: CanonicalContent | None,
    item: NormalizedItem,
    canonical_id: uuid.UUID,
    genres: Iterable[str],
) -> CanonicalContent:
    """The canonical record after taking in `item`.

    `genres` are the item's mapped canonical genres, possibly empty: the fallback genre is
    applied here only when the record would otherwise have none, so a fallback never lands on
    a record that already has real genres.
    """
    if existing is not None and existing.canonical_id != canonical_id:
        raise ValueError(f"cannot merge into {existing.canonical_id} as {canonical_id}")
    held = existing
    newer = held is None or item.source_updated_at > held.updated_at

    title = item.title if held is None or newer else held.title
    titles = [item.title] if held is None else [held.title, item.title, *held.alternate_titles]
    # Capped (schemas/content.py): a listing renamed again and again must not outgrow its record.
    alternate_titles = _unique_casefold(titles, exclude=title)[:MAX_ALTERNATE_TITLES]

    merged_genres = canonical_order([*(held.genres if held else ()), *genres])
    if not merged_genres:
        merged_genres = fallback_genres(held.content_type if held else item.content_type)

    if item.availability is None:  # nothing said of its offers: they stay as they are
        availability = list(held.availability) if held else []
    else:
        others = [a for a in (held.availability if held else ()) if a.platform != item.platform]
        availability = sorted([*others, *item.availability], key=_availability_order)

    if item.average_rating is not None and (held is None or newer or held.average_rating is None):
        average_rating, rating_count = item.average_rating, item.rating_count
    else:
        average_rating = held.average_rating if held else None
        rating_count = held.rating_count if held else item.rating_count
        if rating_count == 0:
            rating_count = item.rating_count

    credits = list(item.credits)
    if held is not None and held.credits and not (newer and credits):
        credits = list(held.credits)

    images = item.images
    if held is not None:
        images = Images(
            poster=_pick(newer, item.images.poster, held.images.poster),
            backdrop=_pick(newer, item.images.backdrop, held.images.backdrop),
            thumbnail=_pick(newer, item.images.thumbnail, held.images.thumbnail),
        )

    def pick(name: str, mine: Any) -> Any:
        return _pick(newer, mine, getattr(held, name) if held is not None else None)

    return CanonicalContent(
        canonical_id=canonical_id,
        content_type=held.content_type if held else item.content_type,
        title=title,
        original_title=pick("original_title", item.original_title),
        alternate_titles=alternate_titles,
        description=pick("description", item.description),
        release_year=pick("release_year", item.year),
        release_date=pick("release_date", item.release_date),
        runtime_minutes=pick("runtime_minutes", item.runtime_minutes),
        genres=merged_genres,
        maturity_rating=pick("maturity_rating", item.maturity_rating),
        external_ids=_external_ids(held.external_ids if held else None, item.external_ids),
        availability=availability,
        series=pick("series", item.series),
        images=images,
        credits=credits,
        average_rating=average_rating,
        rating_count=rating_count,
        popularity_score=max(item.popularity, held.popularity_score if held else 0.0),
        original_language=pick("original_language", item.original_language),
        keywords=_unique_casefold([*(held.keywords if held else ()), *item.keywords])[
            :MAX_KEYWORDS
        ],
        data_quality_score=held.data_quality_score if held else None,
        source_platforms=sorted({*(held.source_platforms if held else ()), item.platform}),
        updated_at=max(item.source_updated_at, held.updated_at) if held else item.source_updated_at,
    )


def content_changed(
    old: CanonicalContent | None, new: CanonicalContent, *, ignore: Iterable[str] = ("updated_at",)
) -> bool:
    """Whether `new` says anything `old` did not.

    A newer clock alone is not a change: a platform re-sending an unchanged item must not emit
    a content.updated event. Pass ignore=() to compare every field.
    """
    if old is None:
        return True
    skip = set(ignore)
    return old.model_dump(exclude=skip) != new.model_dump(exclude=skip)


def changed_fields(old: CanonicalContent | None, new: CanonicalContent) -> list[str]:
    """Top-level fields whose value differs (the version clock itself does not count)."""
    if old is None:
        return sorted(set(CanonicalContent.model_fields) - {"updated_at"})
    before, after = old.model_dump(mode="json"), new.model_dump(mode="json")
    return sorted(k for k in after if k != "updated_at" and before.get(k) != after.get(k))


def platform_offers(
    content: CanonicalContent | None, platform: str
) -> tuple[PlatformAvailability, ...]:
    """The offers `platform` has of the title now."""
    if content is None:
        return ()
    return tuple(a for a in content.availability if a.platform == platform)


def without_listing(
    content: CanonicalContent, platform: str, item_id: str
) -> tuple[CanonicalContent, tuple[PlatformAvailability, ...]]:
    """The record once the platform's item `item_id` no longer lists this title (it resolved to
    another one), and the offers that leave with it.

    The platform's offers and its id go, and the platform leaves source_platforms; what it
    contributed to the description, genres and the like stays (the record keeps no per-field
    source). Only when the record's id for the platform is this item: a record listed by
    another item of the platform keeps that item's id and offers.
    """
    if content.external_ids.platform_ids.get(platform) != item_id:
        return content, ()
    platform_ids = {p: i for p, i in content.external_ids.platform_ids.items() if p != platform}
    leaving = platform_offers(content, platform)
    return content.model_copy(
        update={
            "availability": [a for a in content.availability if a.platform != platform],
            "external_ids": content.external_ids.model_copy(update={"platform_ids": platform_ids}),
            "source_platforms": [p for p in content.source_platforms if p != platform],
        }
    ), leaving


def merge_submitted(
    held: CanonicalContent | None, submitted: CanonicalContent, fed: Collection[str]
) -> CanonicalContent:
    """The stored record after a trusted producer's record (content.submitted) of the title.

    Who owns what (docs/INGESTION.md, "The trusted path"):
    - the trusted record describes the title: when it is newer than the record, each field it
      fills wins (title, type, year, description, runtime, rating, credits, images, ids, ...,
      and genres and keywords as whole lists); a field it leaves empty keeps what the feeds
      merged, so a partial record never wipes them;
    - the platforms feeding the title (`fed`: those with a platform item mapped to it) own
      their offers and their platform ids: the trusted record cannot change them. It owns the
      offers and ids of the other platforms it names; platforms it does not name keep theirs;
    - a record not newer than the stored one changes nothing (a tie keeps the first applied).
    """
    if held is None:
        return submitted
    if held.canonical_id != submitted.canonical_id:
        raise ValueError(f"cannot merge {submitted.canonical_id} into {held.canonical_id}")
    if submitted.updated_at <= held.updated_at:
        return held

    def pick(name: str) -> Any:
        mine = getattr(submitted, name)
        return getattr(held, name) if mine is None or mine == [] else mine

    named = {a.platform for a in submitted.availability} - set(fed)
    kept = [a for a in held.availability if a.platform not in named]
    offered = [a for a in submitted.availability if a.platform in named]
    ids = {
        f: getattr(submitted.external_ids, f) or getattr(held.external_ids, f) for f in _ID_FIELDS
    }
    platform_ids = {
        **held.external_ids.platform_ids,
        **{p: i for p, i in submitted.external_ids.platform_ids.items() if p not in fed},
    }
    rated = submitted.average_rating is not None
    alternates = [held.title, *held.alternate_titles, *submitted.alternate_titles]
    return submitted.model_copy(
        update={
            "alternate_titles": _unique_casefold(alternates, exclude=submitted.title)[
                :MAX_ALTERNATE_TITLES
            ],
            **{
                name: pick(name)
                for name in (
                    "original_title",
                    "description",
                    "release_year",
                    "release_date",
                    "runtime_minutes",
                    "maturity_rating",
                    "series",
                    "original_language",
                    "credits",
                    "keywords",
                )
            },
            "images": Images(
                poster=submitted.images.poster or held.images.poster,
                backdrop=submitted.images.backdrop or held.images.backdrop,
                thumbnail=submitted.images.thumbnail or held.images.thumbnail,
            ),
            "average_rating": submitted.average_rating if rated else held.average_rating,
            "rating_count": submitted.rating_count if rated else held.rating_count,
            "popularity_score": max(submitted.popularity_score, held.popularity_score),
            "external_ids": ExternalIds(**ids, platform_ids=dict(sorted(platform_ids.items()))),
            "availability": sorted([*kept, *offered], key=_availability_order),
            "source_platforms": sorted({*held.source_platforms, *submitted.source_platforms}),
            "data_quality_score": held.data_quality_score,
        }
    )
