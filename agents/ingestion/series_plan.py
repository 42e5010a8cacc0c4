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
from dataclasses import dataclass, field, replace
from datetime import datetime

from agents.ingestion.mappings import ItemKey, Mapping, MappingRow
from agents.ingestion.merge import platform_offers
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
    EPISODE_CONFIDENCE,
    KnownEpisode,
    Numbers,
    SeasonMap,
    SeriesEpisodes,
    is_child,
    is_season_listing,
    known_from,
    match_episode,
    misplaced,
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


@dataclass(frozen=True, slots=True)
class Refold:
    """A stored episode that one platform item alone lists, created in the platform's own
    numbering before the map of its season was learnt: the listing moves to `target`, the
    episode the map names (docs/INGESTION.md, "Renumbered and split seasons")."""

    gone: uuid.UUID
    target: uuid.UUID
    platform: str
    platform_item_id: str
    cause: int  # the batch item whose episode taught the map


REFOLD = CanonicalMatch(None, "episode_refold", EPISODE_CONFIDENCE["number"])


@dataclass
class ChildPlan:
    assignments: list[Assignment] = field(default_factory=list)
    items: dict[int, NormalizedItem] = field(default_factory=dict)  # with their series metadata
    episodes: list[EpisodeRow] = field(default_factory=list)
    season_maps: list[SeasonMap] = field(default_factory=list)
    season_listings: list[SeasonListing] = field(default_factory=list)
    parked: list[int] = field(default_factory=list)
    refolds: list[Refold] = field(default_factory=list)

    @property
    def refold_ids(self) -> set[uuid.UUID]:
        """The stored episodes the refolds read and write."""
        return {r.gone for r in self.refolds} | {r.target for r in self.refolds}

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
    known_episodes = list(known_episodes)
    stored = {k.canonical_id for k in known_episodes}
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
        first_map = False
        if (
            learnt is not None
            and series_maps.get((item.platform, learnt.platform_season)) != learnt
        ):
            first_map = (item.platform, learnt.platform_season) not in series_maps
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
        if first_map and learnt is not None:
            _refold(plan, items, known, learnt, series_maps, stored, i)
    return plan


def _refold(
    plan: ChildPlan,
    items: Sequence[NormalizedItem],
    known: SeriesEpisodes,
    learnt: SeasonMap,
    series_maps: MappingT[tuple[str, int], SeasonMap],
    stored: set[uuid.UUID],
    cause: int,
) -> None:
    """Move the listings placed before `learnt` existed onto the episodes it names.

    A stored episode becomes a Refold (merged after the records are loaded: refold_items); an
    episode this batch created a moment ago is its item placed again. An episode this batch
    lists again, or that two of its items made, is left as it is: a missed merge, never a
    wrong one.
    """
    for gone, target in misplaced(known, learnt, series_maps):
        item_id = gone.external_ids.platform_ids[learnt.platform]
        placed = [
            n
            for n, a in enumerate(plan.assignments)
            if a.resolution.canonical_id == gone.canonical_id
        ]
        if gone.canonical_id in stored:
            if placed:
                continue
            plan.refolds.append(
                Refold(gone.canonical_id, target.canonical_id, learnt.platform, item_id, cause)
            )
        else:
            if len(placed) != 1:
                continue
            before = plan.assignments[placed[0]]
            j = before.index
            numbers = Numbers(
                target.season_number,
                target.episode_number,
                target.absolute_number
                if target.absolute_number is not None
                else gone.absolute_number,
            )
            moved_from = before.moved_from if before.moved_from != target.canonical_id else None
            plan.assignments[placed[0]] = Assignment(
                j, replace(REFOLD, canonical_id=target.canonical_id), moved_from
            )
            plan.items[j] = with_episode(items[j], known.series_id, numbers)
            plan.episodes = [e for e in plan.episodes if e.canonical_id != gone.canonical_id]
            plan.episodes.append(
                EpisodeRow(
                    target.canonical_id,
                    known.series_id,
                    season_id(known.series_id, numbers.season)
                    if numbers.season is not None
                    else None,
                    numbers.season,
                    numbers.episode,
                    numbers.absolute,
                )
            )
        known.remove(gone.canonical_id)
        # The listing's ids now find the target (add folds them into the episode held).
        known.add(
            replace(
                gone,
                canonical_id=target.canonical_id,
                season_number=None,
                episode_number=None,
                absolute_number=None,
                normalized_title="",
            )
        )


def listing_of(record: CanonicalContent, platform: str, item_id: str) -> NormalizedItem:
    """The platform's listing as the record it alone made holds it: an item merge_batch can
    move onto another title like any item that resolves elsewhere."""
    return NormalizedItem(
        platform=platform,
        platform_item_id=item_id,
        content_type=record.content_type,
        title=record.title,
        normalized_title=normalize_title(record.title),
        original_title=record.original_title,
        year=record.release_year,
        release_date=record.release_date,
        runtime_minutes=record.runtime_minutes,
        raw_genres=tuple(record.genres),
        description=record.description,
        maturity_rating=record.maturity_rating,
        average_rating=record.average_rating,
        rating_count=record.rating_count,
        popularity=record.popularity_score,
        original_language=record.original_language,
        external_ids=record.external_ids,
        availability=platform_offers(record, platform),
        keywords=tuple(record.keywords),
        credits=tuple(record.credits),
        images=record.images,
        # The target keeps its place; the listing's numbers were the platform's own.
        series=None,
        source_updated_at=record.updated_at,
    )


def refold_items(
    items: Sequence[NormalizedItem],
    resolved: Resolved,
    child: ChildPlan,
    stored: MappingT[uuid.UUID, CanonicalContent],
) -> tuple[list[NormalizedItem], Resolved]:
    """The batch with each refold as one more item (after the batch's own), resolved to the
    target and moving from the episode it made: merge_batch then moves its platform id and
    offers like those of any item that resolves to another title."""
    out = list(items)
    assignments = list(resolved.assignments)
    for r in child.refolds:
        record = stored.get(r.gone)
        if record is None or r.target not in stored:
            continue
        if record.external_ids.platform_ids.get(r.platform) != r.platform_item_id:
            continue
        out.append(listing_of(record, r.platform, r.platform_item_id))
        match = replace(REFOLD, canonical_id=r.target)
        assignments.append(Assignment(len(out) - 1, match, r.gone))
    return out, Resolved(assignments, resolved.skipped_stale, resolved.children, resolved.index)


@dataclass(frozen=True)
class Refolded:
    """What the refolds of a merged plan write besides it: the mappings of the moved listings
    (written whatever their clock: no newer item moved them), each with the episode it leaves,
    which is no episode of the series any more."""

    moves: list[tuple[MappingRow, uuid.UUID]]

    @property
    def gone(self) -> list[uuid.UUID]:
        return [g for _, g in self.moves]


def settle_refolds(plan: Plan, child: ChildPlan, batch_size: int) -> Refolded:
    """Take the refolds' mapping rows out of `plan` (their clock is not newer than the one
    applied, so the plan's conditional upsert would skip them) and charge what they changed
    to the item that taught the map (the event's cause)."""
    causes = {(r.platform, r.platform_item_id): r for r in child.refolds}
    # Only the refolds' own rows: an item of the batch placed again (_refold) is newer than
    # what was applied and goes through the plan like any item.
    moved = [
        m
        for m in plan.mappings
        if m.method == REFOLD.method and (m.platform, m.platform_item_id) in causes
    ]
    plan.mappings = [m for m in plan.mappings if m not in moved]
    by_cid = {r.target: r.cause for r in child.refolds} | {r.gone: r.cause for r in child.refolds}
    for cid, index in list(plan.cause.items()):
        if index >= batch_size:
            plan.cause[cid] = by_cid.get(cid, 0)
    return Refolded([(m, causes[(m.platform, m.platform_item_id)].gone) for m in moved])


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
    placed, combined = refold_items(placed, combined, child, candidates)
    plan = merge_batch(placed, combined, candidates, mappings)
    refolded = settle_refolds(plan, child, len(items))
    plan.mappings += season_listing_mappings(placed, child)
    # Written apart by the agent (series_store.remap); here the plan shows every mapping.
    plan.mappings += [row for row, _ in refolded.moves]
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
