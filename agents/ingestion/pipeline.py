"""Planning a batch of catalog items: resolve, merge and diff, with no I/O.

The agent loads what resolution needs (mappings, candidate titles), resolves the batch
(`resolve_batch`), loads the full records of the titles it resolved to, merges (`merge_batch`)
and writes the plan in one transaction; `plan_batch` does both steps from full records.
Keeping the decisions here lets unit tests check them without a database.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Iterable, Sequence
from collections.abc import Mapping as MappingT
from dataclasses import dataclass, field, replace

from agents.ingestion.availability import AvailabilityDiff, platform_diffs
from agents.ingestion.mappings import ItemKey, Mapping, MappingRow
from agents.ingestion.merge import content_changed, merge_into, platform_offers, without_listing
from agents.ingestion.normalize import NormalizedItem
from agents.ingestion.resolution import CanonicalMatch, KnownTitle, KnownTitleIndex, assign
from agents.titles.versions import newest_per_key, supersedes
from agreements.genres import map_genres
from schemas.content import CanonicalContent, PlatformAvailability


@dataclass
class Plan:
    """What one batch changes."""

    new: dict[uuid.UUID, CanonicalContent] = field(default_factory=dict)
    changed: dict[uuid.UUID, tuple[CanonicalContent, CanonicalContent]] = field(
        default_factory=dict
    )  # id -> (before, after)
    availability: dict[tuple[uuid.UUID, str], AvailabilityDiff] = field(default_factory=dict)
    mappings: list[MappingRow] = field(default_factory=list)
    # Which item (by index in the batch) last touched each title: its event's correlation id.
    cause: dict[uuid.UUID, int] = field(default_factory=dict)
    skipped_stale: int = 0

    @property
    def written(self) -> dict[uuid.UUID, CanonicalContent]:
        return {**self.new, **{cid: after for cid, (_, after) in self.changed.items()}}


def fresh_items(
    items: Sequence[NormalizedItem], mappings: MappingT[ItemKey, Mapping]
) -> tuple[list[int], int]:
    """Indexes of items newer than what was applied for their platform item (newest per item;
    of two with the same clock, the first: agents/titles/versions.py).

    A replayed or older item is skipped entirely: that is what makes a re-run emit nothing.
    """
    newest = newest_per_key(
        range(len(items)),
        key=lambda i: (items[i].platform, items[i].platform_item_id),
        clock=lambda i: items[i].source_updated_at,
    )
    fresh = [
        index
        for key, index in newest.items()
        if supersedes(
            items[index].source_updated_at,
            applied.source_updated_at if (applied := mappings.get(key)) else None,
        )
    ]
    return sorted(fresh), len(items) - len(fresh)


@dataclass(frozen=True)
class Assignment:
    """Which title one fresh item (by index in the batch) resolved to, and how; `moved_from`:
    the title the item was attached to until now, when that is another one."""

    index: int
    resolution: CanonicalMatch
    moved_from: uuid.UUID | None = None


@dataclass(frozen=True)
class Resolved:
    assignments: list[Assignment]
    skipped_stale: int
    # The fresh items left to series_plan (episodes, season listings), by index, in order.
    children: list[int] = field(default_factory=list)
    # The index after the batch's titles were assigned: the children's series are found in it.
    index: KnownTitleIndex | None = None

    @property
    def title_ids(self) -> set[uuid.UUID]:
        """The titles the batch writes: those resolved to and those items moved away from."""
        ids = {a.resolution.canonical_id for a in self.assignments}
        ids |= {a.moved_from for a in self.assignments}
        return ids - {None}  # type: ignore[return-value]


def resolve_batch(
    items: Sequence[NormalizedItem],
    mappings: MappingT[ItemKey, Mapping],
    candidates: Iterable[KnownTitle],
    children: Collection[int] = (),
) -> Resolved:
    """Resolve every fresh item, in batch order, against the candidates and each other.

    Resolution looks at candidates' names, ids and years only, never at their full records, so
    the agent can load full records for the titles actually resolved to and nothing else.
    `children` (episodes and season listings naming a series) are only sorted out: they are
    resolved inside their series afterwards (series_plan.plan_children).
    """
    order, skipped = fresh_items(items, mappings)
    index = KnownTitleIndex(candidates)
    assignments = []
    for i in order:
        if i in children:
            continue
        resolution = assign(items[i], index)
        assert resolution.canonical_id is not None  # assign always settles on an id
        applied = mappings.get((items[i].platform, items[i].platform_item_id))
        # The stored mapping says where the item was; resolution's previous_id says the same
        # from the titles' platform ids (which an old record may lack).
        before = applied.canonical_id if applied is not None else resolution.previous_id
        moved_from = before if before != resolution.canonical_id else None
        assignments.append(Assignment(i, resolution, moved_from))
    return Resolved(assignments, skipped, [i for i in order if i in children], index)


def merge_batch(
    items: Sequence[NormalizedItem],
    resolved: Resolved,
    stored: MappingT[uuid.UUID, CanonicalContent],
    mappings: MappingT[ItemKey, Mapping] | None = None,
) -> Plan:
    """Merge the resolved items into the stored records of their titles (or new ones).

    An item that now resolves to another title than before takes its listing along: its
    platform id and its offers leave the old title, which is written and announced too.
    """
    plan = Plan(skipped_stale=resolved.skipped_stale)
    applied_before = mappings or {}
    docs: dict[uuid.UUID, CanonicalContent] = {}
    touched_platforms: dict[uuid.UUID, set[str]] = {}

    def current(cid: uuid.UUID) -> CanonicalContent | None:
        return docs.get(cid, stored.get(cid))

    def touch(cid: uuid.UUID, platform: str, cause: int) -> None:
        touched_platforms.setdefault(cid, set()).add(platform)
        plan.cause[cid] = cause

    for assignment in resolved.assignments:
        i, resolution = assignment.index, assignment.resolution
        item = items[i]
        cid = resolution.canonical_id
        assert cid is not None
        genres = map_genres(item.platform, item.raw_genres)
        held = current(cid)
        # The offers the item holds now: those it takes off the title it leaves, else those of
        # its platform on its title.
        leaving: tuple[PlatformAvailability, ...] = ()
        left = current(assignment.moved_from) if assignment.moved_from else None
        if left is not None:
            docs[left.canonical_id], leaving = without_listing(
                left, item.platform, item.platform_item_id
            )
            touch(left.canonical_id, item.platform, i)
        offered = leaving or platform_offers(held, item.platform)
        applied = applied_before.get((item.platform, item.platform_item_id))
        docs[cid] = merge_into(held, _with_offers(item, offered, applied), cid, genres)
        touch(cid, item.platform, i)
        plan.mappings.append(
            MappingRow(
                item.platform,
                item.platform_item_id,
                cid,
                resolution.method,
                resolution.confidence,
                item.source_updated_at,
                item.warnings,
                offers_as_of=item.source_updated_at if item.availability is not None else None,
            )
        )
    for cid, platforms in touched_platforms.items():
        before, after = stored.get(cid), docs[cid]
        if before is None:
            plan.new[cid] = after
        elif content_changed(before, after):
            plan.changed[cid] = (before, after)
        old_availability = before.availability if before else []
        for platform, diff in platform_diffs(
            old_availability, after.availability, platforms
        ).items():
            plan.availability[(cid, platform)] = diff
    return plan


def _with_offers(
    item: NormalizedItem, offered: tuple[PlatformAvailability, ...], applied: Mapping | None
) -> NormalizedItem:
    """The item, offering what its platform offers of it now (`offered`) when it says nothing
    of its offers, or when offers newer than the item were applied (an availability-only
    update; ties: the one applied first)."""
    if item.availability is not None and supersedes(
        item.source_updated_at, applied.offers_as_of if applied else None
    ):
        return item
    return replace(item, availability=offered)


def plan_batch(
    items: Sequence[NormalizedItem],
    mappings: MappingT[ItemKey, Mapping],
    candidates: MappingT[uuid.UUID, CanonicalContent],
) -> Plan:
    """Resolve and merge in one go, from full candidate records."""
    resolved = resolve_batch(
        items, mappings, (KnownTitle.from_content(c) for c in candidates.values())
    )
    return merge_batch(items, resolved, candidates, mappings)
