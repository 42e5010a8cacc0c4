"""Playback position as an LWW register: merge, completion, continue watching, convergence."""

from __future__ import annotations

import uuid
from collections.abc import Iterable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agents.sync.progress import (
    COMPLETE_ABOVE,
    Merge,
    Position,
    completion,
    continue_watching,
    is_complete,
    merge,
    merge_states,
    pick,
)
from schemas.sync import HLC, PlaybackState, ProgressUpdate
from tests.unit.sync.factories import DOC, MOVIE, SHOW, hlc, progress


def test_the_first_update_is_stored() -> None:
    update = progress(10.0, hlc(5))
    result = merge(None, update)
    assert result == Merge(winner=Position.of(update), changed=True)


def test_a_newer_clock_wins_whatever_the_device() -> None:
    current = merge(None, progress(10.0, hlc(5), "zz-tv")).winner
    result = merge(current, progress(20.0, hlc(6), "aa-phone", state="paused"))
    assert result.changed
    assert result.winner.position_seconds == 20.0
    assert result.winner.device_id == "aa-phone"
    assert result.winner.state is PlaybackState.paused


def test_a_stale_update_changes_nothing() -> None:
    current = merge(None, progress(20.0, hlc(6))).winner
    result = merge(current, progress(99.0, hlc(5, 9)))
    assert result == Merge(winner=current, changed=False)


def test_a_redelivered_update_changes_nothing() -> None:
    update = progress(20.0, hlc(6))
    current = merge(None, update).winner
    assert merge(current, update) == Merge(winner=current, changed=False)


def test_on_equal_clocks_the_larger_device_id_wins() -> None:
    phone = progress(30.0, hlc(7, 1), "phone-1")
    tv = progress(40.0, hlc(7, 1), "tv-1")
    assert merge(merge(None, phone).winner, tv).winner.device_id == "tv-1"
    from_tv = merge(None, tv).winner
    assert merge(from_tv, phone) == Merge(winner=from_tv, changed=False)


def test_same_clock_and_device_still_picks_one_winner_in_any_order() -> None:
    # A misbehaving device stamping two positions alike must not split replicas.
    a = Position.of(progress(30.0, hlc(7), "tv-1"))
    b = Position.of(progress(31.0, hlc(7), "tv-1"))
    assert pick(a, b) == pick(b, a) == b


def test_registers_of_different_titles_or_users_do_not_merge() -> None:
    movie = Position.of(progress(1.0, hlc(1)))
    show = Position.of(progress(1.0, hlc(2), content_id=SHOW))
    with pytest.raises(ValueError, match="cannot merge progress"):
        merge(movie, show)
    bob = Position.of(progress(1.0, hlc(2)).model_copy(update={"user_id": "bob"}))
    with pytest.raises(ValueError, match="cannot merge progress"):
        pick(movie, bob)


@pytest.mark.parametrize(
    ("position", "share", "complete"),
    [(0.0, 0.0, False), (45.0, 0.45, False), (90.0, 0.9, False), (90.5, 0.905, True)],
)
def test_complete_strictly_above_ninety_percent(
    position: float, share: float, complete: bool
) -> None:
    p = Position.of(progress(position, hlc(1)))
    assert completion(p) == pytest.approx(share)
    assert is_complete(p) is complete
    assert COMPLETE_ABOVE == 0.9


def test_continue_watching_is_latest_per_title_newest_first_without_finished_titles() -> None:
    positions = [
        Position.of(progress(10.0, hlc(1), content_id=MOVIE)),
        Position.of(progress(50.0, hlc(4), content_id=MOVIE)),  # the movie's latest
        Position.of(progress(95.0, hlc(3), content_id=SHOW)),  # finished: left out
        Position.of(progress(20.0, hlc(2), content_id=DOC)),
    ]
    listed = continue_watching(positions)
    assert [(p.content_id, p.position_seconds) for p in listed] == [(MOVIE, 50.0), (DOC, 20.0)]
    assert continue_watching(positions, limit=1) == listed[:1]


def test_a_title_rewatched_from_the_start_comes_back_to_continue_watching() -> None:
    finished = Position.of(progress(99.0, hlc(1), content_id=SHOW))
    restarted = Position.of(progress(5.0, hlc(2), content_id=SHOW))
    assert continue_watching([finished]) == []
    assert continue_watching([restarted, finished]) == [restarted]
    # ...and leaves it again once the latest write is complete.
    assert (
        continue_watching([restarted, Position.of(progress(99.0, hlc(3), content_id=SHOW))]) == []
    )


# --- properties --------------------------------------------------------------------------------

DEVICES = ["phone-1", "tablet-2", "tv-1", "web-9"]
TITLES = [MOVIE, SHOW, DOC]

updates = st.builds(
    progress,
    position=st.sampled_from([0.0, 12.5, 50.0, 91.0, 100.0]),
    # A narrow clock range, so equal clocks from different devices happen often.
    at=st.builds(HLC, physical_us=st.integers(1, 4), logical=st.integers(0, 2)),
    device=st.sampled_from(DEVICES),
    content_id=st.sampled_from(TITLES),
    state=st.sampled_from(list(PlaybackState)),
)


def fold(ops: Iterable[ProgressUpdate]) -> dict[uuid.UUID, Position]:
    state: dict[uuid.UUID, Position] = {}
    for op in ops:
        state[op.content_id] = merge(state.get(op.content_id), op).winner
    return state


def oracle(ops: list[ProgressUpdate]) -> dict[uuid.UUID, tuple[int, int, str]]:
    """Per title, the (clock, device) of the winning write, straight from docs/RULES.md's rule."""
    best: dict[uuid.UUID, tuple[int, int, str]] = {}
    for op in ops:
        key = (op.timestamp.physical_us, op.timestamp.logical, op.device_id)
        best[op.content_id] = max(best.get(op.content_id, key), key)
    return best


@given(ops=st.lists(updates, min_size=1, max_size=25), data=st.data())
def test_any_order_and_any_duplication_converge_to_the_lww_winner(
    ops: list[ProgressUpdate], data: st.DataObject
) -> None:
    reference = fold(ops)
    shuffled = data.draw(st.permutations(ops))
    dupes = data.draw(st.lists(st.sampled_from(ops), max_size=10))
    delivery = data.draw(st.permutations(shuffled + dupes))
    assert fold(delivery) == reference
    winners = {
        cid: (p.timestamp.physical_us, p.timestamp.logical, p.device_id)
        for cid, p in reference.items()
    }
    assert winners == oracle(ops)


@given(ops=st.lists(updates, min_size=1, max_size=25), data=st.data())
def test_replicas_that_saw_parts_of_the_stream_merge_to_the_same_state(
    ops: list[ProgressUpdate], data: st.DataObject
) -> None:
    # Each op reaches at least one of three replicas, some reach several.
    replicas: list[list[ProgressUpdate]] = [[], [], []]
    for op in ops:
        for index in data.draw(st.sets(st.integers(0, 2), min_size=1)):
            replicas[index].append(op)
    states = [fold(data.draw(st.permutations(r))) for r in replicas]
    order = data.draw(st.permutations(states))
    assert merge_states(merge_states(order[0], order[1]), order[2]) == fold(ops)


same_register = st.builds(
    progress,
    position=st.sampled_from([0.0, 12.5, 50.0]),
    at=st.builds(HLC, physical_us=st.integers(1, 3), logical=st.integers(0, 1)),
    device=st.sampled_from(DEVICES),
    state=st.sampled_from(list(PlaybackState)),
).map(Position.of)


@given(a=same_register, b=same_register, c=same_register)
def test_pick_is_commutative_associative_and_idempotent(
    a: Position, b: Position, c: Position
) -> None:
    assert pick(a, b) == pick(b, a)
    assert pick(pick(a, b), c) == pick(a, pick(b, c))
    assert pick(a, a) == a


states = st.lists(updates, max_size=10).map(fold)


@given(a=states, b=states, c=states)
def test_merge_states_is_commutative_associative_and_idempotent(
    a: dict[uuid.UUID, Position], b: dict[uuid.UUID, Position], c: dict[uuid.UUID, Position]
) -> None:
    assert merge_states(a, b) == merge_states(b, a)
    assert merge_states(merge_states(a, b), c) == merge_states(a, merge_states(b, c))
    assert merge_states(a, a) == a


@given(ops=st.lists(updates, min_size=1, max_size=25), data=st.data())
def test_continue_watching_does_not_depend_on_arrival_order(
    ops: list[ProgressUpdate], data: st.DataObject
) -> None:
    listed = continue_watching(Position.of(op) for op in ops)
    shuffled = data.draw(st.permutations(ops))
    assert continue_watching(Position.of(op) for op in shuffled) == listed
    assert all(not is_complete(p) for p in listed)
    assert len({p.content_id for p in listed}) == len(listed)
    keys = [(p.timestamp.order(), p.device_id) for p in listed]
    assert keys == sorted(keys, reverse=True)
