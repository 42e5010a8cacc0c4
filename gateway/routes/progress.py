"""Playback progress: a device reports where the user is in a title (a ProgressUpdate on
sync.progress); "continue watching" is read from the Redis read model.

Reporting needs `progress:write` and the reporting device (X-Device-ID: the register's tie
breaker); reading needs `progress:read`. The newest report per title wins, whichever device
sent it; titles watched past 90 % leave continue watching.
"""

from __future__ import annotations

import uuid

from fastapi import APIRouter, HTTPException, Request, Response, status

from agreements.sync_documents import (
    CONTINUE_WATCHING_MAX,
    ContinueWatchingDocument,
    ProgressEntry,
)
from gateway.accepted import Accepted, accepted
from gateway.auth.dependencies import own_user
from gateway.device_operations import ProgressReport
from gateway.device_operations import report_progress as report_progress_of
from gateway.device_ownership import require_own_device
from gateway.idempotency import operation_id
from gateway.json_body import json_body, openapi_body
from gateway.profiles import (
    HEADER_PARAMETER,
    RESTRICTED_RESPONSE,
    acting_limits,
    profile_filtered,
    restricted,
)
from gateway.request_parameters import (
    ACTING_DEVICE,
    CONTENT_ID,
    USER_ID,
    LimitParameter,
)
from gateway.routes.content_read import readable, refusals
from gateway.routes.user_routes import (
    READ_RESPONSES,
    device_checked,
    documented,
    responses_with_rules,
)
from gateway.sync_clock import CLOCK_RULE
from gateway.sync_lookup import json_document, read_view
from schemas.sync import HLC, SyncView
from schemas.time_zone import UNKNOWN_ZONE_RULE

router = APIRouter(prefix="/api/v1/users/{user_id}/progress", tags=["progress"])

DEFAULT_LIMIT = 20


class ProgressAccepted(Accepted):
    """The 202 of a progress report: where the event is, and the stamp it won or lost by."""

    timestamp: HLC


@router.put(
    "/{content_id}",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=ProgressAccepted,
    responses=device_checked(
        responses_with_rules(
            CLOCK_RULE, "a `position_seconds` past `duration_seconds`", UNKNOWN_ZONE_RULE
        )
    ),
    openapi_extra=documented(
        USER_ID,
        CONTENT_ID,
        device=ACTING_DEVICE,
        write=True,
        extra=openapi_body(ProgressReport, "where playback is; the newest report wins"),
    ),
)
async def report_progress(request: Request) -> Response:
    _, user_id = await own_user(request, "progress:write")
    content_id = CONTENT_ID.read(request)
    device_id = ACTING_DEVICE.read(request)
    report = await json_body(request, ProgressReport)
    await require_own_device(request, user_id, device_id)
    published, update = await report_progress_of(
        request.app, user_id, content_id, device_id, report, operation_id(request)
    )
    return accepted(published, timestamp=update.timestamp.model_dump())


LIMIT = LimitParameter(maximum=CONTINUE_WATCHING_MAX, default=DEFAULT_LIMIT)


@router.get(
    "",
    responses={
        200: {
            "model": ContinueWatchingDocument,
            "description": "continue watching: the latest position per title, newest first, "
            "without completed titles; a series once, as its latest episode or, after a "
            "finished one, the next (`up_next`); for a profile with parental limits, only the "
            "titles they allow",
        },
        **profile_filtered(READ_RESPONSES),
    },
    openapi_extra=documented(
        USER_ID,
        extra={"parameters": [LIMIT.openapi(), HEADER_PARAMETER]},
    ),
)
async def continue_watching(request: Request) -> Response:
    _, user_id = await own_user(request, "progress:read")
    limit = LIMIT.read(request)
    document = ContinueWatchingDocument.model_validate_json(
        await read_view(request, SyncView.progress, user_id)
    )
    items = document.items
    limits = await acting_limits(request)
    if limits is not None:
        items = await readable(request, limits, items)
    trimmed = document.model_copy(update={"items": items[:limit]})
    return json_document(trimmed.model_dump_json().encode())


@router.get(
    "/{content_id}",
    responses={
        200: {"model": ProgressEntry, "description": "where to resume this title"},
        404: {
            "description": "no open progress for this title (never started, or completed; "
            "an episode only while continue watching lists it for its series)"
        },
        **READ_RESPONSES,
        403: {
            "description": f"{READ_RESPONSES[403]['description']}; or "
            f"{RESTRICTED_RESPONSE[403]['description']}"
        },
    },
    openapi_extra=documented(USER_ID, CONTENT_ID, extra={"parameters": [HEADER_PARAMETER]}),
)
async def resume_point(request: Request) -> Response:
    _, user_id = await own_user(request, "progress:read")
    content_id: uuid.UUID = CONTENT_ID.read(request)
    document = ContinueWatchingDocument.model_validate_json(
        await read_view(request, SyncView.progress, user_id)
    )
    for entry in document.items:
        if entry.content_id == content_id:
            limits = await acting_limits(request)
            if limits is not None:
                reason = (await refusals(request, limits, [content_id])).get(content_id)
                if reason is not None:
                    raise restricted(reason)
            return json_document(entry.model_dump_json().encode())
    raise HTTPException(404, f"no open progress of {user_id} for {content_id}")
