"""One consumed batch merged into the state loaded for it (no I/O): what to store, which users'
views changed, and the realtime events to announce, in the batch's order.

The handlers load the rows a batch touches, call one of these, write back what it returns and
stage its events in the same transaction. An operation that changes nothing (a duplicate, a
stale write) is neither stored nor announced.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from agents.framework.outgoing import Outgoing
from agents.sync import devices as device_rules
from agents.sync.clock import wall_time
from agents.sync.commands import decide
from agents.sync.devices import DeviceChange, DeviceRecord
from agents.sync.messages import command_events, message_id, realtime_event
from agents.sync.next_episode import Episode, next_episode
from agents.sync.progress import Position, is_complete, merge
from agents.sync.records import TitleState, decode_titles, encode_title
from agents.sync.watchlist import WatchlistState, apply, compact_title, contains
from schemas.envelope import Envelope
from schemas.sync import (
    HLC,
    CommandResult,
    DeviceHeartbeat,
    DeviceRegistered,
    DeviceRemoved,
    ProgressMessage,
    RealtimeEvent,
    RemoteCommandIssued,
    UpNextEpisode,
    WatchlistMessage,
    WatchlistOperation,
    WatchlistUpdate,
)
from topics.registry import SYNC_COMMAND_RESULTS

UserTitle = tuple[str, uuid.UUID]
UserDevice = tuple[str, str]


@dataclass(frozen=True, slots=True)
class TitleRow:
    """A watchlist title as stored: the OR-Set state and the newest live add, if visible."""

    user_id: str
    content_id: uuid.UUID
    state: TitleState
    visible: bool
    added_at: HLC | None
    added_by: str | None


@dataclass
class Merged:
    """What a batch changed. `rows` are keyed like the state they came from."""

    rows: dict[Any, Any] = field(default_factory=dict)
    changed_users: set[str] = field(default_factory=set)
    events: list[Outgoing] = field(default_factory=list)
    # Operations dropped because they would cross a bound (docs/OPERATIONS.md#bounds).
    refused: list[Envelope[Any]] = field(default_factory=list)
    # Watchlist tombstones and clears dropped past their retention.
    compacted: int = 0


def _title_row(state: WatchlistState, content_id: uuid.UUID) -> TitleRow:
    adds = state.adds.get(content_id, {})
    newest = max(adds.values(), key=lambda a: a.key(), default=None)
    return TitleRow(
        user_id=state.user_id,
        content_id=content_id,
        state=encode_title(state, content_id),
        visible=newest is not None,
        added_at=newest.timestamp if newest else None,
        added_by=newest.device_id if newest else None,
    )


def watchlist(
    stored: Mapping[str, Mapping[uuid.UUID, TitleState]],
    batch: Sequence[Envelope[WatchlistUpdate]],
    sizes: Mapping[str, int] | None = None,
    max_size: int | None = None,
    compact_before_us: int | None = None,
) -> Merged:
    """OR-Set operations into the users' stored titles; rows keyed by (user, title).

    An operation that changes the stored state is stored; only one that changes what the list
    shows (the title's live adds) raises the version and is announced. A remove of a title not
    on the list is kept (an add stamped before it, arriving later, stays covered) but changes
    nothing a device sees.

    `sizes` (titles on each user's list before the batch) and `max_size`: an add that would put
    a new title on a list already holding `max_size` is refused (in `refused`, not applied).
    `compact_before_us`: tombstones and clears of the loaded titles stamped before it are
    dropped (their rows rewritten), so a storm of removes on one title stays bounded."""
    states = {user: decode_titles(user, titles) for user, titles in stored.items()}
    counts = dict(sizes or {})
    out = Merged()
    for env in batch:
        update = env.payload
        cid = update.content_id
        state = states.setdefault(update.user_id, WatchlistState(user_id=update.user_id))
        shown = dict(state.adds.get(cid, {}))
        size = counts.get(update.user_id, 0)
        if (
            max_size is not None
            and update.operation is WatchlistOperation.add
            and not shown
            and size >= max_size
        ):
            out.refused.append(env)
            continue
        if not apply(state, update):
            continue
        counts[update.user_id] = size + contains(state, cid) - bool(shown)
        out.rows[(update.user_id, cid)] = _title_row(state, cid)
        if state.adds.get(cid, {}) == shown:
            continue
        out.changed_users.add(update.user_id)
        message = WatchlistMessage.of(update, in_watchlist=contains(state, cid))
        out.events.append(
            realtime_event(
                update.user_id,
                message,
                message_id(env.event_id, str(cid)),
                wall_time(update.timestamp),
                env,
            )
        )
    if compact_before_us is not None:
        for state in states.values():
            for cid in set(state.tombstones) | set(state.cleared):
                dropped = compact_title(state, cid, compact_before_us)
                if dropped:
                    out.compacted += dropped
                    out.rows[(state.user_id, cid)] = _title_row(state, cid)
    return out


def progress(
    stored: Mapping[UserTitle, Position],
    batch: Sequence[Envelope[Any]],
    episode_lists: Mapping[uuid.UUID, Sequence[Episode]] | None = None,
) -> Merged:
    """Progress updates into the registers; rows are the winning Positions by (user, title).

    `episode_lists`: the episode list of each series a finished title of the batch belongs to
    (finished_titles); a winning report that finishes an episode announces the next one."""
    current: dict[UserTitle, Position] = dict(stored)
    episodes = {e.content_id: e for es in (episode_lists or {}).values() for e in es}
    out = Merged()
    for env in batch:
        update = env.payload
        key = (update.user_id, update.content_id)
        result = merge(current.get(key), update)
        if not result.changed:
            continue
        current[key] = out.rows[key] = result.winner
        out.changed_users.add(update.user_id)
        up_next = None
        if is_complete(result.winner) and update.content_id in episodes:
            finished = episodes[update.content_id]
            up_next = _up_next(next_episode(finished, episode_lists[finished.series_id]))
        out.events.append(
            realtime_event(
                update.user_id,
                ProgressMessage.of(update, up_next),
                message_id(env.event_id, str(update.content_id)),
                wall_time(update.timestamp),
                env,
            )
        )
    return out


def finished_titles(batch: Sequence[Envelope[Any]]) -> set[uuid.UUID]:
    """The titles a report of the batch finishes: only their series need loading."""
    return {env.payload.content_id for env in batch if is_complete(Position.of(env.payload))}


def _up_next(episode: Episode | None) -> UpNextEpisode | None:
    if episode is None:
        return None
    return UpNextEpisode(
        series_id=episode.series_id,
        content_id=episode.content_id,
        season_number=episode.season_number,
        episode_number=episode.episode_number,
        absolute_number=episode.absolute_number,
    )


def _active_devices(current: Mapping[UserDevice, DeviceRecord], user_id: str) -> int:
    return sum(1 for (user, _), record in current.items() if user == user_id and record.active)


def _past_device_limit(
    current: Mapping[UserDevice, DeviceRecord], event: Any, max_devices: int | None
) -> bool:
    """A registration of a device not active now, for a user with `max_devices` active."""
    if max_devices is None or not isinstance(event, DeviceRegistered):
        return False
    held = current.get((event.user_id, event.device.device_id))
    if held is not None and held.active:
        return False
    return _active_devices(current, event.user_id) >= max_devices


def devices(
    stored: Mapping[UserDevice, DeviceRecord],
    batch: Sequence[Envelope[DeviceRegistered | DeviceHeartbeat | DeviceRemoved]],
    now: datetime,
    max_devices: int | None = None,
) -> Merged:
    """Registrations, heartbeats or removals into the device records by (user, device).

    A registration of a new device for a user with `max_devices` active ones is refused (in
    `refused`, not applied): the bound the gateway checks, held here under the user's lock."""
    current: dict[UserDevice, DeviceRecord] = dict(stored)
    out = Merged()
    for env in batch:
        event = env.payload
        if _past_device_limit(current, event, max_devices):
            out.refused.append(env)
            continue
        change = _device_change(current, event, now)
        if not change.stored:
            continue
        key = (change.record.user_id, change.record.device_id)
        current[key] = out.rows[key] = change.record
        if change.visible:
            out.changed_users.add(change.record.user_id)
        for n, message in enumerate(change.messages):
            out.events.append(
                realtime_event(
                    change.record.user_id,
                    message,
                    message_id(env.event_id, f"{change.record.device_id}:{n}"),
                    now,
                    env,
                )
            )
    return out


def _device_change(
    current: Mapping[UserDevice, DeviceRecord],
    event: DeviceRegistered | DeviceHeartbeat | DeviceRemoved,
    now: datetime,
) -> DeviceChange:
    if isinstance(event, DeviceRegistered):
        return device_rules.register(
            current.get((event.user_id, event.device.device_id)), event, now
        )
    held = current.get((event.user_id, event.device_id))
    if isinstance(event, DeviceHeartbeat):
        return device_rules.heartbeat(held, event, now)
    return device_rules.remove(held, event)


@dataclass
class Routed:
    """The router's decisions: results to store and announce, in the batch's order."""

    decisions: list[tuple[RemoteCommandIssued, CommandResult]] = field(default_factory=list)
    events: list[Outgoing] = field(default_factory=list)

    @property
    def messages(self) -> list[RealtimeEvent]:
        """The realtime messages among the events (commands and results, in order): the router
        sends them itself once committed, ahead of their copies on `sync.realtime`."""
        return [e.payload for e in self.events if isinstance(e.payload, RealtimeEvent)]


def commands(
    batch: Sequence[Envelope[RemoteCommandIssued]],
    devices_of: Mapping[str, Mapping[str, DeviceRecord]],
    decided: set[uuid.UUID],
    now: datetime,
) -> Routed:
    """Decide each command not decided before against its user's active devices."""
    out = Routed()
    seen = set(decided)
    for env in batch:
        issued = env.payload
        if issued.command_id in seen:
            # Decided (and delivered, if it was) before: a redelivery never delivers again.
            continue
        seen.add(issued.command_id)
        states = {
            device_id: record.state()
            for device_id, record in devices_of.get(issued.user_id, {}).items()
            if record.active
        }
        result = decide(issued, states, now)
        out.decisions.append((issued, result))
        out.events.extend(command_events(issued, result, env))
        out.events.append(
            Outgoing(SYNC_COMMAND_RESULTS, result, issued.user_id, env.correlation_id)
        )
    return out
