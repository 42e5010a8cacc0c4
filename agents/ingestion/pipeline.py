"""Planning a batch of catalog items: resolve, merge and diff, with no I/O.

The agent loads what resolution needs (mappings, candidate titles), resolves the batch
(`resolve_batch`), loads the full records of the titles it resolved to, merges (`merge_batch`)
and writes the plan in one transaction; `plan_batch` does both steps from full records.
Keeping the decisions here lets unit tests check them without a database.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from collections.abc import Mapping as MappingT
from dataclasses import dataclass, field, replace
from datetime import datetime

from agents.ingestion.availability import AvailabilityDiff, diff_availability
from agents.ingestion.mappings import ItemKey, Mapping, MappingRow
from agents.ingestion.merge import content_changed, merge_into
from agents.ingestion.normalize import NormalizedItem
from agents.ingestion.resolution import Candidate, CandidateIndex, Resolution, assign
from contracts.genres import map_genres
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
    """Indexes of items newer than what was applied for their platform item (newest per item).

    A replayed or older item is skipped entirely: that is what makes a re-run emit nothing.
    """
    newest: dict[ItemKey, int] = {}
    for index, item in enumerate(items):
        key = (item.platform, item.platform_item_id)
        held = newest.get(key)
        if held is None or item.source_updated_at >= items[held].source_updated_at:
            newest[key] = index
    fresh = []
    for key, index in newest.items():
        applied = mappings.get(key)
        if applied is None or items[index].source_updated_at > applied.source_updated_at:
            fresh.append(index)
    return sorted(fresh), len(items) - len(fresh)


@dataclass(frozen=True)
class Assignment:
    """Which title one fresh item (by index in the batch) resolved to, and how."""

    index: int
    resolution: Resolution


@dataclass(frozen=True)
class Resolved:
    assignments: list[Assignment]
    skipped_stale: int

    @property
    def title_ids(self) -> set[uuid.UUID]:
        return {a.resolution.canonical_id for a in self.assignments}  # type: ignore[misc]


def resolve_batch(
    items: Sequence[NormalizedItem],
    mappings: MappingT[ItemKey, Mapping],
    candidates: Iterable[Candidate],
) -> Resolved:
    """Resolve every fresh item, in batch order, against the candidates and each other.

    Resolution looks at candidates' names, ids and years only, never at their full records, so
    the agent can load full records for the titles actually resolved to and nothing else.
    """
    order, skipped = fresh_items(items, mappings)
    index = CandidateIndex(candidates)
    assignments = []
    for i in order:
        resolution = assign(items[i], index)
        assert resolution.canonical_id is not None  # assign always settles on an id
        assignments.append(Assignment(i, resolution))
    return Resolved(assignments, skipped)


def merge_batch(
    items: Sequence[NormalizedItem],
    resolved: Resolved,
    stored: MappingT[uuid.UUID, CanonicalContent],
    mappings: MappingT[ItemKey, Mapping] | None = None,
) -> Plan:
    """Merge the resolved items into the stored records of their titles (or new ones)."""
    plan = Plan(skipped_stale=resolved.skipped_stale)
    applied_before = mappings or {}
    docs: dict[uuid.UUID, CanonicalContent] = {}
    touched_platforms: dict[uuid.UUID, set[str]] = {}
    for assignment in resolved.assignments:
        i, resolution = assignment.index, assignment.resolution
        item = items[i]
        cid = resolution.canonical_id
        assert cid is not None
        genres = map_genres(item.platform, item.raw_genres)
        held = docs.get(cid, stored.get(cid))
        applied = applied_before.get((item.platform, item.platform_item_id))
        if held is not None and applied is not None and applied.availability_updated_at:
            item = _without_older_availability(item, held, applied.availability_updated_at)
        docs[cid] = merge_into(held, item, cid, genres)
        touched_platforms.setdefault(cid, set()).add(item.platform)
        plan.cause[cid] = i
        plan.mappings.append(
            MappingRow(
                item.platform,
                item.platform_item_id,
                cid,
                resolution.method,
                resolution.confidence,
                item.source_updated_at,
                item.warnings,
            )
        )
    for cid, platforms in touched_platforms.items():
        before, after = stored.get(cid), docs[cid]
        if before is None:
            plan.new[cid] = after
        elif content_changed(before, after):
            plan.changed[cid] = (before, after)
        old_availability: Sequence[PlatformAvailability] = before.availability if before else ()
        for platform in sorted(platforms):
            diff = diff_availability(old_availability, after.availability, platform)
            if not diff.empty:
                plan.availability[(cid, platform)] = diff
    return plan


def _without_older_availability(
    item: NormalizedItem, held: CanonicalContent, availability_updated_at: datetime
) -> NormalizedItem:
    """The item, offering what the title already offers on its platform when an
    availability-only update newer than the item set that (ties: the one applied first)."""
    if item.source_updated_at > availability_updated_at:
        return item
    kept = tuple(a for a in held.availability if a.platform == item.platform)
    return replace(item, availability=kept)


def plan_batch(
    items: Sequence[NormalizedItem],
    mappings: MappingT[ItemKey, Mapping],
    candidates: MappingT[uuid.UUID, CanonicalContent],
) -> Plan:
    """Resolve and merge in one go, from full candidate records."""
    resolved = resolve_batch(
        items, mappings, (Candidate.from_content(c) for c in candidates.values())
    )
    return merge_batch(items, resolved, candidates, mappings)
