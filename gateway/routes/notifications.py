"""Watchlist alerts (docs/NOTIFICATIONS.md): a user's notification preferences, written
through notifications.preferences and read from the Redis read model the notifications agents
render, and their inbox, both read from Redis (on a miss, refilled by the agents over
`notifications.lookup` first, as sync reads are: gateway/sync_lookup.py); marking an entry
read through notifications.read. The gateway never reads PostgreSQL.

Scopes: `notifications:read` (GETs) and `notifications:write` (PUT, POST .../read).
"""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter, Request, Response, status

from agreements.notification_controls import notification_allowed
from agreements.notifications_read_model import (
    inbox_known,
    read_inbox,
    read_inbox_allowed,
    read_preferences,
)
from core.publisher import Publisher
from gateway.accepted import Accepted, accepted
from gateway.auth.dependencies import own_user
from gateway.errors import error_response
from gateway.idempotency import operation_id
from gateway.json_body import json_body, openapi_body
from gateway.lookup import LookupTimeout, new_reply_channel, request_reply
from gateway.profiles import HEADER_PARAMETER, acting_limits, profile_filtered
from gateway.request_parameters import USER_ID, LimitParameter, UuidParameter, invalid
from gateway.routes.user_routes import READ_RESPONSES, RESPONSES, documented
from schemas.notifications import (
    InboxLookupRequested,
    InboxPage,
    NotificationPreferences,
    NotificationRead,
    PreferencesChanged,
    PreferencesDocument,
)
from topics.registry import NOTIFICATIONS_LOOKUP, NOTIFICATIONS_PREFERENCES, NOTIFICATIONS_READ

router = APIRouter(prefix="/api/v1/users/{user_id}", tags=["notifications"])

NOTIFICATION_ID = UuidParameter("notification_id", "a notification of the user's inbox")
DEFAULT_LIMIT, MAX_LIMIT = 20, 100
_NO_PREFERENCES = {404: {"description": "`not_found`: the user has set no preferences"}}


def _json(body: str) -> Response:
    return Response(body, media_type="application/json", headers={"Cache-Control": "no-store"})


@router.put(
    "/preferences",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=Accepted,
    responses=RESPONSES,
    openapi_extra=documented(
        USER_ID,
        write=True,
        extra=openapi_body(
            NotificationPreferences,
            "the user's notification preferences, replaced whole: services (platform ids), "
            "region, time zone and quiet hours in local time, alert kinds, offer types",
        ),
    ),
    summary="Replace the user's notification preferences",
)
async def put_preferences(request: Request) -> Response:
    _, user_id = await own_user(request, "notifications:write")
    body = await json_body(request, NotificationPreferences)
    change = PreferencesChanged(user_id=user_id, preferences=body, changed_at=datetime.now(UTC))
    publisher: Publisher = request.app.state.publisher
    published = await publisher.publish(
        NOTIFICATIONS_PREFERENCES, change, key=user_id, event_id=operation_id(request)
    )
    return accepted(published)


@router.get(
    "/preferences",
    responses={
        200: {"model": PreferencesDocument, "description": "the preferences applied"},
        **_NO_PREFERENCES,
        **READ_RESPONSES,
    },
    openapi_extra=documented(USER_ID),
    summary="The user's notification preferences",
)
async def get_preferences(request: Request) -> Response:
    _, user_id = await own_user(request, "notifications:read")
    prefix = request.app.state.settings.redis.key_prefix
    redis = request.app.state.redis
    document, known = await read_preferences(redis, prefix, user_id)
    settings = request.app.state.settings
    if document is None and not known and settings.gateway.lookup_on_miss:
        await _refill(request, user_id, settings.gateway.lookup_timeout_s)
        document, _ = await read_preferences(redis, prefix, user_id)
    if document is None:
        return error_response(
            404, "not_found", "no notification preferences for this user", request
        )
    return _json(document.model_dump_json())


LIMIT = LimitParameter(maximum=MAX_LIMIT, default=DEFAULT_LIMIT)


def _page_query(request: Request) -> tuple[int, int | None]:
    limit = LIMIT.read(request)
    cursor = request.query_params.get("cursor")
    if cursor is not None and (not cursor.isdigit() or len(cursor) > 19):
        raise invalid(("query", "cursor"), "must be a `next_cursor` of a previous page", cursor)
    return limit, None if cursor is None else int(cursor)


@router.get(
    "/notifications",
    responses={
        200: {
            "model": InboxPage,
            "description": "the inbox, newest first, and the unread count; for a profile "
            "with parental limits, only the notifications of titles they allow",
        },
        **profile_filtered(READ_RESPONSES),
    },
    openapi_extra=documented(
        USER_ID,
        extra={
            "parameters": [
                LIMIT.openapi(),
                {
                    "name": "cursor",
                    "in": "query",
                    "required": False,
                    "schema": {"type": "string", "pattern": "^[0-9]{1,19}$"},
                    "description": "the `next_cursor` of the previous page",
                },
                HEADER_PARAMETER,
            ]
        },
    ),
    summary="The user's notifications (inbox), newest first",
)
async def list_notifications(request: Request) -> Response:
    _, user_id = await own_user(request, "notifications:read")
    limit, before = _page_query(request)
    limits = await acting_limits(request)
    prefix = request.app.state.settings.redis.key_prefix
    redis = request.app.state.redis

    async def read() -> InboxPage:
        if limits is None:
            return await read_inbox(redis, prefix, user_id, limit, before)
        # Filtered before paging: a limited profile's pages, cursors and unread count are
        # those of the notifications its limits allow.
        return await read_inbox_allowed(
            redis, prefix, user_id, limit, before, lambda n: notification_allowed(n, limits)
        )

    page = await read()
    # Only an empty first page can be a miss: a page with entries, or a cursor, means the
    # inbox is there. Checked only then, so a GET that finds its inbox costs nothing more.
    if not page.items and before is None and not await inbox_known(redis, prefix, user_id):
        settings = request.app.state.settings
        if settings.gateway.lookup_on_miss:
            await _refill(request, user_id, settings.gateway.lookup_timeout_s)
            page = await read()
    return _json(page.model_dump_json())


async def _refill(request: Request, user_id: str, timeout_s: float) -> None:
    """Have the notifications agents load the user's inbox and preferences read models from
    PostgreSQL (the gateway never reads it) and wait for their answer (gateway/lookup.py)."""
    app = request.app
    prefix = app.state.settings.redis.key_prefix
    await request_reply(
        app.state.redis,
        app.state.publisher,
        NOTIFICATIONS_LOOKUP,
        InboxLookupRequested(user_id=user_id, reply_channel=new_reply_channel(prefix)),
        key=user_id,
        timeout_s=timeout_s,
        unanswered=LookupTimeout(
            f"no notifications agent answered for the inbox of {user_id} in {timeout_s:g} s"
        ),
    )


@router.post(
    "/notifications/{notification_id}/read",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=Accepted,
    responses=RESPONSES,
    openapi_extra=documented(USER_ID, NOTIFICATION_ID, write=True),
    summary="Mark a notification read",
)
async def read_notification(request: Request) -> Response:
    _, user_id = await own_user(request, "notifications:write")
    notification_id = NOTIFICATION_ID.read(request)
    change = NotificationRead(
        user_id=user_id, notification_id=notification_id, read_at=datetime.now(UTC)
    )
    publisher: Publisher = request.app.state.publisher
    published = await publisher.publish(
        NOTIFICATIONS_READ, change, key=user_id, event_id=operation_id(request)
    )
    return accepted(published)
