"""The watchlist event and its hybrid logical clock, as plain values."""

from __future__ import annotations

import uuid

import pytest
from pydantic import ValidationError

from schemas.envelope import decode, encode, wrap
from schemas.sync import HLC, MAX_LOGICAL, WatchlistOperation, WatchlistUpdate, next_hlc
from topics.registry import SYNC_WATCHLIST, by_name


def test_hlc_follows_the_wall_clock_when_it_moves_forward() -> None:
    assert next_hlc(None, 1000) == HLC(physical_us=1000, logical=0)
    assert next_hlc(HLC(physical_us=1000, logical=7), 1001) == HLC(physical_us=1001, logical=0)


def test_hlc_counts_when_the_wall_clock_stalls_or_steps_back() -> None:
    last = HLC(physical_us=1000, logical=3)
    assert next_hlc(last, 1000) == HLC(physical_us=1000, logical=4)
    assert next_hlc(last, 10) == HLC(physical_us=1000, logical=4)
    # A full 16-bit counter borrows a microsecond instead of overflowing.
    full = HLC(physical_us=1000, logical=MAX_LOGICAL)
    assert next_hlc(full, 999) == HLC(physical_us=1001, logical=0)


def test_hlc_stamps_strictly_increase() -> None:
    stamp = None
    seen = []
    for wall in [5, 5, 5, 4, 6, 6, 2, 7]:
        stamp = next_hlc(stamp, wall)
        seen.append(stamp.order())
    assert seen == sorted(set(seen))


def test_hlc_bounds() -> None:
    with pytest.raises(ValidationError):
        HLC(physical_us=1, logical=MAX_LOGICAL + 1)
    with pytest.raises(ValidationError):
        HLC(physical_us=-1)


def _update(**overrides: object) -> WatchlistUpdate:
    values: dict[str, object] = {
        "user_id": "alice",
        "operation": "add",
        "content_id": uuid.uuid4(),
        "unique_tag": uuid.uuid4(),
        "timestamp": {"physical_us": 1, "logical": 0},
        **overrides,
    }
    return WatchlistUpdate.model_validate(values)


def test_add_and_remove_carry_the_right_tags() -> None:
    assert _update().operation is WatchlistOperation.add
    remove = _update(operation="remove", unique_tag=None, removed_tags=[uuid.uuid4()])
    assert len(remove.removed_tags) == 1
    assert _update(operation="remove", unique_tag=None).removed_tags == []
    with pytest.raises(ValidationError, match="add needs a unique_tag"):
        _update(unique_tag=None)
    with pytest.raises(ValidationError, match="add carries no removed_tags"):
        _update(removed_tags=[uuid.uuid4()])
    with pytest.raises(ValidationError, match="remove carries removed_tags"):
        _update(operation="remove")


def test_round_trip_through_the_envelope() -> None:
    update = _update(device_id="tv-1")
    raw = encode(wrap(update, key="alice", source="test"))
    back = decode(raw, WatchlistUpdate)
    assert back.payload == update
    assert back.event_type == "sync.watchlist.updated"


def test_topic_is_in_the_catalog() -> None:
    assert by_name("sync.watchlist") is SYNC_WATCHLIST
    assert SYNC_WATCHLIST.payload is WatchlistUpdate and SYNC_WATCHLIST.key == "user_id"
    assert by_name("sync.watchlist.dlq").payload is None
