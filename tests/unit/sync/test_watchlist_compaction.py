"""Tombstone stamps and compaction as pure rules: the stamp a tombstone holds is the same in
any order of arrival, and compaction drops only what is older than its cutoff, never changing
what the list shows."""

from __future__ import annotations

import itertools

from agents.sync.records import decode_titles, encode_title
from agents.sync.watchlist import WatchlistState, apply, compact, compact_title, items, merge
from schemas.sync import WatchlistUpdate
from tests.unit.sync.factories import MOVIE, SHOW, USER, add, hlc, remove, tag

OPS: list[WatchlistUpdate] = [
    add(MOVIE, tag(1), hlc(10)),
    add(MOVIE, tag(2), hlc(20)),
    remove(MOVIE, [tag(1), tag(9)], hlc(30)),
    remove(MOVIE, [tag(9)], hlc(50)),  # names tag 9 again, later
    remove(SHOW, [], hlc(40)),  # a clear of a title never added
]


def replica(ops: list[WatchlistUpdate]) -> WatchlistState:
    state = WatchlistState(user_id=USER)
    for op in ops:
        apply(state, op)
    return state


def test_a_tombstone_holds_the_newest_stamp_in_any_order() -> None:
    states = [replica(list(order)) for order in itertools.permutations(OPS)]
    assert all(s == states[0] for s in states)
    assert states[0].tombstones == {MOVIE: {tag(1): hlc(30), tag(9): hlc(50)}}
    assert merge(replica(OPS[:3]), replica(OPS[3:])) == states[0]


def test_compaction_drops_only_what_is_older_than_the_cutoff() -> None:
    state = replica(OPS)
    shown = items(state)
    assert compact(state, before_us=45) == 2  # tag 1 (30) and the clear of SHOW (40)
    assert state.tombstones == {MOVIE: {tag(9): hlc(50)}} and state.cleared == {}
    assert items(state) == shown
    assert compact_title(state, MOVIE, before_us=51) == 1
    assert state.tombstones == {} and items(state) == shown


def test_stored_tombstones_keep_their_stamps_and_old_rows_still_load() -> None:
    state = replica(OPS)
    stored = encode_title(state, MOVIE)
    assert decode_titles(USER, {MOVIE: stored}).tombstones == state.tombstones
    legacy = {**stored, "tombstones": [str(tag(1))]}
    loaded = decode_titles(USER, {MOVIE: legacy})
    assert loaded.tombstones == {MOVIE: {tag(1): hlc(0)}}
    # Unstamped tombstones go at the first compaction.
    assert compact(loaded, before_us=1) == 1
