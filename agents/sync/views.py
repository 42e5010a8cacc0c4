"""What devices read, rendered from the merged state (no I/O): the watchlist, continue watching
and the device list of one user, as the documents of agreements/sync_documents.py."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from datetime import datetime

from agents.sync.clock import lww_key, wall_time
from agents.sync.devices import DeviceRecord
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
from schemas.sync import HLC


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


def progress_entry(position: Position) -> ProgressEntry:
    return ProgressEntry(
        content_id=position.content_id,
        position_seconds=position.position_seconds,
        duration_seconds=position.duration_seconds,
        completion=round(completion(position), 6),
        state=position.state,
        timestamp=position.timestamp,
        device_id=position.device_id,
        updated_at=wall_time(position.timestamp),
    )


def continue_watching_document(
    user_id: str, version: int, positions: Iterable[Position]
) -> ContinueWatchingDocument:
    latest = continue_watching(positions, limit=CONTINUE_WATCHING_MAX)
    return ContinueWatchingDocument(
        user_id=user_id, version=version, items=[progress_entry(p) for p in latest]
    )


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
