"""A user's devices: registration, removal and heartbeats merged into one record per device.

Membership (registered or removed, with the device's details) is a last-writer-wins register
on the operations' HLC stamps; on a tie a removal beats a registration, and of two
registrations the larger details win, so any arrival order ends in the same record. A removal
of a device never seen is kept as a tombstone: a registration stamped earlier, arriving late,
cannot bring the device back. Heartbeats only move `last_seen` forward and replace what the
device plays when they are newer; a heartbeat never registers a device (it lacks its details).

Each merge also says what the user's devices channel must hear: a device coming online, going
offline, being removed, or starting to play something else.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime

from agents.sync.clock import wall_time
from agents.sync.presence import DeviceState, is_online
from schemas.sync import (
    HLC,
    DeviceHeartbeat,
    DeviceInfo,
    DevicePresenceMessage,
    DeviceRegistered,
    DeviceRemoved,
    NowPlaying,
    Presence,
)

MembershipKey = tuple[int, int, bool, str]


@dataclass(frozen=True, slots=True)
class DeviceRecord:
    """One device of one user as stored; a removed device keeps no details (`info` None)."""

    user_id: str
    device_id: str
    info: DeviceInfo | None
    membership: HLC
    removed: bool
    last_seen: datetime
    announced_online: bool = False
    now_playing: NowPlaying | None = None
    now_playing_at: HLC | None = None

    @property
    def active(self) -> bool:
        return not self.removed and self.info is not None

    def membership_key(self) -> MembershipKey:
        details = "" if self.info is None else self.info.model_dump_json()
        return (self.membership.physical_us, self.membership.logical, self.removed, details)

    def state(self) -> DeviceState:
        """The device as the presence and command rules see it (active devices only)."""
        if self.info is None:
            raise ValueError(f"device {self.device_id!r} has no details: it was never registered")
        return DeviceState(self.info, self.last_seen, self.announced_online)


@dataclass(frozen=True, slots=True)
class DeviceChange:
    record: DeviceRecord
    # The stored record differs from before (write it back).
    stored: bool
    # What devices read about this device changed (its entry in the device list).
    visible: bool
    messages: list[DevicePresenceMessage] = field(default_factory=list)


def _unchanged(record: DeviceRecord) -> DeviceChange:
    return DeviceChange(record, stored=False, visible=False)


def _presence(online: bool) -> Presence:
    return Presence.online if online else Presence.offline


def register(current: DeviceRecord | None, event: DeviceRegistered, now: datetime) -> DeviceChange:
    """The record after a registration; a registration also counts as a heartbeat."""
    seen_at = wall_time(event.timestamp)
    last_seen = seen_at if current is None else max(current.last_seen, seen_at)
    was_active = current is not None and current.active
    candidate = DeviceRecord(
        user_id=event.user_id,
        device_id=event.device.device_id,
        info=event.device,
        membership=event.timestamp,
        removed=False,
        last_seen=last_seen,
        announced_online=current.announced_online if was_active and current else False,
        now_playing=current.now_playing if was_active and current else None,
        now_playing_at=current.now_playing_at if was_active and current else None,
    )
    if current is not None and current.membership_key() >= candidate.membership_key():
        return _unchanged(current)
    online = is_online(last_seen, now)
    record = replace(candidate, announced_online=online)
    message = DevicePresenceMessage(
        device_id=record.device_id,
        presence=_presence(online),
        last_seen=last_seen,
        device=record.info,
        now_playing=record.now_playing,
    )
    return DeviceChange(record, stored=True, visible=True, messages=[message])


def remove(current: DeviceRecord | None, event: DeviceRemoved) -> DeviceChange:
    """The record after a removal: a tombstone that outlives late registrations."""
    seen_at = wall_time(event.timestamp)
    candidate = DeviceRecord(
        user_id=event.user_id,
        device_id=event.device_id,
        # A tombstone keeps no details: they would depend on which registrations it outran.
        info=None,
        membership=event.timestamp,
        removed=True,
        last_seen=current.last_seen if current is not None else seen_at,
    )
    if current is not None and current.membership_key() >= candidate.membership_key():
        return _unchanged(current)
    if current is None or not current.active:
        return DeviceChange(candidate, stored=True, visible=False)
    message = DevicePresenceMessage(
        device_id=event.device_id, presence=Presence.removed, last_seen=current.last_seen
    )
    return DeviceChange(candidate, stored=True, visible=True, messages=[message])


def _playing_changed(before: NowPlaying | None, after: NowPlaying | None) -> bool:
    # A new title or a new state is news for device pickers; a position moving is not (it
    # travels on the sync channel as progress).
    if before is None or after is None:
        return before is not after
    return (before.content_id, before.state) != (after.content_id, after.state)


def heartbeat(current: DeviceRecord | None, event: DeviceHeartbeat, now: datetime) -> DeviceChange:
    """The record after a heartbeat; ignored for a device that is not registered."""
    if current is None or not current.active:
        return _unchanged(current) if current is not None else _ignored(event)
    last_seen = max(current.last_seen, wall_time(event.timestamp))
    newer = current.now_playing_at is None or (
        event.timestamp.order() > current.now_playing_at.order()
    )
    playing = event.now_playing if newer else current.now_playing
    playing_at = event.timestamp if newer else current.now_playing_at
    online = is_online(last_seen, now)
    record = replace(
        current,
        last_seen=last_seen,
        now_playing=playing,
        now_playing_at=playing_at,
        announced_online=online,
    )
    if record == current:
        return _unchanged(current)
    messages = []
    if online != current.announced_online or _playing_changed(current.now_playing, playing):
        messages.append(
            DevicePresenceMessage(
                device_id=record.device_id,
                presence=_presence(online),
                last_seen=last_seen,
                device=record.info if online and not current.announced_online else None,
                now_playing=playing,
            )
        )
    visible = (last_seen, playing) != (current.last_seen, current.now_playing)
    return DeviceChange(record, stored=True, visible=visible, messages=messages)


def _ignored(event: DeviceHeartbeat) -> DeviceChange:
    # Nothing to store: an unknown device's heartbeat leaves no trace.
    ghost = DeviceRecord(
        user_id=event.user_id,
        device_id=event.device_id,
        info=None,
        membership=event.timestamp,
        removed=True,
        last_seen=wall_time(event.timestamp),
    )
    return DeviceChange(ghost, stored=False, visible=False)


def went_offline(record: DeviceRecord) -> DevicePresenceMessage:
    """What the devices channel hears when the presence sweep finds a device silent."""
    return DevicePresenceMessage(
        device_id=record.device_id, presence=Presence.offline, last_seen=record.last_seen
    )


def removed_by(
    removals: Iterable[DeviceRemoved], records: Mapping[str, Mapping[str, DeviceRecord]]
) -> list[tuple[str, str]]:
    """The (user, device) pairs of these removals that the stored records show removed: the
    devices whose realtime tokens must be revoked. A removal outrun by a later registration
    revokes nothing; a removal seen again (a redelivery) names its device again, harmlessly."""
    out = []
    for event in removals:
        record = records.get(event.user_id, {}).get(event.device_id)
        if record is not None and record.removed:
            out.append((event.user_id, event.device_id))
    return sorted(set(out))
