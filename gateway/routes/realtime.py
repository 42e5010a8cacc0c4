"""Realtime: how a device hears its user's changes and commands.

`GET .../realtime` says which transport this deployment uses and the channel names: PubNub
(subscribe there with the given key) or the built-in fan-out, `GET .../stream`, a Server-Sent
Events stream per device (gateway/realtime/sse.py). Both carry the same channels and bodies.

Scopes per channel: `sync` (watchlist and progress) needs `watchlist:read`; `devices`
(presence and commands) and `notifications` (command results) need `devices:read`.
"""

from __future__ import annotations

import re

from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.responses import StreamingResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException

from agreements.sync_realtime import EVENT_ID_FORM, MAX_ID_PART, REPLAY_WINDOW_S, is_event_id
from gateway.auth.dependencies import own_user
from gateway.device_ownership import require_own_device
from gateway.realtime.hub import HubUnavailable, RealtimeHub
from gateway.realtime.sse import EventStream, StreamRequest
from gateway.request_parameters import (
    MAYBE_ACTING_DEVICE,
    USER_ID,
    invalid,
)
from gateway.routes.user_routes import (
    READ_RESPONSES,
    device_checked,
    documented,
)
from gateway.sync_lookup import NO_STORE, json_document
from schemas.sync import devices_channel, notifications_channel, sync_channel

router = APIRouter(prefix="/api/v1/users/{user_id}", tags=["realtime"])

CHANNEL_NAMES = {
    "sync": sync_channel,
    "devices": devices_channel,
    "notifications": notifications_channel,
}
CHANNEL_SCOPES = {
    "sync": "watchlist:read",
    "devices": "devices:read",
    "notifications": "devices:read",
}


class RealtimeInfo(BaseModel):
    transport: str  # "sse" or "pubnub"
    channels: dict[str, str]
    # sse: the stream to open; pubnub: where and with which key to subscribe.
    stream_url: str | None = None
    pubnub_subscribe_key: str | None = None
    pubnub_origin: str | None = None
    replay_window_s: int | None = None


def _pubnub(request: Request) -> bool:
    pubnub = request.app.state.settings.pubnub
    return bool(pubnub.publish_key and pubnub.subscribe_key)


# What _channels accepts: known names, commas between, blanks around a name ignored.
_ONE_CHANNEL = rf"\s*(?:{'|'.join(CHANNEL_NAMES)})\s*"
_CHANNELS_PATTERN = rf"^{_ONE_CHANNEL}(?:,{_ONE_CHANNEL})*$"


def _channels(request: Request) -> list[str]:
    raw = request.query_params.get("channels")
    if raw is None:
        return list(CHANNEL_NAMES)
    names = [c.strip() for c in raw.split(",")]
    if re.fullmatch(_CHANNELS_PATTERN, raw) is None:
        unknown = [c for c in names if c not in CHANNEL_NAMES]
        raise invalid(
            ("query", "channels"),
            f"a comma-separated list of {', '.join(CHANNEL_NAMES)}"
            + (f"; unknown: {', '.join(map(repr, unknown))}" if unknown else ""),
            raw,
        )
    return list(dict.fromkeys(names))


LAST_EVENT_ID_RULE = (
    f"an event id of this stream, `<epoch>:<ms>-<seq>`, each number at most {MAX_ID_PART} "
    "written without leading zeros"
)


def _last_event_id(request: Request) -> str | None:
    """Where the device resumes: the Last-Event-ID header (empty is as if not sent), else
    `?last_event_id=` (for clients that cannot set headers)."""
    header = request.headers.get("last-event-id")
    if header:
        field, value = ("header", "Last-Event-ID"), header
    elif "last_event_id" in request.query_params:
        field, value = ("query", "last_event_id"), request.query_params["last_event_id"]
    else:
        return None
    if not is_event_id(value):
        raise invalid(field, f"must be {LAST_EVENT_ID_RULE}", value)
    return value


@router.get(
    "/realtime",
    response_model=RealtimeInfo,
    responses=READ_RESPONSES,
    openapi_extra=documented(USER_ID),
)
async def realtime_info(request: Request) -> Response:
    _, user_id = await own_user(request, "devices:read")
    channels = {name: fn(user_id) for name, fn in CHANNEL_NAMES.items()}
    if _pubnub(request):
        pubnub = request.app.state.settings.pubnub
        info = RealtimeInfo(
            transport="pubnub",
            channels=channels,
            pubnub_subscribe_key=pubnub.subscribe_key,
            pubnub_origin=pubnub.origin,
        )
    else:
        info = RealtimeInfo(
            transport="sse",
            channels=channels,
            stream_url=f"/api/v1/users/{user_id}/stream",
            replay_window_s=REPLAY_WINDOW_S,
        )
    return json_document(info.model_dump_json().encode())


def hub_of(app: FastAPI) -> RealtimeHub:
    hub: RealtimeHub | None = getattr(app.state, "realtime_hub", None)
    if hub is None:
        settings = app.state.settings
        hub = RealtimeHub(settings.redis.require_url(), settings.redis.key_prefix)
        app.state.realtime_hub = hub
    return hub


async def close_hub(app: FastAPI) -> None:
    hub: RealtimeHub | None = getattr(app.state, "realtime_hub", None)
    if hub is not None:
        await hub.close()
        app.state.realtime_hub = None


@router.get(
    "/stream",
    responses={
        200: {
            "description": "text/event-stream: one event per message (type: the channel name, "
            "data: the message, id: its place in the stream), plus `ready` and `resync`",
            "content": {"text/event-stream": {}},
        },
        404: {"description": "this deployment delivers through PubNub (see .../realtime)"},
        **device_checked(READ_RESPONSES),
        503: {"description": "the fan-out cannot reach Redis; retry"},
    },
    openapi_extra=documented(
        USER_ID,
        device=MAYBE_ACTING_DEVICE,
        extra={
            "parameters": [
                {
                    "name": "channels",
                    "in": "query",
                    "required": False,
                    "schema": {
                        "type": "string",
                        "default": "sync,devices,notifications",
                        "pattern": _CHANNELS_PATTERN,
                    },
                    "description": "comma-separated: sync, devices, notifications",
                },
                {
                    "name": "Last-Event-ID",
                    "in": "header",
                    "required": False,
                    # Empty is as if not sent.
                    "schema": {"type": "string", "pattern": f"^(?:{EVENT_ID_FORM})?$"},
                    "description": "the id of the last event seen: catch up from there "
                    f"(within {REPLAY_WINDOW_S} s), or a `resync` event (also for an id ahead "
                    f"of the stream); {LAST_EVENT_ID_RULE}",
                },
                {
                    "name": "last_event_id",
                    "in": "query",
                    "required": False,
                    "schema": {"type": "string", "pattern": f"^{EVENT_ID_FORM}$"},
                    "description": "as Last-Event-ID, for clients that cannot send headers; "
                    "the header wins when both are sent",
                },
            ]
        },
    ),
)
async def stream(request: Request) -> Response:
    channels = _channels(request)
    scopes = sorted({CHANNEL_SCOPES[c] for c in channels})
    _, user_id = await own_user(request, *scopes)
    device_id = MAYBE_ACTING_DEVICE.read(request)
    last = _last_event_id(request)
    if device_id is not None:
        await require_own_device(request, user_id, device_id)
    if _pubnub(request):
        raise HTTPException(
            404,
            f"realtime goes through PubNub in this deployment: GET /api/v1/users/{user_id}/"
            "realtime names the channels and the subscribe key",
        )
    hub = hub_of(request.app)
    try:
        await hub.ready()
    except HubUnavailable as exc:
        raise HTTPException(503, str(exc), headers={"Retry-After": "2"}) from None
    settings = request.app.state.settings
    events = EventStream(
        hub,
        request.app.state.redis,
        settings.redis.key_prefix,
        StreamRequest(
            user_id=user_id,
            device_id=device_id,
            channels=frozenset(CHANNEL_NAMES[c](user_id) for c in channels),
            last_event_id=last,
        ),
    )
    return StreamingResponse(
        events.__aiter__(),
        media_type="text/event-stream",
        headers={**NO_STORE, "X-Accel-Buffering": "no"},
    )
