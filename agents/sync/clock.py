"""Hybrid logical clock merge and the last-writer-wins order built on it.

Sending is `schemas.sync.next_hlc`; this module is the receiving side and the comparison.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from schemas.sync import HLC, MAX_LOGICAL

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

LwwKey = tuple[int, int, str]


class ClockDriftError(ValueError):
    """A remote clock is further ahead of the local wall clock than the node tolerates."""


def receive(local: HLC | None, remote: HLC, now_us: int, *, max_drift_us: int | None = None) -> HLC:
    """The local clock after receiving `remote` at wall time `now_us`: later than both.

    Standard HLC receive: the physical part is the largest of the three; the logical part
    counts past whichever clocks share that physical time. A full counter borrows one
    microsecond, as next_hlc does. With `max_drift_us`, a remote clock that far ahead of the
    wall clock is refused: adopting it would make this node's stamps win every LWW race until
    the real time caught up.
    """
    if max_drift_us is not None and remote.physical_us - now_us > max_drift_us:
        raise ClockDriftError(
            f"remote clock is {remote.physical_us - now_us} us ahead of the wall clock "
            f"(tolerated: {max_drift_us} us)"
        )
    clocks = [remote] if local is None else [local, remote]
    physical = max(now_us, *(clock.physical_us for clock in clocks))
    # Count past every clock already at this physical time; none there means the wall clock led.
    tied = [clock.logical for clock in clocks if clock.physical_us == physical]
    logical = max(tied) + 1 if tied else 0
    if logical > MAX_LOGICAL:
        return HLC(physical_us=physical + 1, logical=0)
    return HLC(physical_us=physical, logical=logical)


def lww_key(timestamp: HLC, device_id: str | None) -> LwwKey:
    """Sort key of a last-writer-wins write: newer clock first, then the larger device_id.

    A write without a device sorts below every device on a clock tie ("" is the smallest id).
    """
    return (timestamp.physical_us, timestamp.logical, device_id or "")


def wall_time(timestamp: HLC) -> datetime:
    """The physical part of a stamp as a UTC datetime (to compare with presence timeouts)."""
    return _EPOCH + timedelta(microseconds=timestamp.physical_us)


def to_physical_us(moment: datetime) -> int:
    """A UTC datetime as HLC physical microseconds, exact (no float rounding)."""
    if moment.tzinfo is None:
        raise ValueError("a naive datetime has no defined instant; give it a UTC offset")
    return (moment - _EPOCH) // timedelta(microseconds=1)
