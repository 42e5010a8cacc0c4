"""A user's watchlist as an observed-remove set (OR-Set) of titles.

Every add carries a fresh tag; a title is on the list while it has a tag no remove covers.
- remove with removed_tags tombstones exactly those tags: a tombstone that arrives before its
  add still beats that add, and a re-add (a fresh tag) beats the remove.
- remove with no tags clears the title: it covers every add stamped before the remove (HLC
  order), which is "every tag observed so far" when operations arrive in clock order, and the
  same answer in any other arrival order. An add stamped at the very same HLC survives
  (concurrent add and remove: the add wins).

The state keeps only what decides the outcome (live adds, tombstones, the latest clear per
title), so replicas that saw the same operations in any order, with any duplicates, are equal.

Tombstones and clears are kept for a retention, not forever (`compact`): each tombstone holds
the stamp of the newest remove that named its tag (the maximum, so it is the same on every
replica), and once that stamp is older than the retention the tombstone is dropped, as is a
clear that old. Only an add stamped before the retention and arriving after it could tell the
difference; a remove names tags its client saw, so their adds were written long before, and the
gateway's retries are ignored by event id (docs/SYNC.md, "Tombstones").
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field

from agents.sync.clock import LwwKey, lww_key
from schemas.sync import HLC, WatchlistOperation, WatchlistUpdate


@dataclass(frozen=True, slots=True)
class Added:
    """When and from where one add tag was written."""

    timestamp: HLC
    device_id: str | None

    def key(self) -> LwwKey:
        return lww_key(self.timestamp, self.device_id)


@dataclass(frozen=True, slots=True)
class WatchlistItem:
    content_id: uuid.UUID
    # The newest live add: when the title was (last) put on the list, and by which device.
    added_at: HLC
    device_id: str | None


@dataclass(slots=True)
class WatchlistState:
    """One user's replica. Empty inner collections are never kept, so equal means equal."""

    user_id: str
    adds: dict[uuid.UUID, dict[uuid.UUID, Added]] = field(default_factory=dict)
    # title -> tag -> the stamp of the newest remove that named the tag
    tombstones: dict[uuid.UUID, dict[uuid.UUID, HLC]] = field(default_factory=dict)
    cleared: dict[uuid.UUID, HLC] = field(default_factory=dict)


def _buried(state: WatchlistState, content_id: uuid.UUID, tag: uuid.UUID, added: Added) -> bool:
    if tag in state.tombstones.get(content_id, ()):
        return True
    clear = state.cleared.get(content_id)
    return clear is not None and added.timestamp.order() < clear.order()


def _prune(state: WatchlistState, content_id: uuid.UUID) -> None:
    tags = state.adds.get(content_id)
    if tags is None:
        return
    for tag in [t for t, added in tags.items() if _buried(state, content_id, t, added)]:
        del tags[tag]
    if not tags:
        del state.adds[content_id]


def _add(state: WatchlistState, content_id: uuid.UUID, tag: uuid.UUID, added: Added) -> bool:
    if _buried(state, content_id, tag, added):
        return False
    tags = state.adds.setdefault(content_id, {})
    held = tags.get(tag)
    # A tag is written once; should two writes of it disagree, the later one is kept everywhere.
    if held is not None and held.key() >= added.key():
        return False
    tags[tag] = added
    return True


def _tombstone(state: WatchlistState, content_id: uuid.UUID, tags: Mapping[uuid.UUID, HLC]) -> bool:
    known = state.tombstones.setdefault(content_id, {})
    newer = {
        tag: at for tag, at in tags.items() if tag not in known or known[tag].order() < at.order()
    }
    if not newer:
        if not known:
            del state.tombstones[content_id]
        return False
    known.update(newer)
    _prune(state, content_id)
    return True


def _clear(state: WatchlistState, content_id: uuid.UUID, at: HLC) -> bool:
    held = state.cleared.get(content_id)
    if held is not None and held.order() >= at.order():
        return False
    state.cleared[content_id] = at
    _prune(state, content_id)
    return True


def apply(state: WatchlistState, update: WatchlistUpdate) -> bool:
    """Apply one operation in place; False when it changed nothing (a duplicate, or covered)."""
    if update.user_id != state.user_id:
        raise ValueError(f"update for user {update.user_id!r} on {state.user_id!r}'s watchlist")
    content_id = update.content_id
    if update.operation is WatchlistOperation.add:
        if update.unique_tag is None:  # only reachable past validation (model_construct)
            raise ValueError("an add needs a unique_tag")
        return _add(state, content_id, update.unique_tag, Added(update.timestamp, update.device_id))
    if update.removed_tags:
        return _tombstone(state, content_id, dict.fromkeys(update.removed_tags, update.timestamp))
    return _clear(state, content_id, update.timestamp)


def merge(a: WatchlistState, b: WatchlistState) -> WatchlistState:
    """The join of two replicas of the same user's watchlist: union of adds and tombstones."""
    if a.user_id != b.user_id:
        raise ValueError(f"cannot merge {a.user_id!r}'s watchlist with {b.user_id!r}'s")
    joined = WatchlistState(user_id=a.user_id)
    for replica in (a, b):
        for content_id, at in replica.cleared.items():
            _clear(joined, content_id, at)
        for content_id, tags in replica.tombstones.items():
            _tombstone(joined, content_id, tags)
    for replica in (a, b):
        for content_id, adds in replica.adds.items():
            for tag, added in adds.items():
                _add(joined, content_id, tag, added)
    return joined


def compact_title(state: WatchlistState, content_id: uuid.UUID, before_us: int) -> int:
    """Drop the title's tombstones and clear stamped before `before_us` (physical time, in
    microseconds); how many were dropped. What the list shows is unchanged: they buried their
    adds already."""
    dropped = 0
    tags = state.tombstones.get(content_id, {})
    expired = [tag for tag, at in tags.items() if at.physical_us < before_us]
    for tag in expired:
        del tags[tag]
    dropped += len(expired)
    if content_id in state.tombstones and not tags:
        del state.tombstones[content_id]
    clear = state.cleared.get(content_id)
    if clear is not None and clear.physical_us < before_us:
        del state.cleared[content_id]
        dropped += 1
    return dropped


def compact(state: WatchlistState, before_us: int) -> int:
    """compact_title for every title of the replica."""
    titles = set(state.tombstones) | set(state.cleared)
    return sum(compact_title(state, content_id, before_us) for content_id in titles)


def live_tags(state: WatchlistState, content_id: uuid.UUID) -> set[uuid.UUID]:
    """The tags a remove must name to take the title off the list."""
    return set(state.adds.get(content_id, ()))


def contains(state: WatchlistState, content_id: uuid.UUID) -> bool:
    return content_id in state.adds


def items(state: WatchlistState) -> list[WatchlistItem]:
    """The visible titles, most recently added first."""
    visible = []
    for content_id, tags in state.adds.items():
        newest = max(tags.values(), key=Added.key)
        visible.append(WatchlistItem(content_id, newest.timestamp, newest.device_id))
    visible.sort(
        key=lambda item: (lww_key(item.added_at, item.device_id), item.content_id.int),
        reverse=True,
    )
    return visible


class UnknownTitles(Exception):
    """Adds of titles the catalog does not have. Raised so the agent runtime sets the batch's
    culprits aside (agents/framework/runtime.py bisects a failing batch down to single records
    and dead-letters them, `processing_failed` with this message): the gateway refuses such an
    add with a 404, but another producer of sync.watchlist is not checked. After the title is
    ingested, `mgw dlq replay sync.watchlist` applies the add."""


def adds_of_unknown_titles(
    updates: list[WatchlistUpdate], known: set[uuid.UUID]
) -> list[WatchlistUpdate]:
    """The adds naming a title not in `known`. Removes are never refused: taking off a title
    the catalog dropped, or never had, must stay possible."""
    return [
        u for u in updates if u.operation is WatchlistOperation.add and u.content_id not in known
    ]
