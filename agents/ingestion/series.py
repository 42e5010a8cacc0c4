"""Series, seasons and episodes: which series an item belongs to and which episode it is.

Pure rules, no I/O (docs/INGESTION.md, "Series"). A series resolves across platforms like a
film (resolution.py); an episode resolves only inside its series, by its own ids, by its
absolute number or by (season, episode) in the catalog's canonical numbering, never by title
alone: two shows' "Pilot" (2021) stay two episodes of two series.

Canonical numbering is the numbering of the listing that created the episode. A platform that
splits or renumbers seasons differently is mapped by a `SeasonMap` (platform season ->
canonical season, episode offset), learnt whenever one of its episodes is identified by ids
or absolute number while its own numbers differ from the canonical ones.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from agents.ingestion.normalize import NormalizedItem
from agents.ingestion.resolution import NAMESPACE, title_similarity
from schemas.content import ContentType, ExternalIds, SeriesMetadata

SPECIALS = 0
# Confidence of each way an episode is found inside its series.
EPISODE_CONFIDENCE = {
    "eidr": 1.0,
    "imdb": 0.99,
    "tmdb": 0.99,
    "tvdb": 0.99,
    "platform_id": 0.99,
    "absolute": 0.97,
    "number": 0.95,
    "special": 0.9,
    "new": 1.0,
}
# Below this similarity two non-generic episode titles veto a match by numbers: the numbers
# then name different episodes (a season split differently that no map covers yet).
TITLE_VETO = 0.5
# Titles that name no episode: "Episode 5", "Chapter Five", "Ep. 5", "Folge 5", "5".
_GENERIC = re.compile(r"^(?:(?:episode|ep|chapter|part|folge|capitulo|episodio)(?:\s+\w+)?|\d+)$")

_ID_KINDS = ("eidr", "imdb", "tmdb", "tvdb")


def is_child(item: NormalizedItem) -> bool:
    """An episode, or a season listing (a series item naming a season): resolved inside its
    series rather than as a title of its own."""
    if item.content_type is ContentType.episode:
        return True
    return item.content_type is ContentType.series and item.season_number is not None


def is_season_listing(item: NormalizedItem) -> bool:
    return item.content_type is ContentType.series and item.season_number is not None


def series_probe(item: NormalizedItem) -> NormalizedItem | None:
    """The series an item names, as an item resolution can look up like any series listing;
    None when it names none (no series title, ids or parent id)."""
    ref = item.series_ref
    if ref is None:
        return None
    ids = ref.external_ids
    # Without a parent id the probe must not look like a listing of the item's platform: the
    # title step refuses a series whose id on the same platform differs from the item's.
    platform = item.platform if ref.parent_id else "_series_of_" + item.platform
    item_id = ref.parent_id or item.platform_item_id
    return replace(
        item,
        platform=platform,
        platform_item_id=item_id,
        content_type=ContentType.series,
        title=ref.title or "",
        normalized_title=ref.normalized_title or "",
        original_title=None,
        year=ref.year,
        release_date=None,
        runtime_minutes=None,
        credits=(),
        external_ids=ids.model_copy(update={"platform_ids": {platform: item_id}}),
        availability=None,
        series=None,
        series_ref=None,
        season_number=None,
        episode_number=None,
        absolute_number=None,
    )


def season_id(series_id: uuid.UUID, season_number: int) -> uuid.UUID:
    return uuid.uuid5(NAMESPACE, f"season:{series_id}:{season_number}")


@dataclass(frozen=True, slots=True)
class KnownEpisode:
    canonical_id: uuid.UUID
    series_id: uuid.UUID
    season_number: int | None
    episode_number: int | None
    absolute_number: int | None
    external_ids: ExternalIds
    normalized_title: str = ""


@dataclass(frozen=True, slots=True)
class SeasonMap:
    """A platform's season `platform_season` is the canonical season `canonical_season`, its
    episode e being canonical episode e + `offset` (a split "Part 2" starts at offset 10)."""

    series_id: uuid.UUID
    platform: str
    platform_season: int
    canonical_season: int
    offset: int


@dataclass(frozen=True, slots=True)
class Numbers:
    season: int | None
    episode: int | None
    absolute: int | None


@dataclass(frozen=True, slots=True)
class EpisodeMatch:
    canonical_id: uuid.UUID
    method: str
    confidence: float
    numbers: Numbers  # canonical
    learnt: SeasonMap | None = None


def is_generic_title(normalized_title: str) -> bool:
    return not normalized_title or bool(_GENERIC.match(normalized_title))


def platform_numbers(item: NormalizedItem) -> Numbers:
    """The item's own numbers. An episode number without a season is an absolute number (how
    anime and daily shows are listed), unless an absolute number is given too."""
    season, episode, absolute = item.season_number, item.episode_number, item.absolute_number
    if season is None and episode is not None:
        return Numbers(None, None, absolute if absolute is not None else episode)
    return Numbers(season, episode, absolute)


def to_canonical(numbers: Numbers, season_map: SeasonMap | None) -> Numbers:
    if season_map is None or numbers.season is None:
        return numbers
    episode = numbers.episode + season_map.offset if numbers.episode is not None else None
    if episode is not None and episode < 1:
        # Before the map's first episode: a map learnt from the second half of a season that
        # the split platform's numbering created does not cover the first half.
        return numbers
    return Numbers(season_map.canonical_season, episode, numbers.absolute)


@dataclass
class SeriesEpisodes:
    """The known episodes of one series, indexed the ways an episode can be found."""

    series_id: uuid.UUID
    by_id: dict[uuid.UUID, KnownEpisode] = field(default_factory=dict)
    _ids: dict[tuple[str, str], uuid.UUID] = field(default_factory=dict)
    _numbers: dict[tuple[int, int], uuid.UUID] = field(default_factory=dict)
    _absolute: dict[int, uuid.UUID] = field(default_factory=dict)

    def add(self, episode: KnownEpisode) -> None:
        """Add an episode, or fold a listing's ids and numbers into the one held."""
        held = self.by_id.get(episode.canonical_id)
        if held is not None:
            fill = {
                k: getattr(episode.external_ids, k)
                for k in _ID_KINDS
                if getattr(held.external_ids, k) is None
            }
            platform_ids = {**held.external_ids.platform_ids, **episode.external_ids.platform_ids}
            episode = KnownEpisode(
                held.canonical_id,
                held.series_id,
                held.season_number if held.season_number is not None else episode.season_number,
                held.episode_number if held.episode_number is not None else episode.episode_number,
                held.absolute_number
                if held.absolute_number is not None
                else episode.absolute_number,
                held.external_ids.model_copy(update={**fill, "platform_ids": platform_ids}),
                held.normalized_title or episode.normalized_title,
            )
        self.by_id[episode.canonical_id] = episode
        for kind in _ID_KINDS:
            value = getattr(episode.external_ids, kind)
            if value:
                self._ids.setdefault((kind, value), episode.canonical_id)
        for platform, item_id in episode.external_ids.platform_ids.items():
            self._ids[(f"platform:{platform}", item_id)] = episode.canonical_id
        if episode.season_number is not None and episode.episode_number is not None:
            self._numbers.setdefault(
                (episode.season_number, episode.episode_number), episode.canonical_id
            )
        if episode.absolute_number is not None:
            self._absolute.setdefault(episode.absolute_number, episode.canonical_id)

    def remove(self, canonical_id: uuid.UUID) -> None:
        """Forget an episode (its listing moved to another one): no lookup finds it again."""
        self.by_id.pop(canonical_id, None)
        self._ids = {k: v for k, v in self._ids.items() if v != canonical_id}
        self._numbers = {k: v for k, v in self._numbers.items() if v != canonical_id}
        self._absolute = {k: v for k, v in self._absolute.items() if v != canonical_id}

    def by_key(self, kind: str, value: str) -> KnownEpisode | None:
        cid = self._ids.get((kind, value))
        return self.by_id.get(cid) if cid else None

    def at(self, season: int, episode: int) -> KnownEpisode | None:
        cid = self._numbers.get((season, episode))
        return self.by_id.get(cid) if cid else None

    def at_absolute(self, absolute: int) -> KnownEpisode | None:
        cid = self._absolute.get(absolute)
        return self.by_id.get(cid) if cid else None


def _conflicting_ids(a: ExternalIds, b: ExternalIds) -> bool:
    return any(
        getattr(a, k) is not None and getattr(b, k) is not None and getattr(a, k) != getattr(b, k)
        for k in _ID_KINDS
    )


def _numbers_of(episode: KnownEpisode) -> Numbers:
    return Numbers(episode.season_number, episode.episode_number, episode.absolute_number)


def _learn(
    series_id: uuid.UUID, platform: str, own: Numbers, known: KnownEpisode
) -> SeasonMap | None:
    """A map from the item's numbering to the canonical one, when they differ."""
    if (
        own.season is None
        or own.episode is None
        or known.season_number is None
        or known.episode_number is None
        or own.season == SPECIALS
    ):
        return None
    offset = known.episode_number - own.episode
    if own.season == known.season_number and offset == 0:
        return None
    return SeasonMap(series_id, platform, own.season, known.season_number, offset)


def match_episode(
    item: NormalizedItem,
    episodes: SeriesEpisodes,
    season_maps: Mapping[tuple[str, int], SeasonMap],
) -> EpisodeMatch:
    """Which episode of `episodes`' series the item is, or a new one (with a minted id)."""
    own = platform_numbers(item)
    mapped = to_canonical(own, season_maps.get((item.platform, own.season or -1)))

    def found(known: KnownEpisode, method: str) -> EpisodeMatch:
        learnt = _learn(episodes.series_id, item.platform, own, known)
        numbers = _numbers_of(known)
        # A number the stored episode lacks is filled from the item.
        numbers = Numbers(
            numbers.season if numbers.season is not None else mapped.season,
            numbers.episode if numbers.episode is not None else mapped.episode,
            numbers.absolute if numbers.absolute is not None else mapped.absolute,
        )
        return EpisodeMatch(known.canonical_id, method, EPISODE_CONFIDENCE[method], numbers, learnt)

    ids = item.external_ids
    for kind in _ID_KINDS:
        value = getattr(ids, kind)
        known = episodes.by_key(kind, value) if value else None
        if known is not None and not _conflicting_ids(known.external_ids, ids):
            return found(known, kind)
    known = episodes.by_key(f"platform:{item.platform}", item.platform_item_id)
    if known is not None and not _conflicting_ids(known.external_ids, ids):
        return found(known, "platform_id")

    def eligible(known: KnownEpisode | None) -> bool:
        if known is None or _conflicting_ids(known.external_ids, ids):
            return False
        # This platform lists another item as that episode: two items, two episodes.
        other = known.external_ids.platform_ids.get(item.platform)
        if other is not None and other != item.platform_item_id:
            return False
        if (
            mapped.absolute is not None
            and known.absolute_number is not None
            and mapped.absolute != known.absolute_number
        ):
            return False
        return not _titles_disagree(item.normalized_title, known.normalized_title)

    if mapped.absolute is not None and mapped.season != SPECIALS:
        known = episodes.at_absolute(mapped.absolute)
        if eligible(known):
            return found(known, "absolute")  # type: ignore[arg-type]
    if mapped.season is not None and mapped.episode is not None:
        known = episodes.at(mapped.season, mapped.episode)
        if mapped.season == SPECIALS:
            # Platforms number specials each their own way: the number alone is no evidence.
            if eligible(known) and known.normalized_title == item.normalized_title:  # type: ignore[union-attr]
                return found(known, "special")  # type: ignore[arg-type]
        elif eligible(known):
            return found(known, "number")  # type: ignore[arg-type]
    cid = new_episode_id(episodes, item, mapped)
    return EpisodeMatch(cid, "new", 1.0, mapped)


def misplaced(
    episodes: SeriesEpisodes, learnt: SeasonMap, maps: Mapping[tuple[str, int], SeasonMap]
) -> list[tuple[KnownEpisode, KnownEpisode]]:
    """(episode, the episode it is) for each episode a listing of the learnt map's season
    created before the map existed, now that the map names the canonical episode it is.

    Such an episode was placed in the platform's own numbering (no map then): its numbers are
    the platform's, and the map turns them into the canonical ones. Only an episode the
    platform alone lists qualifies (any other listing would be evidence of its own), and only
    when no map of the platform leads into that season number (its numbers could then be
    mapped ones already). The target passes the guards of a match by number: no conflicting
    ids, no other item of the platform, no different absolute number, no disagreeing titles.
    `maps`: the platform's maps known before this one (series_maps of plan_children).
    """
    season = learnt.platform_season
    if season == SPECIALS or any(
        m.platform == learnt.platform and m.canonical_season == season and m != learnt
        for m in maps.values()
    ):
        return []
    found = []
    for gone in sorted(episodes.by_id.values(), key=lambda e: str(e.canonical_id)):
        platform_ids = gone.external_ids.platform_ids
        if (
            set(platform_ids) != {learnt.platform}
            or gone.season_number != season
            or gone.episode_number is None
        ):
            continue
        target = episodes.at(learnt.canonical_season, gone.episode_number + learnt.offset)
        if target is None or target.canonical_id == gone.canonical_id:
            continue
        if (
            _conflicting_ids(target.external_ids, gone.external_ids)
            or learnt.platform in target.external_ids.platform_ids
            or (
                gone.absolute_number is not None
                and target.absolute_number is not None
                and gone.absolute_number != target.absolute_number
            )
            or _titles_disagree(gone.normalized_title, target.normalized_title)
        ):
            continue
        found.append((gone, target))
    return found


def _titles_disagree(a: str, b: str) -> bool:
    if is_generic_title(a) or is_generic_title(b):
        return False
    return title_similarity(a, b) < TITLE_VETO and not (a in b or b in a)


def episode_identity(item: NormalizedItem, numbers: Numbers) -> str:
    ids = item.external_ids
    for kind in _ID_KINDS:
        value = getattr(ids, kind)
        if value:
            return f"{kind}:{value}"
    if numbers.season is not None and numbers.episode is not None and numbers.season != SPECIALS:
        return f"S{numbers.season}E{numbers.episode}"
    if numbers.absolute is not None and numbers.season != SPECIALS:
        return f"abs:{numbers.absolute}"
    return item.record_key


def new_episode_id(episodes: SeriesEpisodes, item: NormalizedItem, numbers: Numbers) -> uuid.UUID:
    """Deterministic inside its series; never the id of an episode the item was kept from."""
    key = f"episode:{episodes.series_id}:{episode_identity(item, numbers)}"
    cid = uuid.uuid5(NAMESPACE, key)
    if cid in episodes.by_id:
        cid = uuid.uuid5(NAMESPACE, f"{key}|{item.record_key}")
    return cid


def known_from(
    cid: uuid.UUID, series_id: uuid.UUID, item: NormalizedItem, n: Numbers
) -> KnownEpisode:
    return KnownEpisode(
        cid, series_id, n.season, n.episode, n.absolute, item.external_ids, item.normalized_title
    )


def with_episode(item: NormalizedItem, series_id: uuid.UUID, numbers: Numbers) -> NormalizedItem:
    """The item carrying its place in its series, in canonical numbers (what merge stores)."""
    return replace(
        item,
        series=SeriesMetadata(
            parent_id=series_id,
            season_id=season_id(series_id, numbers.season) if numbers.season is not None else None,
            season_number=numbers.season,
            episode_number=numbers.episode,
            absolute_number=numbers.absolute,
        ),
    )
