"""`POST /api/v1/users/{user_id}/realtime/token`: a PubNub Access Manager token for one device.

In PubNub mode with Access Manager (PUBNUB_SECRET_KEY set) a device cannot subscribe without a
token. This route grants one with the secret key (the SDK's grant_token, PAM v3): read on
exactly this user's channels the caller's scopes let it hear, write on none, for as long as the
caller's credential still lives and at most PUBNUB_TOKEN_MAX_TTL_MIN. It is recorded against
the device in Redis (agreements/realtime_tokens.py) so that the device's removal revokes it.

Order of checks: credential and scope (401/403), path (422), ownership (403), X-Device-ID (422),
PubNub mode (404), the device registered to the user (403 unknown_device), the device's live
tokens (429), the credential's remaining life (401).
"""

from __future__ import annotations

import secrets
import time
from datetime import UTC, datetime

from fastapi import APIRouter, FastAPI, Request, Response
from loguru import logger
from pydantic import BaseModel, Field

from agreements import realtime_tokens
from agreements.pubnub_access import AccessRefused, AccessUnavailable, PubNubAccess
from core.observability.metrics import REALTIME_TOKENS
from gateway.auth.dependencies import own_user
from gateway.auth.errors import Unauthorized
from gateway.device_ownership import UNKNOWN_DEVICE, UnknownDevice, require_own_device
from gateway.errors import error_response
from gateway.realtime.token_rules import MIN_TTL_MIN, granted_channels, ttl_minutes
from gateway.request_parameters import ACTING_DEVICE, USER_ID
from gateway.routes.user_routes import READ_RESPONSES, documented
from gateway.sync_lookup import json_document

router = APIRouter(prefix="/api/v1/users/{user_id}", tags=["realtime"])


class RealtimeToken(BaseModel):
    token: str = Field(description="set it on the PubNub client (`set_token`) before subscribing")
    ttl: int = Field(description="minutes the token lives (PubNub's unit)")
    expires_at: datetime = Field(description="ask for a new token before this")
    channels: dict[str, str] = Field(
        description="the channels it may read, by name (sync, devices, notifications)"
    )
    subscribe_key: str
    origin: str | None = Field(description="PubNub's host to use; null: the SDK's default")


TOKEN_RESPONSES = {
    **{k: v for k, v in READ_RESPONSES.items() if k not in (403, 503)},
    401: {
        "description": "no valid credential, or one that expires within a minute (too soon to "
        "hand on: refresh it first)"
    },
    403: {"description": f"missing scope (devices:read), another user's id; or {UNKNOWN_DEVICE}"},
    404: {
        "description": "this deployment has no PubNub Access Manager (the built-in stream, or "
        "PubNub with open channels): GET .../realtime says how to listen"
    },
    429: {
        "description": "`too_many_tokens`: the device holds PUBNUB_TOKENS_PER_DEVICE live "
        "tokens already"
    },
    503: {
        "description": "PubNub did not grant the token, or Redis cannot record it; retry after "
        "Retry-After"
    },
}


def access_of(app: FastAPI) -> PubNubAccess:
    access: PubNubAccess | None = getattr(app.state, "pubnub_access", None)
    if access is None:
        access = PubNubAccess(app.state.settings.pubnub, "gateway")
        app.state.pubnub_access = access
    return access


async def close_access(app: FastAPI) -> None:
    access: PubNubAccess | None = getattr(app.state, "pubnub_access", None)
    if access is not None:
        await access.close()
        app.state.pubnub_access = None


@router.post(
    "/realtime/token",
    response_model=RealtimeToken,
    responses=TOKEN_RESPONSES,
    openapi_extra=documented(USER_ID, device=ACTING_DEVICE),
)
async def realtime_token(request: Request) -> Response:
    principal, user_id = await own_user(request, "devices:read")
    device_id = ACTING_DEVICE.read(request)
    assert device_id is not None  # required: read() raised otherwise
    settings = request.app.state.settings
    pubnub = settings.pubnub
    if not pubnub.access_manager:
        return error_response(
            404,
            "not_found",
            "this deployment grants no realtime tokens (no PubNub Access Manager): "
            f"GET /api/v1/users/{user_id}/realtime says how to listen",
            request,
        )
    await require_own_device(request, user_id, device_id)
    redis, prefix = request.app.state.redis, settings.redis.key_prefix
    now = time.time()
    held = await realtime_tokens.live_count(redis, prefix, user_id, device_id, now)
    if held >= pubnub.tokens_per_device:
        REALTIME_TOKENS.labels(outcome="refused_limit").inc()
        return error_response(
            429,
            "too_many_tokens",
            f"device {device_id!r} holds {held} live realtime tokens (at most "
            f"{pubnub.tokens_per_device}, PUBNUB_TOKENS_PER_DEVICE): reuse the newest",
            request,
            headers={"Retry-After": "60"},
        )
    ttl = ttl_minutes(principal.expires_at, now, pubnub.token_max_ttl_min)
    if ttl < MIN_TTL_MIN:
        raise Unauthorized.invalid(
            "the credential expires within a minute, too soon to grant a realtime token: "
            "refresh it and ask again",
            reason="expiring",
        )
    channels = granted_channels(user_id, principal.scopes)
    try:
        # A grant id of its own in every token: tokens are never shared (see grant_read).
        meta = {"user": user_id, "device": device_id, "grant": secrets.token_hex(8)}
        token = await access_of(request.app).grant_read(sorted(channels.values()), ttl, meta)
    except (AccessUnavailable, AccessRefused) as exc:
        logger.warning("realtime token for {} of {} not granted: {}", device_id, user_id, exc)
        return error_response(
            503,
            "service_unavailable",
            "PubNub did not grant the realtime token; retry after Retry-After",
            request,
            headers={"Retry-After": "2"},
        )
    expires_at = now + ttl * 60
    await realtime_tokens.record(redis, prefix, user_id, device_id, token, expires_at, now)
    # A removal applied between the device check and the record found nothing to revoke:
    # check again now that the token is on record (a removal applied later revokes it).
    try:
        await require_own_device(request, user_id, device_id)
    except UnknownDevice:
        await access_of(request.app).revoke(token)
        await realtime_tokens.forget(redis, prefix, user_id, device_id, [token])
        raise
    REALTIME_TOKENS.labels(outcome="granted").inc()
    answer = RealtimeToken(
        token=token,
        ttl=ttl,
        expires_at=datetime.fromtimestamp(expires_at, UTC),
        channels=channels,
        subscribe_key=pubnub.subscribe_key,
        origin=pubnub.origin,
    )
    return json_document(answer.model_dump_json().encode())
