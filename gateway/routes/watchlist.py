"""Watchlist writes: a user adds or removes a title; a WatchlistUpdate goes to sync.watchlist.

Only the user themselves (or an admin) may write a watchlist, with scope `watchlist:write`.
The gateway stamps each operation with its process's hybrid logical clock; merging them into
the OR-Set is the consuming agent's job.
"""

from __future__ import annotations

import time
import uuid
from typing import Annotated

from fastapi import APIRouter, Body, Depends, Header, Path, Request, status
from pydantic import BaseModel, ConfigDict, Field

from core.publisher import Publisher
from gateway.auth.dependencies import USER_ID_PATTERN, own_user, require_scopes
from gateway.auth.principal import Principal
from gateway.routes.content import Accepted
from schemas.sync import HLC, WatchlistOperation, WatchlistUpdate, next_hlc
from topics.registry import SYNC_WATCHLIST

router = APIRouter(prefix="/api/v1/users/{user_id}/watchlist", tags=["watchlist"])

DEVICE_ID_PATTERN = r"^[A-Za-z0-9._:-]{1,128}$"
UserId = Annotated[str, Path(pattern=USER_ID_PATTERN, description="the caller's own user id")]
DeviceId = Annotated[
    str | None,
    Header(alias="X-Device-ID", pattern=DEVICE_ID_PATTERN, description="the device acting"),
]
_RESPONSES: dict[int | str, dict[str, str]] = {
    401: {"description": "no valid credential"},
    403: {"description": "missing scope watchlist:write, or another user's watchlist"},
    422: {"description": "invalid fields"},
    503: {"description": "broker down"},
}


class HybridClock:
    """This process's HLC: strictly increasing stamps even when the wall clock steps back."""

    def __init__(self) -> None:
        self._last: HLC | None = None

    def now(self) -> HLC:
        # No await between read and write: one event loop, so no lock is needed.
        self._last = next_hlc(self._last, time.time_ns() // 1000)
        return self._last


CLOCK = HybridClock()


class WatchlistAccepted(Accepted):
    """Accepted, plus what the client needs later: the add's tag and the operation's stamp."""

    unique_tag: uuid.UUID | None
    timestamp: HLC


class RemoveBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # Tags the client has seen for this title; empty means every tag observed so far.
    observed_tags: list[uuid.UUID] = Field(default_factory=list, max_length=1000)


async def _publish(request: Request, update: WatchlistUpdate) -> WatchlistAccepted:
    publisher: Publisher = request.app.state.publisher
    published = await publisher.publish(SYNC_WATCHLIST, update, key=update.user_id)
    return WatchlistAccepted(
        **published.__dict__, unique_tag=update.unique_tag, timestamp=update.timestamp
    )


@router.put(
    "/{content_id}",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=WatchlistAccepted,
    responses=_RESPONSES,
    dependencies=[Depends(require_scopes("watchlist:write"))],
)
async def add_to_watchlist(
    user_id: UserId,
    content_id: uuid.UUID,
    request: Request,
    principal: Annotated[Principal, Depends(own_user)],
    device_id: DeviceId = None,
) -> WatchlistAccepted:
    update = WatchlistUpdate(
        user_id=user_id,
        operation=WatchlistOperation.add,
        content_id=content_id,
        unique_tag=uuid.uuid4(),
        timestamp=CLOCK.now(),
        device_id=device_id,
    )
    return await _publish(request, update)


@router.delete(
    "/{content_id}",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=WatchlistAccepted,
    responses=_RESPONSES,
    dependencies=[Depends(require_scopes("watchlist:write"))],
)
async def remove_from_watchlist(
    user_id: UserId,
    content_id: uuid.UUID,
    request: Request,
    principal: Annotated[Principal, Depends(own_user)],
    body: Annotated[RemoveBody | None, Body()] = None,
    device_id: DeviceId = None,
) -> WatchlistAccepted:
    update = WatchlistUpdate(
        user_id=user_id,
        operation=WatchlistOperation.remove,
        content_id=content_id,
        removed_tags=body.observed_tags if body else [],
        timestamp=CLOCK.now(),
        device_id=device_id,
    )
    return await _publish(request, update)
