"""The documents of the sync read models: what the sync agents write to Redis and the gateway
serves as they are (and documents in OpenAPI). Pure data; Redis keys are in sync_read_model.

Each document carries the version of its view: PostgreSQL bumps it with every change, and
Redis refuses a document older than the one it holds (agreements/sync_read_model.py).
"""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from schemas.sync import HLC, DeviceInfo, NowPlaying, PlaybackState

# How long Redis keeps a user's documents (and their device register) after the last write.
DOCUMENT_TTL_S = 7 * 24 * 3600

# Longest continue-watching list kept in the read model; a GET asks for at most this many.
CONTINUE_WATCHING_MAX = 200


class _Document(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class WatchlistEntry(_Document):
    content_id: uuid.UUID
    # The newest add of the title still in force, and the device that made it.
    added_at: HLC
    device_id: str | None = None
    # The live add tags: a remove that names them takes the title off every device's list.
    tags: list[uuid.UUID]


class WatchlistDocument(_Document):
    user_id: str
    version: int = Field(ge=0)
    # Most recently added first.
    items: list[WatchlistEntry]


class ProgressEntry(_Document):
    content_id: uuid.UUID
    position_seconds: float
    duration_seconds: float
    # Share watched, 0..1; titles above 0.9 are complete and left out.
    completion: float
    state: PlaybackState
    timestamp: HLC
    device_id: str
    # The wall time of `timestamp`, for display.
    updated_at: datetime
    # An episode of a series (docs/SYNC.md, "Series in continue watching"): the series stands
    # once in the list, as the episode to play. Null for a film or any title outside a series.
    series_id: uuid.UUID | None = None
    season_number: int | None = None
    episode_number: int | None = None
    absolute_number: int | None = None
    # True when this is the episode after one the user finished (the position is where to
    # start it: 0 when not started); `timestamp` and `device_id` are then the finished one's.
    up_next: bool = False


class ContinueWatchingDocument(_Document):
    user_id: str
    version: int = Field(ge=0)
    # The latest position per title, newest first, without completed titles; a series once,
    # as its latest episode or the one after it.
    items: list[ProgressEntry]


class DeviceEntry(DeviceInfo):
    """docs/RULES.md's DeviceInfo with its presence: is_online is judged when the list is read."""

    last_seen: datetime
    is_online: bool
    now_playing: NowPlaying | None = None


class DevicesDocument(_Document):
    user_id: str
    version: int = Field(ge=0)
    # By device_id.
    devices: list[DeviceEntry]


DOCUMENTS: dict[str, type[_Document]] = {
    "watchlist": WatchlistDocument,
    "progress": ContinueWatchingDocument,
    "devices": DevicesDocument,
}
