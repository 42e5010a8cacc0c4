"""Planning the television part of a batch: episodes and season listings, with no I/O.

Runs after the batch's other items were resolved (so a series arriving in the same batch as
its episodes is known): each episode or season listing finds its series (series.series_probe
through resolution.resolve, or the mapping of its platform parent id), then an episode finds
itself inside the series (series.match_episode). What names no series found is parked by the
agent until a series it names is mapped (docs/INGESTION.md, "Series").
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from collections.abc import Mapping as MappingT
from dataclasses import dataclass, field
from datetime import datetime

from agents.ingestion.mappings import ItemKey, Mapping, MappingRow
from agents.ingestion.normalize import NormalizedItem
from agents.ingestion.pipeline import Assignment, Plan, Resolved, merge_batch, resolve_batch
from agents.ingestion.resolution import (
    CanonicalMatch,
    KnownTitle,
    KnownTitleIndex,
    media_kind,
    resolve,
)
from agents.ingestion.series import (
    KnownEpisode,
    Numbers,
    SeasonMap,
    SeriesEpisodes,
    is_child,
    is_season_listing,
    known_from,
    match_episode,
    season_id,
    series_probe,
    to_canonical,
    with_episode,
)
from agents.titles.names import normalize_title
from agents.titles.versions import supersedes
from schemas.content import CanonicalContent, ContentType, PlatformAvailability


@dataclass(frozen=True, slots=True)
class EpisodeRow:
    """One row of the `episodes` relation."""

    canonical_id: uuid.UUID
    series_id: uuid.UUID
    season_id: uuid.UUID | None
    season_number: int | None
    episode_number: int | None
    absolute_number: int | None


@dataclass(frozen=True, slots=True)
class SeasonListing:
    """A platform's listing of a whole season (its offers hold for the season)."""

    index: int
    series_id: uuid.UUID
    season_number: int  # canonical
    match: CanonicalMatch


@dataclass
class ChildPlan:
    assignments: list[Assignment] = field(default_factory=list)
    items: dict[int, NormalizedItem] = field(default_factory=dict)  # with their series metadata
    episodes: list[EpisodeRow] = field(default_factory=list)
    season_maps: list[SeasonMap] = field(default_factory=list)
    season_listings: list[SeasonListing] = field(default_factory=list)
    parked: list[int] = field(default_factory=list)

    @property
    def series_ids(self) -> set[uuid.UUID]:
        return {e.series_id for e in self.episodes} | {s.series_id for s in self.season_listings}


def parent_keys(items: Iterable[NormalizedItem]) -> list[ItemKey]:
    """The platform items the batch's children name as their parents (load their mappings)."""
    return [
        (i.platform, i.series_ref.parent_id)
        for i in items
        if i.series_ref is not None and i.series_ref.parent_id
    ]


def probes(items: Iterable[NormalizedItem]) -> list[NormalizedItem]:
    """The series the children name, as items lookup_keys can load candidates for."""
    return [p for i in items if (p := series_probe(i)) is not None]


def find_series(
    item: NormalizedItem, index: KnownTitleIndex, mappings: MappingT[ItemKey, Mapping]
) -> CanonicalMatch | None:
    probe = series_probe(item)
    if probe is None:
        return None
    ref = item.series_ref
    assert ref is not None
    if ref.parent_id:
        # The platform's parent is its series listing, or a season listing mapped to the series.
        parent = mappings.get((item.platform, ref.parent_id))
        held = index.get(parent.canonical_id) if parent else None
        if held is not None and held.content_type is ContentType.series:
            return CanonicalMatch(held.canonical_id, "parent_id", 0.99)
    found = resolve(probe, index)
    if found.canonical_id is None:
        return None
    held = index.get(found.canonical_id)
    if held is None or held.content_type is not ContentType.series:
        return None
    return found


def plan_children(
    items: Sequence[NormalizedItem],
    order: Iterable[int],
    mappings: MappingT[ItemKey, Mapping],
    index: KnownTitleIndex,
    known_episodes: Iterable[KnownEpisode],
    season_maps: Iterable[SeasonMap],
) -> ChildPlan:
    """Series and episode of each child (by index in the batch, fresh ones only, in order)."""
    plan = ChildPlan()
    episodes: dict[uuid.UUID, SeriesEpisodes] = {}
    for known in known_episodes:
        episodes.setdefault(known.series_id, SeriesEpisodes(known.series_id)).add(known)
    maps: dict[uuid.UUID, dict[tuple[str, int], SeasonMap]] = {}
    for m in season_maps:
        maps.setdefault(m.series_id, {})[(m.platform, m.platform_season)] = m
    for i in order:
        item = items[i]
        series = find_series(item, index, mappings)
        if series is None or series.canonical_id is None:
            plan.parked.append(i)
            continue
        sid = series.canonical_id
        series_maps = maps.setdefault(sid, {})
        if is_season_listing(item):
            assert item.season_number is not None
            mapped = to_canonical(
                Numbers(item.season_number, None, None),
                series_maps.get((item.platform, item.season_number)),
            )
            assert mapped.season is not None
            plan.season_listings.append(SeasonListing(i, sid, mapped.season, series))
            continue
        known = episodes.setdefault(sid, SeriesEpisodes(sid))
        match = match_episode(item, known, series_maps)
        learnt = match.learnt
        if (
            learnt is not None
            and series_maps.get((item.platform, learnt.platform_season)) != learnt
        ):
            series_maps[(learnt.platform, learnt.platform_season)] = learnt
            plan.season_maps.append(learnt)
        known.add(known_from(match.canonical_id, sid, item, match.numbers))
        applied = mappings.get((item.platform, item.platform_item_id))
        moved_from = (
            applied.canonical_id
            if applied is not None and applied.canonical_id != match.canonical_id
            else None
        )
        resolution = CanonicalMatch(match.canonical_id, f"episode_{match.method}", match.confidence)
        plan.assignments.append(Assignment(i, resolution, moved_from))
        # The series by its id only: each platform spells its title its own way, and a record
        # that changed with every listing's spelling would be announced again and again.
        plan.items[i] = with_episode(item, sid, match.numbers)
        n = match.numbers
        plan.episodes.append(
            EpisodeRow(
                match.canonical_id,
                sid,
                season_id(sid, n.season) if n.season is not None else None,
                n.season,
                n.episode,
                n.absolute,
            )
        )
    return plan


def series_keys(content: CanonicalContent) -> set[str]:
    """The keys a parked episode may name this series by (pending_episodes.keys)."""
    return _keys(
        content.external_ids.eidr,
        content.external_ids.imdb,
        content.external_ids.tmdb,
        content.external_ids.tvdb,
        content.external_ids.platform_ids.items(),
        [content.title, *content.alternate_titles],
    )


def listing_keys(platform: str, platform_item_id: str) -> set[str]:
    """A season listing is a parent too: episodes may name it by its platform id."""
    return {f"platform:{platform}:{platform_item_id}"}


def wanted_keys(item: NormalizedItem) -> set[str]:
    """The keys a parked child waits for: any one of them names its series."""
    ref = item.series_ref
    if ref is None:
        return set()
    ids = ref.external_ids
    parents = [(item.platform, ref.parent_id)] if ref.parent_id else []
    return _keys(ids.eidr, ids.imdb, ids.tmdb, ids.tvdb, parents, [ref.title] if ref.title else [])


def _keys(
    eidr: str | None,
    imdb: str | None,
    tmdb: str | None,
    tvdb: str | None,
    platform_ids: Iterable[tuple[str, str]],
    titles: Iterable[str],
) -> set[str]:
    kind = media_kind(ContentType.series)
    keys = {f"platform:{p}:{v}" for p, v in platform_ids}
    keys |= {f"title:{normalize_title(t)}" for t in titles}
    for name, value in (("eidr", eidr), ("imdb", imdb), ("tmdb", tmdb), ("tvdb", tvdb)):
        if value:
            keys.add(f"{name}:{kind}:{value}" if name in ("tmdb", "tvdb") else f"{name}:{value}")
    return keys


def season_listing_mappings(items: Sequence[NormalizedItem], plan: ChildPlan) -> list[MappingRow]:
    """A season listing's platform item maps to its series (method `season_listing`)."""
    return [
        MappingRow(
            items[s.index].platform,
            items[s.index].platform_item_id,
            s.series_id,
            f"season_{s.match.method}",
            s.match.confidence,
            items[s.index].source_updated_at,
            items[s.index].warnings,
            offers_as_of=items[s.index].source_updated_at
            if items[s.index].availability is not None
            else None,
        )
        for s in plan.season_listings
    ]


def plan_with_series(
    items: Sequence[NormalizedItem],
    mappings: MappingT[ItemKey, Mapping],
    candidates: MappingT[uuid.UUID, CanonicalContent],
    known_episodes: Iterable[KnownEpisode] = (),
    season_maps: Iterable[SeasonMap] = (),
) -> tuple[Plan, ChildPlan]:
    """A whole batch, television included, from full records: the steps process-batch takes
    with its loads in between (for tests and the sample catalog's checks)."""
    children = {i for i, item in enumerate(items) if is_child(item) and series_probe(item)}
    resolved = resolve_batch(
        items, mappings, (KnownTitle.from_content(c) for c in candidates.values()), children
    )
    assert resolved.index is not None
    child = plan_children(
        items, resolved.children, mappings, resolved.index, known_episodes, season_maps
    )
    placed = [child.items.get(i, item) for i, item in enumerate(items)]
    combined = Resolved(resolved.assignments + child.assignments, resolved.skipped_stale)
    plan = merge_batch(placed, combined, candidates, mappings)
    plan.mappings += season_listing_mappings(placed, child)
    return plan, child


def known_episodes_of(plan: Plan, child: ChildPlan) -> list[KnownEpisode]:
    """The episodes a plan wrote, as the next batch would load them (series_store)."""
    written = plan.written
    return [
        KnownEpisode(
            e.canonical_id,
            e.series_id,
            e.season_number,
            e.episode_number,
            e.absolute_number,
            written[e.canonical_id].external_ids,
            normalize_title(written[e.canonical_id].title),
        )
        for e in {e.canonical_id: e for e in child.episodes}.values()
        if e.canonical_id in written
    ]


def season_offers(
    items: Sequence[NormalizedItem], plan: ChildPlan, mappings: MappingT[ItemKey, Mapping]
) -> list[tuple[uuid.UUID, int, str, tuple[PlatformAvailability, ...]]]:
    """(series, season, platform, offers) each season listing replaces: those that state
    offers, newer than the offers applied for the item (as for a title's offers: an
    availability-only update newer than the item wins)."""
    out = []
    for listing in plan.season_listings:
        item = items[listing.index]
        applied = mappings.get((item.platform, item.platform_item_id))
        if item.availability is not None and supersedes(
            item.source_updated_at, applied.offers_as_of if applied else None
        ):
            out.append((listing.series_id, listing.season_number, item.platform, item.availability))
    return out


def release_keys(
    docs: Iterable[CanonicalContent], items: Sequence[NormalizedItem], plan: ChildPlan
) -> set[str]:
    """The keys of the series a batch wrote or resolved to, and of its season listings: the
    parked children naming any of them can be placed now."""
    keys: set[str] = set()
    for doc in docs:
        if doc.content_type is ContentType.series:
            keys |= series_keys(doc)
    for s in plan.season_listings:
        keys |= listing_keys(items[s.index].platform, items[s.index].platform_item_id)
    return keys


def parked_rows(
    items: Sequence[NormalizedItem], plan: ChildPlan
) -> list[tuple[ItemKey, datetime, list[str]]]:
    """(item, clock, keys it waits for) of each parked child, in plan.parked's order."""
    return [
        (
            (items[i].platform, items[i].platform_item_id),
            items[i].source_updated_at,
            sorted(wanted_keys(items[i])),
        )
        for i in plan.parked
    ]
