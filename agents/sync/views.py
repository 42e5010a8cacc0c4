"""What devices read, rendered from the merged state (no I/O): the watchlist, continue watching
and the device list of one user, as the documents of agreements/sync_documents.py."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from agents.sync.clock import lww_key, wall_time
from agents.sync.devices import DeviceRecord
from agents.sync.next_episode import Episode, UpNext
from agents.sync.presence import is_online
from agents.sync.progress import Position, completion, continue_watching
from agreements.sync_documents import (
    CONTINUE_WATCHING_MAX,
    ContinueWatchingDocument,
    DeviceEntry,
    DevicesDocument,
    ProgressEntry,
    WatchlistDocument,
    WatchlistEntry,
)
from schemas.sync import HLC, PlaybackState


@dataclass(frozen=True, slots=True)
class SeriesProgress:
    """The series side of one user's continue watching, loaded by the store."""

    # One line per series (agents/sync/next_episode.py, series_lines).
    lines: Sequence[UpNext]
    # Every title of the user's positions that is an episode in order: listed only via its
    # series (specials and unnumbered episodes are titles of their own).
    placed: frozenset[uuid.UUID] = frozenset()
    # Catalog runtimes (seconds) of the episodes to play next, where known.
    runtimes_s: dict[uuid.UUID, float] = field(default_factory=dict)


def watchlist_document(
    user_id: str,
    version: int,
    items: Iterable[tuple[uuid.UUID, HLC, str | None, Sequence[uuid.UUID]]],
) -> WatchlistDocument:
    """`items`: (title, newest live add, its device, live tags) of each visible title."""
    # Built from stored, already validated rows: model_construct skips re-validating each one.
    entries = [
        WatchlistEntry.model_construct(
            content_id=cid, added_at=at, device_id=device, tags=sorted(tags)
        )
        for cid, at, device, tags in items
    ]
    entries.sort(key=lambda e: (lww_key(e.added_at, e.device_id), e.content_id.int), reverse=True)
    return WatchlistDocument(user_id=user_id, version=version, items=entries)


def progress_entry(position: Position, episode: Episode | None = None) -> ProgressEntry:
    return ProgressEntry(
        content_id=position.content_id,
        position_seconds=position.position_seconds,
        duration_seconds=position.duration_seconds,
        completion=round(completion(position), 6),
        state=position.state,
        timestamp=position.timestamp,
        device_id=position.device_id,
        updated_at=wall_time(position.timestamp),
        **_episode_fields(episode),
    )


def _episode_fields(episode: Episode | None) -> dict[str, Any]:
    if episode is None:
        return {}
    return {
        "series_id": episode.series_id,
        "season_number": episode.season_number,
        "episode_number": episode.episode_number,
        "absolute_number": episode.absolute_number,
    }


def up_next_entry(line: UpNext, duration_seconds: float | None) -> ProgressEntry:
    """The episode after a finished one: where to start it (its own open position, else 0),
    stamped with the finished episode's write, which places the series in the list."""
    if line.position is not None:
        started = progress_entry(line.position, line.episode)
        return started.model_copy(
            update={
                "timestamp": line.since.timestamp,
                "device_id": line.since.device_id,
                "updated_at": wall_time(line.since.timestamp),
                "up_next": True,
            }
        )
    return ProgressEntry(
        content_id=line.episode.content_id,
        position_seconds=0.0,
        # Not started: its runtime from the catalog, else the finished episode's length.
        duration_seconds=duration_seconds or line.since.duration_seconds,
        completion=0.0,
        state=PlaybackState.stopped,
        timestamp=line.since.timestamp,
        device_id=line.since.device_id,
        updated_at=wall_time(line.since.timestamp),
        up_next=True,
        **_episode_fields(line.episode),
    )


def continue_watching_document(
    user_id: str,
    version: int,
    positions: Iterable[Position],
    series: SeriesProgress | None = None,
) -> ContinueWatchingDocument:
    """`positions`: the user's open positions; `series`: where the user is in each series they
    watch (None: no title is an episode). A placed episode is shown only through its series'
    line, so each series appears once."""
    latest = continue_watching(positions, limit=None)
    rows: list[tuple[Position, ProgressEntry]] = []
    placed = series.placed if series else frozenset()
    for p in latest:
        if p.content_id not in placed:
            rows.append((p, progress_entry(p)))
    if series is not None:
        for line in series.lines:
            if line.finished:
                runtime = series.runtimes_s.get(line.episode.content_id)
                rows.append((line.since, up_next_entry(line, runtime)))
            else:
                rows.append((line.since, progress_entry(line.since, line.episode)))
    rows.sort(key=lambda r: (r[0].order(), r[1].content_id.int), reverse=True)
    items = [entry for _, entry in rows[:CONTINUE_WATCHING_MAX]]
    return ContinueWatchingDocument(user_id=user_id, version=version, items=items)


def device_entry(record: DeviceRecord, now: datetime) -> DeviceEntry:
    if record.info is None:
        raise ValueError(f"device {record.device_id!r} has no details to show")
    return DeviceEntry(
        **record.info.model_dump(),
        last_seen=record.last_seen,
        is_online=is_online(record.last_seen, now),
        now_playing=record.now_playing,
    )


def devices_document(
    user_id: str, version: int, records: Iterable[DeviceRecord], now: datetime
) -> DevicesDocument:
    """The user's registered devices by id; removed ones are not listed."""
    active = sorted((r for r in records if r.active), key=lambda r: r.device_id)
    return DevicesDocument(
        user_id=user_id, version=version, devices=[device_entry(r, now) for r in active]
    )
