"""Batches merged into stored state: the stored form round-trips, only changes are stored and
announced, and batches split any way over a store converge to one state (two devices edited
one watchlist offline; their operations arrive later, interleaved and duplicated)."""

from __future__ import annotations

import itertools
import uuid
from datetime import timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from agents.sync import batches
from agents.sync.commands import decide
from agents.sync.devices import DeviceRecord
from agents.sync.progress import Position
from agents.sync.records import TitleState, decode_titles
from agents.sync.watchlist import items
from schemas.envelope import Envelope, wrap
from schemas.sync import (
    CommandMessage,
    CommandResultMessage,
    ProgressMessage,
    RealtimeEvent,
    WatchlistMessage,
)
from tests.unit.sync.factories import (
    DOC,
    MOVIE,
    SHOW,
    T0,
    USER,
    add,
    command,
    device_info,
    hlc,
    progress,
    remove,
    tag,
)
from topics.registry import SYNC_COMMAND_RESULTS, SYNC_REALTIME


def env(payload: Any) -> Envelope[Any]:
    return wrap(payload, key=USER, source="test")


# Phone (offline) and TV (offline) each edit, then both sync: every op once, then some again.
PHONE = [
    env(add(MOVIE, tag(1), hlc(10), "phone-1")),
    env(add(SHOW, tag(2), hlc(11), "phone-1")),
    env(remove(MOVIE, [tag(1)], hlc(20), "phone-1")),
]
TV = [
    env(add(MOVIE, tag(3), hlc(15), "tv-1")),
    env(add(DOC, tag(4), hlc(16), "tv-1")),
    env(remove(SHOW, [], hlc(30), "tv-1")),
]


def run(batches_of_ops: list[list[Envelope[Any]]]) -> dict[uuid.UUID, TitleState]:
    """Merge batch after batch through the stored form, as the agent does across batches."""
    stored: dict[str, dict[uuid.UUID, TitleState]] = {}
    for batch in batches_of_ops:
        merged = batches.watchlist(stored, batch)
        for (user, cid), row in merged.rows.items():
            stored.setdefault(user, {})[cid] = row.state
    return stored.get(USER, {})


def visible(stored: dict[uuid.UUID, TitleState]) -> list[uuid.UUID]:
    return [i.content_id for i in items(decode_titles(USER, stored))]


def test_two_offline_devices_converge_once_their_edits_arrive() -> None:
    state = run([PHONE, TV])
    # MOVIE: the phone removed only its own tag; the TV's add survives. SHOW: cleared later.
    assert visible(state) == [DOC, MOVIE]
    assert run([TV, PHONE]) == state


@settings(max_examples=200, deadline=None)
@given(
    order=st.permutations(PHONE + TV + PHONE[:2] + TV[1:]),
    cuts=st.lists(st.integers(min_value=1, max_value=9), max_size=4),
)
def test_any_interleaving_duplication_and_batching_converges(
    order: list[Envelope[Any]], cuts: list[int]
) -> None:
    bounds = sorted({0, *cuts, len(order)})
    split = [order[a:b] for a, b in itertools.pairwise(bounds) if order[a:b]]
    assert run(split) == run([PHONE + TV])


def test_only_operations_that_change_state_are_stored_and_announced() -> None:
    first = batches.watchlist({}, PHONE[:1])
    assert len(first.events) == 1 and first.changed_users == {USER}
    (event,) = first.events
    assert event.topic is SYNC_REALTIME and isinstance(event.payload, RealtimeEvent)
    message = event.payload.message
    assert isinstance(message, WatchlistMessage) and message.in_watchlist
    stored = {USER: {MOVIE: first.rows[(USER, MOVIE)].state}}
    again = batches.watchlist(stored, PHONE[:1])
    assert not again.rows and not again.events and not again.changed_users


def test_a_remove_that_finds_nothing_is_kept_but_neither_counted_nor_announced() -> None:
    for nothing in (remove(MOVIE, [], hlc(20)), remove(MOVIE, [tag(9)], hlc(20))):
        merged = batches.watchlist({}, [env(nothing)])
        assert not merged.events and not merged.changed_users
        # Stored all the same: an add it covers, arriving later, stays off the list.
        stored = {USER: {MOVIE: merged.rows[(USER, MOVIE)].state}}
        late = batches.watchlist(stored, [env(add(MOVIE, tag(9), hlc(10)))])
        assert not late.events and visible(stored) == []
    # Added and removed, then removed again from another device: the second finds nothing.
    first = batches.watchlist(
        {}, [env(add(MOVIE, tag(1), hlc(10))), env(remove(MOVIE, [], hlc(20)))]
    )
    assert len(first.events) == 2
    stored = {USER: {MOVIE: first.rows[(USER, MOVIE)].state}}
    again = batches.watchlist(stored, [env(remove(MOVIE, [], hlc(30), "tv-1"))])
    assert not again.events and not again.changed_users


def test_message_ids_are_fixed_by_the_operation() -> None:
    a = batches.watchlist({}, PHONE[:1]).events[0].payload
    b = batches.watchlist({}, PHONE[:1]).events[0].payload
    assert a.message_id == b.message_id


def test_progress_keeps_the_newest_write_and_announces_only_it() -> None:
    newer = env(progress(50, hlc(20), "tv-1"))
    older = env(progress(10, hlc(10), "phone-1"))
    merged = batches.progress({}, [newer, older])
    assert merged.rows[(USER, MOVIE)].position_seconds == 50
    assert [type(e.payload.message) for e in merged.events] == [ProgressMessage]
    held: dict[tuple[str, uuid.UUID], Position] = dict(merged.rows)
    assert not batches.progress(held, [older, newer]).events


def records(*infos: Any, seen_ago_s: float = 1) -> dict[str, dict[str, DeviceRecord]]:
    out = {}
    for info in infos:
        out[info.device_id] = DeviceRecord(
            user_id=USER,
            device_id=info.device_id,
            info=info,
            membership=hlc(1),
            removed=False,
            last_seen=T0 - timedelta(seconds=seen_ago_s),
        )
    return {USER: out}


def test_a_delivered_command_goes_to_its_target_then_its_result_to_the_sender() -> None:
    issued = command({"type": "play"})
    routed = batches.commands([env(issued)], records(device_info("tv-1")), set(), T0)
    (decision,) = routed.decisions
    assert decision[1] == decide(
        issued, {"tv-1": records(device_info("tv-1"))[USER]["tv-1"].state()}, T0
    )
    kinds = [type(e.payload.message) for e in routed.events if e.topic is SYNC_REALTIME]
    assert kinds == [CommandMessage, CommandResultMessage]
    assert routed.events[0].payload.message_id == issued.command_id
    assert routed.events[-1].topic is SYNC_COMMAND_RESULTS


def test_a_rejected_command_only_tells_the_sender() -> None:
    issued = command({"type": "play"}, target="tv-9")
    routed = batches.commands([env(issued)], records(device_info("tv-1")), set(), T0)
    kinds = [type(e.payload.message) for e in routed.events if e.topic is SYNC_REALTIME]
    assert kinds == [CommandResultMessage]
    assert routed.decisions[0][1].error == "device_offline"


def test_a_command_decided_before_is_not_decided_or_delivered_again() -> None:
    issued = command({"type": "play"})
    routed = batches.commands(
        [env(issued), env(issued)], records(device_info("tv-1")), {issued.command_id}, T0
    )
    assert not routed.decisions and not routed.events
    # Twice in one batch, never decided before: decided once.
    once = batches.commands([env(issued), env(issued)], records(device_info("tv-1")), set(), T0)
    assert len(once.decisions) == 1
