"""Watchlist: a user adds or removes a title (a WatchlistUpdate on sync.watchlist) and reads the
list (from the Redis read model).

Only the user themselves (or an admin) may touch a watchlist: `watchlist:write` to change it,
`watchlist:read` to read it. Each add carries a fresh unique tag; a remove names the tags the
client has seen (none: every tag seen so far). The gateway stamps operations from the user's
hybrid logical clock (gateway/sync_clock.py) unless the client sends its own stamp (edits made
offline keep their time); merging them into the OR-Set is the sync agent's job (agents/sync).

An add names a title the catalog has: the same check GET /api/v1/content/{id} makes (the read
model in Redis, the catalog agent on a miss), else 404 `not_found` on `path.content_id`. A
remove is not checked: taking off what is not there stays a harmless, idempotent no-op (and a
title the catalog dropped must still be removable). See docs/SYNC.md, "Watchlist adds name a
title of the catalog".

An add acting as a profile with parental limits (the token's `profile` claim or X-Profile-ID)
is held to them as a title read directly is: 403 `restricted` with the reason, and a profile
the account does not have is 403 `unknown_profile` (docs/AUTH.md, "Profiles and parental
controls"). The list is the account's, so an adult's add is not limited.
"""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter, Request, Response, status
from pydantic import BaseModel, ConfigDict, Field

from agreements.sync_documents import WatchlistDocument
from core.publisher import Publisher
from gateway.accepted import Accepted, accepted
from gateway.auth.dependencies import own_user
from gateway.bounds import watchlist_limit
from gateway.device_ownership import require_own_device
from gateway.idempotency import operation_id
from gateway.json_body import openapi_body, optional_body
from gateway.lookup import AGENT_FAILED_RESPONSE
from gateway.profiles import (
    HEADER_PARAMETER,
    RESTRICTED_RESPONSE,
    acting_limits,
    profile_filtered,
    restricted,
)
from gateway.request_parameters import (
    CONTENT_ID,
    MAYBE_ACTING_DEVICE,
    USER_ID,
)
from gateway.routes.content_read import (
    UNKNOWN_TITLE_RESPONSE,
    documents_refused,
    find_content,
    readable,
    unknown_title,
)
from gateway.routes.user_routes import (
    READ_RESPONSES,
    device_checked,
    documented,
    responses_with_rules,
)
from gateway.sync_clock import CLOCK_RULE, operation_stamp
from gateway.sync_lookup import json_document, read_view
from schemas.sync import HLC, SyncView, WatchlistOperation, WatchlistUpdate
from topics.registry import SYNC_WATCHLIST

router = APIRouter(prefix="/api/v1/users/{user_id}/watchlist", tags=["watchlist"])

_ADD_CHECKED = device_checked(responses_with_rules(CLOCK_RULE))
ADD_RESPONSES: dict[int | str, dict[str, Any]] = {
    **_ADD_CHECKED,
    403: {
        "description": f"{_ADD_CHECKED[403]['description']}; "
        f"{RESTRICTED_RESPONSE[403]['description']}"
    },
    **UNKNOWN_TITLE_RESPONSE,
    409: {
        "description": "`watchlist_full`: a title not on the list, and the list already "
        "holds SYNC_MAX_WATCHLIST_SIZE (5000) titles; or `idempotency_in_flight`"
    },
    503: {
        "description": f"{_ADD_CHECKED[503]['description']}; or the title is not in the read "
        "model and no catalog agent answered whether it exists: retry"
    },
    **AGENT_FAILED_RESPONSE,
}


class WatchlistAccepted(Accepted):
    """Accepted, plus what the client needs later: the add's tag and the operation's stamp."""

    unique_tag: uuid.UUID | None
    timestamp: HLC


class AddBody(BaseModel):
    """Optional: a client that keeps its own OR-Set replica (offline edits) names the tag and
    stamp it made; otherwise the gateway makes both."""

    model_config = ConfigDict(extra="forbid")

    unique_tag: uuid.UUID | None = None
    timestamp: HLC | None = None


class RemoveBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # Tags the client has seen for this title; empty means every tag observed so far.
    observed_tags: list[uuid.UUID] = Field(default_factory=list, max_length=1000)
    timestamp: HLC | None = None


async def _publish(request: Request, update: WatchlistUpdate, event_id: uuid.UUID) -> Response:
    publisher: Publisher = request.app.state.publisher
    published = await publisher.publish(
        SYNC_WATCHLIST, update, key=update.user_id, event_id=event_id
    )
    return accepted(
        published,
        unique_tag=str(update.unique_tag) if update.unique_tag else None,
        timestamp=update.timestamp.model_dump(),
    )


@router.put(
    "/{content_id}",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=WatchlistAccepted,
    responses=ADD_RESPONSES,
    openapi_extra=documented(
        USER_ID,
        CONTENT_ID,
        device=MAYBE_ACTING_DEVICE,
        write=True,
        extra={
            **openapi_body(
                AddBody, "the client's own tag and stamp (both optional)", required=False
            ),
            "parameters": [HEADER_PARAMETER],
        },
    ),
)
async def add_to_watchlist(request: Request) -> Response:
    _, user_id = await own_user(request, "watchlist:write")
    content_id = CONTENT_ID.read(request)
    device_id = MAYBE_ACTING_DEVICE.read(request)
    body = await optional_body(request, AddBody)
    if device_id is not None:
        await require_own_device(request, user_id, device_id)
    # Before the bound: an unknown title is refused as such, whatever the list's size.
    document = await find_content(request, content_id)
    if document is None:
        return unknown_title(request, content_id)
    # A kids profile may not put on the account's list what it may not read (the same rule
    # and reason as GET /api/v1/content/{id}); an unknown profile raises unknown_profile.
    limits = await acting_limits(request)
    if limits is not None:
        reason = (await documents_refused(request, limits, {content_id: document})).get(content_id)
        if reason is not None:
            raise restricted(reason)
    refused = await watchlist_limit(request, user_id, content_id)
    if refused is not None:
        return refused
    event_id = operation_id(request)
    update = WatchlistUpdate(
        user_id=user_id,
        operation=WatchlistOperation.add,
        content_id=content_id,
        # Fresh per operation, and the same for its retries (Idempotency-Key).
        unique_tag=body.unique_tag or event_id,
        timestamp=await operation_stamp(request, user_id, body.timestamp),
        device_id=device_id,
    )
    return await _publish(request, update, event_id)


@router.delete(
    "/{content_id}",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=WatchlistAccepted,
    responses=device_checked(responses_with_rules(CLOCK_RULE)),
    openapi_extra=documented(
        USER_ID,
        CONTENT_ID,
        device=MAYBE_ACTING_DEVICE,
        write=True,
        extra=openapi_body(
            RemoveBody, "the tags the client has seen (none: all seen so far)", required=False
        ),
    ),
)
async def remove_from_watchlist(request: Request) -> Response:
    _, user_id = await own_user(request, "watchlist:write")
    content_id = CONTENT_ID.read(request)
    device_id = MAYBE_ACTING_DEVICE.read(request)
    body = await optional_body(request, RemoveBody)
    if device_id is not None:
        await require_own_device(request, user_id, device_id)
    update = WatchlistUpdate(
        user_id=user_id,
        operation=WatchlistOperation.remove,
        content_id=content_id,
        removed_tags=body.observed_tags,
        timestamp=await operation_stamp(request, user_id, body.timestamp),
        device_id=device_id,
    )
    return await _publish(request, update, operation_id(request))


@router.get(
    "",
    responses={
        200: {
            "model": WatchlistDocument,
            "description": "the list, most recently added first; for a profile with parental "
            "limits, only the titles they allow",
        },
        **profile_filtered(READ_RESPONSES),
    },
    openapi_extra=documented(USER_ID, extra={"parameters": [HEADER_PARAMETER]}),
)
async def get_watchlist(request: Request) -> Response:
    _, user_id = await own_user(request, "watchlist:read")
    document = await read_view(request, SyncView.watchlist, user_id)
    limits = await acting_limits(request)
    if limits is None:
        return json_document(document)
    listed = WatchlistDocument.model_validate_json(document)
    shown = await readable(request, limits, listed.items)
    return json_document(listed.model_copy(update={"items": shown}).model_dump_json().encode())
