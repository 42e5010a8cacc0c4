"""Builders for sync payloads and device states, with fixed ids and an injected clock."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from agents.sync.presence import DeviceState
from schemas.sync import (
    HLC,
    DeviceInfo,
    ProgressUpdate,
    RemoteCommandIssued,
    WatchlistUpdate,
)

USER = "alice"
T0 = datetime(2024, 6, 1, 20, 0, tzinfo=UTC)
MOVIE = uuid.UUID(int=1)
SHOW = uuid.UUID(int=2)
DOC = uuid.UUID(int=3)


def hlc(physical_us: int, logical: int = 0) -> HLC:
    return HLC(physical_us=physical_us, logical=logical)


def tag(n: int) -> uuid.UUID:
    return uuid.UUID(int=1000 + n)


def add(content_id: uuid.UUID, tag_id: uuid.UUID, at: HLC, device: str = "tv-1") -> WatchlistUpdate:
    return WatchlistUpdate(
        user_id=USER,
        operation="add",
        content_id=content_id,
        unique_tag=tag_id,
        timestamp=at,
        device_id=device,
    )


def remove(
    content_id: uuid.UUID,
    tags: list[uuid.UUID],
    at: HLC,
    device: str = "phone-1",
) -> WatchlistUpdate:
    return WatchlistUpdate(
        user_id=USER,
        operation="remove",
        content_id=content_id,
        removed_tags=tags,
        timestamp=at,
        device_id=device,
    )


def progress(
    position: float,
    at: HLC,
    device: str = "tv-1",
    *,
    content_id: uuid.UUID = MOVIE,
    duration: float = 100.0,
    state: str = "playing",
) -> ProgressUpdate:
    return ProgressUpdate(
        user_id=USER,
        content_id=content_id,
        position_seconds=position,
        duration_seconds=duration,
        state=state,
        timestamp=at,
        device_id=device,
    )


def device_info(device_id: str, **capabilities: Any) -> DeviceInfo:
    return DeviceInfo.model_validate(
        {
            "device_id": device_id,
            "device_type": "tv",
            "platform": "tizen",
            "capabilities": {"remote_controllable": True, **capabilities},
            "app_version": "3.2.1",
            "device_name": f"{device_id} in the living room",
        }
    )


def device(
    device_id: str,
    *,
    seen_ago_s: float = 1,
    now: datetime = T0,
    announced_online: bool = False,
    **capabilities: Any,
) -> DeviceState:
    return DeviceState(
        info=device_info(device_id, **capabilities),
        last_seen=now - timedelta(seconds=seen_ago_s),
        announced_online=announced_online,
    )


def command(
    body: dict[str, Any],
    *,
    target: str = "tv-1",
    issued_at: datetime = T0,
    ttl_seconds: int = 5,
) -> RemoteCommandIssued:
    return RemoteCommandIssued.model_validate(
        {
            "command_id": uuid.UUID(int=77),
            "user_id": USER,
            "source_device_id": "phone-1",
            "target_device_id": target,
            "command": body,
            "issued_at": issued_at,
            "ttl_seconds": ttl_seconds,
        }
    )
