"""Cross-device sync events: hybrid logical clock timestamps and watchlist (OR-Set) operations."""

from __future__ import annotations

import uuid
from enum import StrEnum
from typing import ClassVar

from pydantic import BaseModel, ConfigDict, Field, model_validator

from schemas.envelope import Payload

# 16-bit logical counter (DOMAIN.md); kept as its own field, never packed into the physical part.
MAX_LOGICAL = 0xFFFF


class HLC(BaseModel):
    """Hybrid logical clock: physical microseconds since the epoch plus a logical counter."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    physical_us: int = Field(ge=0)
    logical: int = Field(default=0, ge=0, le=MAX_LOGICAL)

    def order(self) -> tuple[int, int]:
        return (self.physical_us, self.logical)


def next_hlc(last: HLC | None, now_us: int) -> HLC:
    """The timestamp after `last` on a node whose wall clock reads `now_us`.

    The wall clock wins when it moved forward; otherwise the logical counter advances, and a
    full counter borrows one microsecond so timestamps stay strictly increasing.
    """
    if last is None or now_us > last.physical_us:
        return HLC(physical_us=now_us, logical=0)
    if last.logical < MAX_LOGICAL:
        return HLC(physical_us=last.physical_us, logical=last.logical + 1)
    return HLC(physical_us=last.physical_us + 1, logical=0)


class WatchlistOperation(StrEnum):
    add = "add"
    remove = "remove"


class WatchlistUpdate(Payload):
    """One OR-Set operation on a user's watchlist, keyed by user_id on `sync.watchlist`.

    add: `unique_tag` is the new element tag. remove: `removed_tags` are the tags the client had
    seen; an empty list tombstones every tag the store has observed for the title so far. A
    re-add after a remove carries a fresh tag, so it wins over that remove.
    """

    event_type: ClassVar[str] = "sync.watchlist.updated"

    user_id: str = Field(min_length=1, max_length=128)
    operation: WatchlistOperation
    content_id: uuid.UUID
    unique_tag: uuid.UUID | None = None
    removed_tags: list[uuid.UUID] = Field(default_factory=list, max_length=1000)
    timestamp: HLC
    device_id: str | None = Field(default=None, min_length=1, max_length=128)

    @model_validator(mode="after")
    def _tags_fit_operation(self) -> WatchlistUpdate:
        if self.operation is WatchlistOperation.add:
            if self.unique_tag is None:
                raise ValueError("add needs a unique_tag")
            if self.removed_tags:
                raise ValueError("add carries no removed_tags")
        elif self.unique_tag is not None:
            raise ValueError("remove carries removed_tags, not a unique_tag")
        return self
