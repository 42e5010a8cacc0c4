"""Realtime: how a device hears its user's changes and commands.

`GET .../realtime` says which transport this deployment uses and the channel names: PubNub
(subscribe there with the given key and a token from `POST .../realtime/token`, see
gateway/routes/realtime_token.py) or the built-in fan-out, `GET .../stream`, a Server-Sent
Events stream per device (gateway/realtime/sse.py). Both carry the same channels and bodies.

Scopes per channel: `sync` (watchlist and progress) needs `watchlist:read`; `devices`
(presence and commands) and `notifications` (command results) need `devices:read`.

Browsers: `POST .../stream/ticket` trades the token for a single-use, device-bound ticket
(gateway/realtime/tickets.py), and `GET .../stream?ticket=...` opens the stream with no
Authorization header, as `EventSource` must. Every stream holds a lease
(gateway/realtime/lifecycle.py): the per-user and per-process caps, and its end when the
credential expires (`expired`) or the device is removed (`revoked`).

A stream acting as a profile with parental limits (the token's `profile` claim, X-Profile-ID,
or the profile the ticket was issued acting as) reads the limits once as it opens and is not
sent the notifications they refuse (docs/AUTH.md, "Profiles and parental controls").
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime

from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.responses import StreamingResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException
from starlette.types import Receive, Scope, Send

from agreements.sync_realtime import EVENT_ID_FORM, MAX_ID_PART, REPLAY_WINDOW_S, is_event_id
from core.observability.metrics import AUTH_FAILURES, REALTIME_TICKETS
from gateway.auth.dependencies import API_KEY_HEADER, own_user
from gateway.auth.errors import BadAuthRequest, Forbidden, Unauthorized, challenge
from gateway.device_ownership import FROM_HEADER, UNKNOWN_DEVICE, require_own_device
from gateway.errors import error_response
from gateway.middleware.rate_limit import client_address
from gateway.profiles import (
    HEADER_PARAMETER,
    UNKNOWN_PROFILE_RESPONSE,
    acting_limits,
    acting_profile,
    limits_of,
)
from gateway.realtime.credential import credential_expiry
from gateway.realtime.hub import HubUnavailable, RealtimeHub
from gateway.realtime.lifecycle import CapRefused, StreamLeases
from gateway.realtime.sse import STREAM_CONTENT, EventStream, StreamRequest
from gateway.realtime.tickets import (
    TICKET_PATTERN,
    TicketClaims,
    TicketRefused,
    issue_ticket,
    redeem_ticket,
)
from gateway.request_parameters import (
    ACTING_DEVICE,
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
from schemas.sync import devices_channel, notifications_channel, sync_channel, wire_time

router = APIRouter(prefix="/api/v1/users/{user_id}", tags=["realtime"])


class EventStreamResponse(StreamingResponse):
    """For the OpenAPI document only (the route answers a LeasedStream): the 200's media type."""

    media_type = "text/event-stream"


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
    # pubnub with Access Manager: where a device gets the token its subscriptions need.
    pubnub_token_url: str | None = None
    replay_window_s: int | None = None


def _pubnub(request: Request) -> bool:
    pubnub: bool = request.app.state.settings.pubnub.enabled
    return pubnub


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
            pubnub_token_url=(
                f"/api/v1/users/{user_id}/realtime/token" if pubnub.access_manager else None
            ),
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
        # A removed device's streams and sockets end as the hub hears the removal.
        hub.on_device_removed = leases_of(app).device_removed
        app.state.realtime_hub = hub
    return hub


def leases_of(app: FastAPI) -> StreamLeases:
    """The process's open streams and sockets (their caps and ends), made on first use."""
    leases: StreamLeases | None = getattr(app.state, "stream_leases", None)
    if leases is None:
        settings = app.state.settings
        rt = settings.realtime
        leases = StreamLeases(
            app.state.redis,
            settings.redis.key_prefix,
            per_user=rt.streams_per_user,
            per_process=rt.streams_per_process,
            lease_ttl_s=rt.lease_ttl_s,
        )
        app.state.stream_leases = leases
    return leases


async def close_hub(app: FastAPI) -> None:
    hub: RealtimeHub | None = getattr(app.state, "realtime_hub", None)
    if hub is not None:
        await hub.close()
        app.state.realtime_hub = None
    leases: StreamLeases | None = getattr(app.state, "stream_leases", None)
    if leases is not None:
        await leases.close()
        app.state.stream_leases = None


def cap_refused(request: Request, exc: CapRefused) -> Response:
    return error_response(
        exc.status,
        exc.code,
        exc.detail,
        request,
        headers={"Retry-After": str(exc.retry_after_s)},
    )


def ticket_refused(request: Request, exc: TicketRefused) -> Response:
    """401 `invalid_ticket`; the ticket itself is never in the answer nor in a log line."""
    REALTIME_TICKETS.labels(exc.reason).inc()
    AUTH_FAILURES.labels(reason="invalid_ticket").inc()
    failures = getattr(request.app.state, "auth_failures", None)  # absent without rate limits
    if failures is not None:
        failures.record(client_address(request.scope))
    return error_response(
        401,
        "invalid_ticket",
        exc.message,
        request,
        fields=[{"field": "query.ticket", "reason": exc.message}],
        headers={"WWW-Authenticate": challenge("invalid_token", exc.message)},
    )


async def ticket_claims(request: Request, user_id: str) -> TicketClaims:
    """Redeem `?ticket=` for `user_id` (TicketRefused when it opens nothing). A request sends
    a ticket or a credential header, not both."""
    if request.headers.get("authorization") or request.headers.get(API_KEY_HEADER):
        raise BadAuthRequest.because("send one credential: a ticket or a credential header")
    settings = request.app.state.settings
    return await redeem_ticket(
        request.app.state.redis,
        settings.redis.key_prefix,
        request.query_params["ticket"],
        user_id,
    )


class StreamTicket(BaseModel):
    ticket: str
    device_id: str
    # RFC 3339: redeem it before then (at most REALTIME_TICKET_TTL_S, 60 s).
    expires_at: str
    expires_in_s: int
    # The stream to open with it: `new EventSource(stream_url)` (add `&channels=...` if wanted).
    stream_url: str


@router.post(
    "/stream/ticket",
    response_model=StreamTicket,
    responses={
        401: {"description": "no valid credential"},
        403: {
            "description": f"another user's id; or {UNKNOWN_DEVICE}; or "
            f"{UNKNOWN_PROFILE_RESPONSE[403]['description']}"
        },
        422: {"description": "invalid path or X-Device-ID, each named with the reason"},
        503: {"description": "Redis cannot be reached; retry"},
    },
    openapi_extra=documented(
        USER_ID, device=ACTING_DEVICE, extra={"parameters": [HEADER_PARAMETER]}
    ),
)
async def stream_ticket(request: Request) -> Response:
    """A single-use ticket, valid 60 s, that opens this device's stream without an
    Authorization header (`?ticket=`): for EventSource, which cannot send one. The stream
    acts as this request's profile (token `profile` claim, else X-Profile-ID): notifications
    of titles its parental limits refuse are not sent on it."""
    principal, user_id = await own_user(request)
    device_id = ACTING_DEVICE.read(request)
    await require_own_device(request, user_id, device_id)
    # The stream it opens acts as the same profile (its parental limits apply there).
    acting = await acting_profile(request)
    settings = request.app.state.settings
    try:
        issued = await issue_ticket(
            request.app.state.redis,
            settings.redis.key_prefix,
            user_id=user_id,
            device_id=device_id,
            scopes=principal.scopes,
            credential_expires_at=credential_expiry(request),
            issued_by=principal.subject,
            ttl_s=settings.realtime.ticket_ttl_s,
            profile_id=None if acting is None else acting.profile_id,
        )
    except TicketRefused:
        # Within the verifier's clock-skew leeway, or a second from its end: a ticket would
        # open a stream that ends at once.
        raise Unauthorized.invalid("token expired (or expires within a second)") from None
    REALTIME_TICKETS.labels("issued").inc()
    body = StreamTicket(
        ticket=issued.ticket,
        device_id=device_id,
        expires_at=wire_time(datetime.fromtimestamp(issued.expires_at, UTC)),
        expires_in_s=int(issued.expires_at - datetime.now(UTC).timestamp()),
        stream_url=f"/api/v1/users/{user_id}/stream?ticket={issued.ticket}",
    )
    return json_document(body.model_dump_json().encode())


@router.get(
    "/stream",
    # Documents the 200 as text/event-stream only (the default would add application/json).
    response_class=EventStreamResponse,
    responses={
        200: {
            "description": "text/event-stream: one event per message (type: the channel name, "
            "data: the message, id: its place in the stream), plus `ready` and `resync`",
            "content": STREAM_CONTENT,
        },
        400: {"description": "both a ticket and a credential header were sent"},
        404: {"description": "this deployment delivers through PubNub (see .../realtime)"},
        **device_checked(READ_RESPONSES),
        403: {
            "description": f"{device_checked(READ_RESPONSES)[403]['description']}; or "
            f"{UNKNOWN_PROFILE_RESPONSE[403]['description']} (the token's, X-Profile-ID, or "
            "the ticket's profile, removed since)"
        },
        401: {
            "description": "no valid credential; or `invalid_ticket`: the ticket is "
            "malformed, unknown, already used, expired, or for another user"
        },
        429: {
            "description": "`too_many_streams`: the user holds REALTIME_STREAMS_PER_USER "
            "streams and sockets (Retry-After); or the caller's rate limit"
        },
        503: {
            "description": "the fan-out cannot reach Redis; or `stream_capacity`: this "
            "process holds REALTIME_STREAMS_PER_PROCESS streams and sockets (Retry-After)"
        },
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
                    "name": "ticket",
                    "in": "query",
                    "required": False,
                    "schema": {"type": "string", "pattern": TICKET_PATTERN},
                    "description": "a stream ticket (POST .../stream/ticket) instead of the "
                    "Authorization header, for EventSource: single use, 60 s, opens the "
                    "stream of the device it was issued for",
                },
                HEADER_PARAMETER,
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
    if "ticket" in request.query_params:
        # Every field is checked before the ticket is redeemed: a bad one must not use it up.
        user_id = USER_ID.read(request)
        last = _last_event_id(request)
        header_device = MAYBE_ACTING_DEVICE.read(request)
        try:
            claims = await ticket_claims(request, user_id)
        except TicketRefused as exc:
            return ticket_refused(request, exc)
        REALTIME_TICKETS.labels("redeemed").inc()
        missing = [s for s in scopes if s not in claims.scopes]
        if missing:
            raise Forbidden.scope(missing)
        device_id: str | None = claims.device_id
        if header_device is not None and header_device != device_id:
            raise invalid(
                ("header", "X-Device-ID"), "the ticket was issued for another device", header_device
            )
        expires_at = claims.credential_expires_at
        limits = await limits_of(request, user_id, claims.profile_id, "query.ticket")
    else:
        _, user_id = await own_user(request, *scopes)
        device_id = MAYBE_ACTING_DEVICE.read(request)
        last = _last_event_id(request)
        expires_at = credential_expiry(request)
        limits = await acting_limits(request)
    if device_id is not None:
        # Also for a ticket: the device may have been removed since it was issued.
        named_by = "query.ticket" if "ticket" in request.query_params else FROM_HEADER
        await require_own_device(request, user_id, device_id, named_by)
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
    leases = leases_of(request.app)
    try:
        lease = await leases.acquire(user_id, device_id, "stream", expires_at)
    except CapRefused as exc:
        return cap_refused(request, exc)
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
            limits=limits,
        ),
        lease,
    )
    return LeasedStream(
        events.__aiter__(),
        release=lambda: leases.release(lease),
        media_type="text/event-stream",
        headers={**NO_STORE, "X-Accel-Buffering": "no"},
    )


class LeasedStream(StreamingResponse):
    """A streaming answer that gives its stream's lease back however it ends: also when the
    client left before the first byte (the body's generator then never starts, so a
    `finally` inside it would never run and the user's slot would stay taken)."""

    def __init__(
        self,
        content: AsyncIterator[bytes],
        *,
        release: Callable[[], Awaitable[None]],
        media_type: str,
        headers: dict[str, str],
    ) -> None:
        super().__init__(content, media_type=media_type, headers=headers)
        self._release = release

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            await self._release()
