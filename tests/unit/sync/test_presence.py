"""Online while heartbeats come; exactly the devices whose presence flipped are reported."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from agents.sync.presence import (
    ONLINE_TIMEOUT_S,
    PresenceChange,
    announce,
    is_online,
    presence_changes,
    seen,
)
from tests.unit.sync.factories import T0, device


def test_online_up_to_the_timeout_and_offline_just_after() -> None:
    assert ONLINE_TIMEOUT_S == 60
    assert is_online(T0, T0)
    assert is_online(T0 - timedelta(seconds=60), T0)
    assert not is_online(T0 - timedelta(seconds=60, microseconds=1), T0)
    assert not is_online(T0 - timedelta(hours=3), T0)


def test_a_last_seen_from_a_clock_ahead_of_ours_reads_online() -> None:
    assert is_online(T0 + timedelta(seconds=30), T0)


def test_naive_datetimes_are_refused_with_a_clear_error() -> None:
    with pytest.raises(ValueError, match="last_seen must carry a UTC offset"):
        is_online(datetime(2024, 6, 1, 20, 0), T0)
    with pytest.raises(ValueError, match="now must carry a UTC offset"):
        is_online(T0, datetime(2024, 6, 1, 20, 0))


def test_a_heartbeat_moves_last_seen_forward_only() -> None:
    tv = device("tv-1", seen_ago_s=30)
    assert seen(tv, T0).last_seen == T0
    late = seen(tv, T0 - timedelta(seconds=50))
    assert late.last_seen == tv.last_seen


def test_only_devices_whose_presence_flipped_are_reported() -> None:
    devices = [
        device("tv-1", seen_ago_s=5, announced_online=True),  # online, already said so
        device("phone-1", seen_ago_s=61, announced_online=True),  # went quiet
        device("web-1", seen_ago_s=2, announced_online=False),  # came back
        device("tablet-1", seen_ago_s=600, announced_online=False),  # offline, already said so
    ]
    assert presence_changes(devices, T0) == [
        PresenceChange("phone-1", online=False, last_seen=T0 - timedelta(seconds=61)),
        PresenceChange("web-1", online=True, last_seen=T0 - timedelta(seconds=2)),
    ]


def test_the_same_device_flips_as_the_injected_clock_moves() -> None:
    tv = device("tv-1", seen_ago_s=0, announced_online=True)
    assert presence_changes([tv], T0 + timedelta(seconds=60)) == []
    later = T0 + timedelta(seconds=61)
    [change] = presence_changes([tv], later)
    assert change.online is False
    tv = announce(tv, change)
    assert tv.announced_online is False
    # Announced: a second sweep at the same instant has nothing to publish.
    assert presence_changes([tv], later) == []
    # A heartbeat brings it back, once.
    tv = seen(tv, later)
    [back] = presence_changes([tv], later)
    assert back.online is True
    assert presence_changes([announce(tv, back)], later) == []


def test_announcing_another_devices_change_is_refused() -> None:
    change = PresenceChange("phone-1", online=True, last_seen=T0)
    with pytest.raises(ValueError, match="announced for 'tv-1'"):
        announce(device("tv-1"), change)
