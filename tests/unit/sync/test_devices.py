"""Device records: registration and removal as one LWW register, heartbeats, presence messages,
and convergence whatever order the three topics deliver in."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from agents.sync import devices as rules
from agents.sync.clock import to_physical_us
from agents.sync.devices import DeviceRecord
from schemas.sync import (
    HLC,
    DeviceHeartbeat,
    DeviceRegistered,
    DeviceRemoved,
    NowPlaying,
    Presence,
)
from tests.unit.sync.factories import MOVIE, SHOW, T0, USER, device_info

NOW = T0 + timedelta(seconds=10)


def at(seconds: float, logical: int = 0) -> HLC:
    return HLC(physical_us=to_physical_us(T0 + timedelta(seconds=seconds)), logical=logical)


def registered(seconds: float, name: str = "tv-1", **caps: object) -> DeviceRegistered:
    info = device_info(name, **caps)
    return DeviceRegistered(user_id=USER, device=info, timestamp=at(seconds))


def removed(seconds: float, name: str = "tv-1") -> DeviceRemoved:
    return DeviceRemoved(user_id=USER, device_id=name, timestamp=at(seconds))


def beat(seconds: float, playing: NowPlaying | None = None, name: str = "tv-1") -> DeviceHeartbeat:
    return DeviceHeartbeat(user_id=USER, device_id=name, timestamp=at(seconds), now_playing=playing)


def playing(content: uuid.UUID = MOVIE, state: str = "playing", pos: float = 5) -> NowPlaying:
    return NowPlaying.model_validate(
        {"content_id": content, "position_seconds": pos, "state": state}
    )


def test_registration_announces_the_device_online_with_its_details() -> None:
    change = rules.register(None, registered(5), NOW)
    assert change.stored and change.visible
    (message,) = change.messages
    assert message.presence is Presence.online and message.device == device_info("tv-1")
    assert change.record.announced_online and change.record.last_seen == T0 + timedelta(seconds=5)


def test_a_registration_long_ago_is_stored_offline() -> None:
    change = rules.register(None, registered(5), T0 + timedelta(minutes=5))
    assert change.messages[0].presence is Presence.offline
    assert not change.record.announced_online


def test_the_same_registration_twice_changes_nothing() -> None:
    first = rules.register(None, registered(5), NOW).record
    again = rules.register(first, registered(5), NOW)
    assert not again.stored and not again.messages and again.record == first


def test_removal_announces_removed_and_a_late_older_registration_cannot_revive() -> None:
    record = rules.register(None, registered(5), NOW).record
    gone = rules.remove(record, removed(6))
    assert gone.visible and gone.messages[0].presence is Presence.removed
    late = rules.register(gone.record, registered(5.5), NOW)
    assert not late.stored and not late.record.active
    # A registration after the removal brings it back.
    back = rules.register(gone.record, registered(7), NOW)
    assert back.record.active and back.messages[0].presence is Presence.online


def test_removal_of_an_unknown_device_is_a_silent_tombstone() -> None:
    tomb = rules.remove(None, removed(6))
    assert tomb.stored and not tomb.visible and not tomb.messages
    assert not rules.register(tomb.record, registered(5), NOW).stored


def test_heartbeats_move_last_seen_forward_only_and_need_a_registration() -> None:
    assert not rules.heartbeat(None, beat(5), NOW).stored
    record = rules.register(None, registered(1), NOW).record
    later = rules.heartbeat(record, beat(8), NOW).record
    assert later.last_seen == T0 + timedelta(seconds=8)
    stale = rules.heartbeat(later, beat(3), NOW)
    assert stale.record.last_seen == later.last_seen and not stale.visible


def test_a_heartbeat_after_silence_announces_online_again() -> None:
    record = rules.register(None, registered(1), NOW).record
    silent = rules.heartbeat(record, beat(2), T0 + timedelta(minutes=5))
    # The sweep announced it offline meanwhile.
    offline = replace(silent.record, announced_online=False)
    back = rules.heartbeat(offline, beat(299), T0 + timedelta(minutes=5))
    (message,) = back.messages
    assert message.presence is Presence.online and message.device is not None


def test_now_playing_changes_are_announced_but_positions_alone_are_not() -> None:
    record = rules.register(None, registered(1), NOW).record
    started = rules.heartbeat(record, beat(2, playing(MOVIE)), NOW)
    assert started.messages[0].now_playing == playing(MOVIE)
    moved = rules.heartbeat(started.record, beat(3, playing(MOVIE, pos=50)), NOW)
    assert moved.visible and not moved.messages
    other = rules.heartbeat(moved.record, beat(4, playing(SHOW)), NOW)
    assert other.messages[0].now_playing == playing(SHOW)
    # An older heartbeat does not bring back what played before.
    old = rules.heartbeat(other.record, beat(3.5, playing(MOVIE)), NOW)
    assert old.record.now_playing == playing(SHOW)


def test_the_sweeps_offline_message() -> None:
    record = rules.register(None, registered(1), NOW).record
    message = rules.went_offline(record)
    assert message.presence is Presence.offline and message.last_seen == record.last_seen


Event = DeviceRegistered | DeviceRemoved | DeviceHeartbeat

EVENTS: list[Event] = [
    registered(1),
    beat(2, playing(MOVIE)),
    registered(3, remote_controllable=False),
    removed(4),
    beat(5),
    registered(6, can_cast=True),
    beat(7, playing(SHOW, "paused")),
    removed(6.5),
]


def apply_all(order: list[Event]) -> DeviceRecord | None:
    record: DeviceRecord | None = None
    for event in order:
        if isinstance(event, DeviceRegistered):
            change = rules.register(record, event, NOW)
        elif isinstance(event, DeviceRemoved):
            change = rules.remove(record, event)
        else:
            change = rules.heartbeat(record, event, NOW)
        if change.stored:
            record = change.record
    return record


@settings(max_examples=300, deadline=None)
@given(st.permutations(EVENTS))
def test_membership_converges_in_any_order(order: list[Event]) -> None:
    # Registrations and removals decide the same membership and details whatever the order.
    # (Heartbeats before a registration are dropped by design, so last_seen may differ.)
    final = apply_all(order)
    reference = apply_all(sorted(EVENTS, key=lambda e: e.timestamp.order()))
    assert final is not None and reference is not None
    assert (final.membership, final.removed, final.info) == (
        reference.membership,
        reference.removed,
        reference.info,
    )


def test_only_removals_the_records_show_removed_revoke_tokens() -> None:
    tv = rules.remove(None, removed(5)).record
    # The phone's removal was outrun by a later registration: it stays, its tokens too.
    phone = rules.register(None, registered(9, "phone-1"), NOW).record
    records = {USER: {"tv-1": tv, "phone-1": phone}}
    removals = [removed(5), removed(5), removed(3, "phone-1"), removed(4, "tablet-1")]
    assert rules.removed_by(removals, records) == [(USER, "tv-1")]
