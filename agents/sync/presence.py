"""Device presence: online while heartbeats keep coming, and which devices just flipped.

A device is online for ONLINE_TIMEOUT_S after its last heartbeat (exactly at the limit it still
counts as online; one microsecond later it is offline). A last_seen in the future, from a clock
ahead of ours, reads as online.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from schemas.sync import ONLINE_TIMEOUT_S, DeviceInfo

_TIMEOUT = timedelta(seconds=ONLINE_TIMEOUT_S)


def _aware(moment: datetime, name: str) -> datetime:
    # A naive datetime would raise TypeError in the comparison, far from where it came from.
    if moment.tzinfo is None:
        raise ValueError(f"{name} must carry a UTC offset")
    return moment


def is_online(last_seen: datetime, now: datetime) -> bool:
    return _aware(now, "now") - _aware(last_seen, "last_seen") <= _TIMEOUT


@dataclass(frozen=True, slots=True)
class DeviceState:
    """A registered device as the sync agent tracks it."""

    info: DeviceInfo
    last_seen: datetime
    # What subscribers were last told (the latest presence message), not what the clock says.
    announced_online: bool = False

    @property
    def device_id(self) -> str:
        return self.info.device_id

    def online(self, now: datetime) -> bool:
        return is_online(self.last_seen, now)


def seen(device: DeviceState, at: datetime) -> DeviceState:
    """The device after a heartbeat at `at`; a late, out-of-order heartbeat cannot move it back."""
    latest = max(_aware(device.last_seen, "last_seen"), _aware(at, "at"))
    return replace(device, last_seen=latest)


@dataclass(frozen=True, slots=True)
class PresenceChange:
    device_id: str
    online: bool
    last_seen: datetime


def presence_changes(devices: Iterable[DeviceState], now: datetime) -> list[PresenceChange]:
    """The devices whose presence at `now` differs from what was last announced, by device_id.

    The agent publishes exactly these and then records them as announced, so a sweep that runs
    twice at the same instant publishes nothing the second time.
    """
    changes = [
        PresenceChange(device.device_id, online, device.last_seen)
        for device in devices
        if (online := device.online(now)) != device.announced_online
    ]
    return sorted(changes, key=lambda change: change.device_id)


def announce(device: DeviceState, change: PresenceChange) -> DeviceState:
    """The device once `change` has been published."""
    if change.device_id != device.device_id:
        raise ValueError(f"presence of {change.device_id!r} announced for {device.device_id!r}")
    return replace(device, announced_online=change.online)
