"""HLC receive, the LWW order and the wall-time conversions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agents.sync.clock import ClockDriftError, lww_key, receive, to_physical_us, wall_time
from schemas.sync import HLC, MAX_LOGICAL, next_hlc
from tests.unit.sync.factories import hlc


def test_the_wall_clock_leads_when_it_is_ahead_of_both() -> None:
    assert receive(hlc(10, 4), hlc(20, 9), now_us=30) == hlc(30, 0)


def test_a_remote_clock_ahead_of_ours_is_adopted_and_counted_past() -> None:
    assert receive(hlc(10, 4), hlc(20, 9), now_us=15) == hlc(20, 10)
    assert receive(None, hlc(20, 9), now_us=15) == hlc(20, 10)


def test_a_local_clock_ahead_counts_on_from_itself() -> None:
    assert receive(hlc(20, 2), hlc(10, 9), now_us=15) == hlc(20, 3)


def test_equal_physical_parts_count_past_the_larger_counter() -> None:
    assert receive(hlc(20, 2), hlc(20, 7), now_us=5) == hlc(20, 8)
    assert receive(hlc(20, 7), hlc(20, 2), now_us=20) == hlc(20, 8)


def test_a_full_counter_borrows_a_microsecond() -> None:
    assert receive(hlc(20, 3), hlc(20, MAX_LOGICAL), now_us=1) == hlc(21, 0)


def test_a_remote_clock_too_far_ahead_is_refused_when_asked() -> None:
    with pytest.raises(ClockDriftError, match="1000 us ahead"):
        receive(hlc(5), hlc(2000), now_us=1000, max_drift_us=500)
    assert receive(hlc(5), hlc(1400), now_us=1000, max_drift_us=500) == hlc(1400, 1)


clocks = st.builds(
    HLC,
    physical_us=st.integers(min_value=0, max_value=50),
    logical=st.one_of(st.integers(0, 5), st.integers(MAX_LOGICAL - 2, MAX_LOGICAL)),
)


@given(local=st.none() | clocks, remote=clocks, now_us=st.integers(0, 60))
def test_receive_is_strictly_after_both_and_not_behind_the_wall(
    local: HLC | None, remote: HLC, now_us: int
) -> None:
    merged = receive(local, remote, now_us)
    assert merged.order() > remote.order()
    if local is not None:
        assert merged.order() > local.order()
    assert merged.physical_us >= now_us


@given(
    events=st.lists(st.tuples(st.booleans(), clocks, st.integers(0, 60)), min_size=1, max_size=30)
)
def test_a_node_mixing_sends_and_receives_stamps_strictly_increasing(
    events: list[tuple[bool, HLC, int]],
) -> None:
    last: HLC | None = None
    stamps = []
    for is_receive, remote, now_us in events:
        last = receive(last, remote, now_us) if is_receive else next_hlc(last, now_us)
        stamps.append(last.order())
    assert stamps == sorted(set(stamps))


def test_lww_key_orders_by_clock_then_device() -> None:
    assert lww_key(hlc(2, 0), "a") > lww_key(hlc(1, 9), "z")
    assert lww_key(hlc(1, 1), "a") > lww_key(hlc(1, 0), "z")
    # On equal clocks the larger device id (string order) wins, and any device beats none.
    assert lww_key(hlc(1, 1), "tv-2") > lww_key(hlc(1, 1), "tv-10")
    assert lww_key(hlc(1, 1), "a") > lww_key(hlc(1, 1), None)


def test_wall_time_and_physical_us_are_inverse_and_exact() -> None:
    moment = datetime(2024, 6, 1, 20, 0, 0, 123456, tzinfo=UTC)
    us = to_physical_us(moment)
    assert us == 1717272000123456
    assert wall_time(HLC(physical_us=us)) == moment
    assert to_physical_us(moment + timedelta(microseconds=1)) == us + 1
    with pytest.raises(ValueError, match="naive"):
        to_physical_us(datetime(2024, 6, 1))
