"""The watchlist OR-Set: add, remove by tags, clear, merge, and convergence in any order."""

from __future__ import annotations

import uuid
from collections.abc import Iterable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agents.sync.watchlist import (
    Added,
    WatchlistItem,
    WatchlistState,
    apply,
    contains,
    items,
    live_tags,
    merge,
)
from schemas.sync import HLC, WatchlistOperation, WatchlistUpdate
from tests.unit.sync.factories import DOC, MOVIE, SHOW, USER, add, hlc, remove, tag


def fresh() -> WatchlistState:
    return WatchlistState(user_id=USER)


def applied(*ops: WatchlistUpdate) -> WatchlistState:
    state = fresh()
    for op in ops:
        apply(state, op)
    return state


def test_an_add_makes_the_title_visible_with_its_time() -> None:
    state = fresh()
    assert apply(state, add(MOVIE, tag(1), hlc(5), "tv-1")) is True
    assert contains(state, MOVIE)
    assert items(state) == [WatchlistItem(MOVIE, hlc(5), "tv-1")]
    assert live_tags(state, MOVIE) == {tag(1)}


def test_applying_the_same_operation_twice_changes_nothing_the_second_time() -> None:
    state = fresh()
    ops = [add(MOVIE, tag(1), hlc(5)), remove(MOVIE, [tag(1)], hlc(6)), remove(SHOW, [], hlc(7))]
    for op in ops:
        assert apply(state, op) is True
        before = merge(state, fresh())
        assert apply(state, op) is False
        assert state == before


def test_remove_tombstones_exactly_the_tags_it_names() -> None:
    state = applied(add(MOVIE, tag(1), hlc(5), "tv-1"), add(MOVIE, tag(2), hlc(6), "phone-1"))
    assert apply(state, remove(MOVIE, [tag(2)], hlc(7))) is True
    # The phone's add is gone; the TV's add still holds the title on the list.
    assert items(state) == [WatchlistItem(MOVIE, hlc(5), "tv-1")]
    assert apply(state, remove(MOVIE, [tag(1)], hlc(8))) is True
    assert items(state) == [] and not contains(state, MOVIE)


def test_a_tombstone_that_arrives_before_its_add_still_wins() -> None:
    state = applied(remove(MOVIE, [tag(1)], hlc(9)))
    assert apply(state, add(MOVIE, tag(1), hlc(5))) is False
    assert items(state) == []


def test_a_re_add_with_a_fresh_tag_wins_over_the_remove() -> None:
    state = applied(add(MOVIE, tag(1), hlc(5)), remove(MOVIE, [tag(1)], hlc(6)))
    assert apply(state, add(MOVIE, tag(2), hlc(7), "tablet-1")) is True
    assert items(state) == [WatchlistItem(MOVIE, hlc(7), "tablet-1")]


def test_a_tombstone_for_one_title_does_not_touch_another() -> None:
    state = applied(add(MOVIE, tag(1), hlc(5)), remove(SHOW, [tag(1)], hlc(6)))
    assert contains(state, MOVIE)


def test_a_remove_without_tags_clears_every_add_stamped_before_it() -> None:
    state = applied(
        add(MOVIE, tag(1), hlc(5), "tv-1"),
        add(MOVIE, tag(2), hlc(6), "phone-1"),
        add(SHOW, tag(3), hlc(6)),
    )
    assert apply(state, remove(MOVIE, [], hlc(7))) is True
    assert [item.content_id for item in items(state)] == [SHOW]
    # A later add puts it back.
    assert apply(state, add(MOVIE, tag(4), hlc(8))) is True
    assert contains(state, MOVIE)


def test_a_clear_that_arrives_first_still_covers_older_adds_but_not_newer_ones() -> None:
    state = applied(remove(MOVIE, [], hlc(7)))
    assert apply(state, add(MOVIE, tag(1), hlc(6))) is False
    assert not contains(state, MOVIE)
    assert apply(state, add(MOVIE, tag(2), hlc(7, 1))) is True
    assert contains(state, MOVIE)


def test_an_add_stamped_exactly_with_the_clear_survives_it() -> None:
    # Concurrent add and clear at one clock value: the add wins.
    state = applied(remove(MOVIE, [], hlc(7)), add(MOVIE, tag(1), hlc(7)))
    assert contains(state, MOVIE)


def test_an_older_or_repeated_clear_changes_nothing() -> None:
    state = applied(remove(MOVIE, [], hlc(7)))
    assert apply(state, remove(MOVIE, [], hlc(6))) is False
    assert apply(state, remove(MOVIE, [], hlc(7))) is False
    assert state.cleared == {MOVIE: hlc(7)}


def test_items_are_newest_first_with_the_time_of_the_last_add() -> None:
    state = applied(
        add(MOVIE, tag(1), hlc(1)),
        add(SHOW, tag(2), hlc(2)),
        add(DOC, tag(3), hlc(3)),
        add(MOVIE, tag(4), hlc(4), "phone-1"),  # added again on another device
    )
    assert items(state) == [
        WatchlistItem(MOVIE, hlc(4), "phone-1"),
        WatchlistItem(DOC, hlc(3), "tv-1"),
        WatchlistItem(SHOW, hlc(2), "tv-1"),
    ]


def test_merge_is_the_union_of_adds_and_tombstones() -> None:
    tv = applied(add(MOVIE, tag(1), hlc(1)), add(SHOW, tag(2), hlc(2)))
    phone = applied(remove(MOVIE, [tag(1)], hlc(3)), add(DOC, tag(3), hlc(4), "phone-1"))
    merged = merge(tv, phone)
    assert [i.content_id for i in items(merged)] == [DOC, SHOW]
    assert merged.tombstones == {MOVIE: {tag(1): hlc(3)}}
    # Inputs are left alone.
    assert contains(tv, MOVIE)


def test_other_users_are_refused() -> None:
    bob = WatchlistState(user_id="bob")
    with pytest.raises(ValueError, match="on 'bob'"):
        apply(bob, add(MOVIE, tag(1), hlc(1)))
    with pytest.raises(ValueError, match="cannot merge"):
        merge(fresh(), bob)


def test_two_writes_of_one_tag_keep_the_later_everywhere() -> None:
    early = add(MOVIE, tag(1), hlc(1), "tv-1")
    late = add(MOVIE, tag(1), hlc(2), "tv-1")
    assert applied(early, late) == applied(late, early)
    assert applied(early, late).adds == {MOVIE: {tag(1): Added(hlc(2), "tv-1")}}


# --- properties --------------------------------------------------------------------------------

DEVICES = ["phone-1", "tablet-2", "tv-1", None]
TITLES = [MOVIE, SHOW, DOC]
clocks = st.builds(HLC, physical_us=st.integers(1, 6), logical=st.integers(0, 1))


@st.composite
def operations(draw: st.DrawFn) -> list[WatchlistUpdate]:
    """Ops from several devices: adds with fresh tags, removes of tags seen for the title
    (any subset, possibly none = clear). Clocks are drawn freely, so concurrency is common."""
    ops: list[WatchlistUpdate] = []
    seen: dict[uuid.UUID, list[uuid.UUID]] = {title: [] for title in TITLES}
    for n in range(draw(st.integers(1, 20))):
        title = draw(st.sampled_from(TITLES))
        device = draw(st.sampled_from(DEVICES))
        at = draw(clocks)
        if draw(st.booleans()) or not seen[title]:
            ops.append(
                WatchlistUpdate(
                    user_id=USER,
                    operation="add",
                    content_id=title,
                    unique_tag=tag(n),
                    timestamp=at,
                    device_id=device,
                )
            )
            seen[title].append(tag(n))
        else:
            removed = draw(st.lists(st.sampled_from(seen[title]), unique=True))
            ops.append(
                WatchlistUpdate(
                    user_id=USER,
                    operation="remove",
                    content_id=title,
                    removed_tags=removed,
                    timestamp=at,
                    device_id=device,
                )
            )
    return ops


def fold(ops: Iterable[WatchlistUpdate]) -> WatchlistState:
    state = fresh()
    for op in ops:
        apply(state, op)
    return state


def oracle(ops: list[WatchlistUpdate]) -> set[uuid.UUID]:
    """Visible titles straight from the rules: a live add is named by no remove and is not
    stamped before a clear of its title."""
    visible = set()
    for op in ops:
        if op.operation is not WatchlistOperation.add:
            continue
        removes = [r for r in ops if r.operation is WatchlistOperation.remove]
        same_title = [r for r in removes if r.content_id == op.content_id]
        named = any(op.unique_tag in r.removed_tags for r in same_title)
        cleared = any(
            not r.removed_tags and op.timestamp.order() < r.timestamp.order() for r in same_title
        )
        if not named and not cleared:
            visible.add(op.content_id)
    return visible


@given(ops=operations(), data=st.data())
def test_any_order_and_any_duplication_converge(
    ops: list[WatchlistUpdate], data: st.DataObject
) -> None:
    reference = fold(ops)
    dupes = data.draw(st.lists(st.sampled_from(ops), max_size=10))
    delivery = data.draw(st.permutations(ops + dupes))
    converged = fold(delivery)
    assert converged == reference
    assert items(converged) == items(reference)
    assert {item.content_id for item in items(converged)} == oracle(ops)


@given(ops=operations(), data=st.data())
def test_replicas_that_saw_parts_of_the_stream_merge_to_the_same_state(
    ops: list[WatchlistUpdate], data: st.DataObject
) -> None:
    replicas: list[list[WatchlistUpdate]] = [[], [], []]
    for op in ops:
        for index in data.draw(st.sets(st.integers(0, 2), min_size=1)):
            replicas[index].append(op)
    states = [fold(data.draw(st.permutations(r))) for r in replicas]
    a, b, c = data.draw(st.permutations(states))
    merged = merge(merge(a, b), c)
    assert merged == fold(ops)
    assert items(merged) == items(fold(ops))


@given(ops=operations())
def test_every_operation_is_idempotent(ops: list[WatchlistUpdate]) -> None:
    state = fresh()
    for op in ops:
        apply(state, op)
        snapshot = merge(state, fresh())
        assert apply(state, op) is False
        assert state == snapshot


@given(ops=operations(), data=st.data())
def test_merge_is_commutative_associative_and_idempotent(
    ops: list[WatchlistUpdate], data: st.DataObject
) -> None:
    a, b, c = (fold(data.draw(st.lists(st.sampled_from(ops)))) for _ in range(3))
    assert merge(a, b) == merge(b, a)
    assert merge(merge(a, b), c) == merge(a, merge(b, c))
    assert merge(a, a) == a
    assert merge(a, fresh()) == a
