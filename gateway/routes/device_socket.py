"""`GET /api/v1/users/{user_id}/devices/{device_id}/socket`: the device WebSocket
(docs/DEVICE_PROTOCOL.md).

Admission happens before the handshake is accepted, so a refused socket gets the HTTP answer
any route would give, as problem+json (the WebSocket Denial Response extension, which uvicorn
serves): 401 without a usable credential (`invalid_ticket` for a ticket), 400 for two
credentials, 403 for a missing scope, another user's id or a device that is not the user's,
422 for a bad parameter, 404 in a PubNub deployment, 429 / 503 at the user's / the process's
cap of streams and sockets (gateway/realtime/lifecycle.py), 503 when Redis cannot be reached.
A browser only sees that the handshake failed; every other client reads the status and the
body. An admitted socket holds a lease until it ends, whatever ends it.

The credential: the subprotocol list carries it for browsers (`new WebSocket(url, ["mgw.v1",
"bearer." + token])`; the server accepts `mgw.v1` and never echoes the token), or an
`Authorization: Bearer` header from clients that can set one, or a stream ticket `?ticket=`
(gateway/realtime/tickets.py).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter
from fastapi.exceptions import RequestValidationError
from loguru import logger
from redis.exceptions import RedisError
from starlette.responses import Response
from starlette.websockets import WebSocket

from core.observability.metrics import AUTH_FAILURES, DEVICE_SOCKET_CLOSES, REALTIME_TICKETS
from gateway.auth.dependencies import (
    API_KEY_HEADER,
    Credential,
    check_scopes,
    resolve_principal,
)
from gateway.auth.errors import (
    AuthError,
    AuthUnavailable,
    BadAuthRequest,
    Forbidden,
    Unauthorized,
    challenge,
)
from gateway.auth.principal import PRINCIPAL_KEY, Principal
from gateway.device_ownership import FROM_PATH, UnknownDevice, require_own_device
from gateway.errors import field_errors
from gateway.lookup import LookupTimeout
from gateway.problems import MEDIA_TYPE, problem_bytes
from gateway.profiles import ProfileRefused, acting_limits, limits_of
from gateway.realtime.credential import credential_expiry, token_expiry
from gateway.realtime.device_frames import SUBPROTOCOL, bearer_of
from gateway.realtime.events import EventSource, StreamRequest
from gateway.realtime.flood import Budgets
from gateway.realtime.hub import HubUnavailable
from gateway.realtime.lifecycle import CapRefused
from gateway.realtime.socket import NOT_REGISTERED, DeviceSocket, SocketContext, acked
from gateway.realtime.tickets import TicketRefused, redeem_ticket
from gateway.request_parameters import DEVICE_ID, USER_ID
from gateway.routes.realtime import (
    CHANNEL_NAMES,
    CHANNEL_SCOPES,
    _channels,
    _last_event_id,
    _pubnub,
    hub_of,
    leases_of,
)
from schemas.accounts import ProfileLimits

router = APIRouter(prefix="/api/v1/users/{user_id}/devices", tags=["realtime"])

PATH = "/api/v1/users/{user_id}/devices/{device_id}/socket"


class Refused(Exception):
    """The handshake's answer instead of an accept."""

    def __init__(
        self,
        status: int,
        code: str,
        detail: str,
        headers: dict[str, str] | None = None,
        fields: list[dict[str, str]] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status, self.code, self.detail = status, code, detail
        self.headers = headers or {}
        self.fields = fields


def _budgets(websocket: WebSocket) -> Budgets:
    state = websocket.app.state
    budgets: Budgets | None = getattr(state, "device_socket_budgets", None)
    if budgets is None:
        settings = state.settings.socket
        budgets = Budgets(settings.frames_per_s, settings.burst)
        state.device_socket_budgets = budgets
    return budgets


@dataclass(frozen=True)
class Credentials:
    """What the socket may do, and until when: a token's or a ticket's."""

    scopes: frozenset[str]
    expires_at: float  # the credential's exp (epoch seconds): the socket ends then
    # The acting profile's parental limits (gateway/profiles.py), read once here.
    limits: ProfileLimits | None = None


async def _bearer(websocket: WebSocket, user_id: str, scopes: tuple[str, ...]) -> Credentials:
    """The bearer subprotocol, else the Authorization header: the caller, holding `scopes`,
    acting on their own user id."""
    token = bearer_of(list(websocket.scope.get("subprotocols") or []))
    if token is not None:
        if websocket.headers.get("authorization") or websocket.headers.get(API_KEY_HEADER):
            raise BadAuthRequest.because("send one credential: a bearer subprotocol or a header")
        authenticator = websocket.app.state.authenticator
        principal: Principal | None = await authenticator.principal_for(
            Credential("bearer", token),
            websocket,  # type: ignore[arg-type]
        )
        websocket.scope[PRINCIPAL_KEY] = principal
    else:
        principal = await resolve_principal(websocket)  # type: ignore[arg-type]
    if principal is None:
        raise Unauthorized.missing()
    check_scopes(principal, scopes)
    if not principal.may_act_for(user_id):
        if principal.kind == "api_key":
            raise Forbidden.not_owner("API keys do not act for users; use the user's own token")
        raise Forbidden.not_owner("a user may act on their own user id only")
    try:
        expires_at = token_expiry(token) if token is not None else credential_expiry(websocket)
    except ValueError as exc:
        raise Unauthorized.invalid(str(exc)) from None
    limits = await acting_limits(websocket)  # type: ignore[arg-type]
    return Credentials(frozenset(principal.scopes), expires_at, limits)


async def _ticket(
    websocket: WebSocket, user_id: str, device_id: str, scopes: tuple[str, ...]
) -> Credentials:
    """`?ticket=`, redeemed (single use) for this user and device."""
    offered = list(websocket.scope.get("subprotocols") or [])
    if (
        bearer_of(offered) is not None
        or websocket.headers.get("authorization")
        or websocket.headers.get(API_KEY_HEADER)
    ):
        raise BadAuthRequest.because("send one credential: a ticket or a bearer")
    settings = websocket.app.state.settings
    try:
        claims = await redeem_ticket(
            websocket.app.state.redis,
            settings.redis.key_prefix,
            websocket.query_params["ticket"],
            user_id,
        )
    except TicketRefused as exc:
        REALTIME_TICKETS.labels(exc.reason).inc()
        AUTH_FAILURES.labels(reason="invalid_ticket").inc()
        raise Refused(
            401,
            "invalid_ticket",
            exc.message,
            {"WWW-Authenticate": challenge("invalid_token", exc.message)},
            [{"field": "query.ticket", "reason": exc.message}],
        ) from None
    REALTIME_TICKETS.labels("redeemed").inc()
    if claims.device_id != device_id:
        reason = "the ticket was issued for another device"
        raise Refused(
            422,
            "validation_failed",
            "1 field(s) failed validation",
            None,
            [{"field": "path.device_id", "reason": reason}],
        )
    missing = [s for s in scopes if s not in claims.scopes]
    if missing:
        raise Forbidden.scope(missing)
    limits = await limits_of(websocket, user_id, claims.profile_id, "query.ticket")
    return Credentials(claims.scopes, claims.credential_expires_at, limits)


def _owner_check(websocket: WebSocket, user_id: str) -> Callable[..., Awaitable[Any]]:
    """Whether a device is the user's (gateway/device_ownership.py): a coroutine function
    returning None, or the refusal (code, detail)."""

    async def check(device_id: str, field: str = "target_device_id") -> tuple[str, str] | None:
        try:
            await require_own_device(websocket, user_id, device_id, field)  # type: ignore[arg-type]
        except UnknownDevice as exc:
            return ("unknown_device", str(exc))
        return None

    return check


async def _admit(websocket: WebSocket) -> tuple[EventSource, SocketContext]:
    """Everything decided before the handshake; Refused with the HTTP answer otherwise. The
    source holds a lease (gateway/realtime/lifecycle.py): release it when the socket ends."""
    try:
        with_ticket = "ticket" in websocket.query_params
        if not with_ticket:
            # As every route: the credential (401) before the parameters (422).
            await _bearer_present(websocket)
        try:
            # Every field is checked before a ticket is redeemed: a bad one must not use it up.
            channels = _channels(websocket)  # type: ignore[arg-type]
            user_id = USER_ID.read(websocket)  # type: ignore[arg-type]
            device_id = DEVICE_ID.read(websocket)  # type: ignore[arg-type]
            last = _last_event_id(websocket)  # type: ignore[arg-type]
        except RequestValidationError as exc:
            fields = field_errors(exc)
            raise Refused(
                422, "validation_failed", f"{len(fields)} field(s) failed validation", None, fields
            ) from None
        scopes = tuple(sorted({CHANNEL_SCOPES[c] for c in channels}))
        if with_ticket:
            credentials = await _ticket(websocket, user_id, device_id, scopes)
        else:
            credentials = await _bearer(websocket, user_id, scopes)
    except AuthError as exc:
        AUTH_FAILURES.labels(reason=exc.reason).inc()
        raise Refused(
            exc.status, exc.code, exc.message, {"WWW-Authenticate": exc.www_authenticate}
        ) from None
    except AuthUnavailable:
        raise Refused(503, "auth_unavailable", "credentials cannot be checked now; retry") from None
    except ProfileRefused as exc:
        fields = [{"field": exc.field, "reason": exc.message}] if exc.field else None
        raise Refused(403, exc.code, exc.message, None, fields) from None
    check = _owner_check(websocket, user_id)
    # Also for a ticket: the device may have been removed since it was issued.
    refused = await check(device_id, FROM_PATH)
    if refused is not None:
        raise Refused(403, *refused, None, [{"field": FROM_PATH, "reason": NOT_REGISTERED}])
    if _pubnub(websocket):  # type: ignore[arg-type]
        raise Refused(
            404,
            "not_found",
            f"realtime goes through PubNub in this deployment: GET /api/v1/users/{user_id}/"
            "realtime names the channels and the subscribe key",
        )
    app = websocket.app
    hub = hub_of(app)
    try:
        await hub.ready()
    except HubUnavailable as exc:
        raise Refused(503, "service_unavailable", str(exc), {"Retry-After": "2"}) from None
    settings = app.state.settings
    prefix = settings.redis.key_prefix
    if last is None:
        # A device that acknowledged events resumes after the last one it acknowledged.
        last = await acked(app.state.redis, prefix, user_id, device_id)
    try:
        lease = await leases_of(app).acquire(user_id, device_id, "socket", credentials.expires_at)
    except CapRefused as exc:
        raise Refused(
            exc.status, exc.code, exc.detail, {"Retry-After": str(exc.retry_after_s)}
        ) from None
    source = EventSource(
        hub,
        app.state.redis,
        prefix,
        StreamRequest(
            user_id=user_id,
            device_id=device_id,
            channels=frozenset(CHANNEL_NAMES[c](user_id) for c in channels),
            last_event_id=last,
            limits=credentials.limits,
        ),
        lease,
    )
    context = SocketContext(
        user_id=user_id,
        device_id=device_id,
        scopes=credentials.scopes,
        instance=websocket.url.path,
        max_frame_bytes=settings.socket.max_frame_bytes,
        check_target=check,
    )
    return source, context


async def _bearer_present(websocket: WebSocket) -> None:
    """401 at once for a socket that brings no credential at all."""
    offered = list(websocket.scope.get("subprotocols") or [])
    if bearer_of(offered) is None and not (
        websocket.headers.get("authorization") or websocket.headers.get(API_KEY_HEADER)
    ):
        raise Unauthorized.missing()


async def _deny(websocket: WebSocket, refused: Refused) -> None:
    DEVICE_SOCKET_CLOSES.labels(f"http_{refused.status}").inc()
    body = problem_bytes(
        refused.status, refused.code, refused.detail, websocket.url.path, refused.fields
    )
    response = Response(body, refused.status, refused.headers, media_type=MEDIA_TYPE)
    if "websocket.http.response" in websocket.scope.get("extensions", {}):
        await websocket.send_denial_response(response)
    else:
        # A server without the extension: a close before accept (HTTP 403 on the wire).
        await websocket.close(1008, f"{refused.status} {refused.code}")


@router.websocket("/{device_id}/socket")
async def device_socket(websocket: WebSocket) -> None:
    try:
        source, context = await _admit(websocket)
    except Refused as refused:
        await _deny(websocket, refused)
        return
    except RedisError:
        await _deny(
            websocket,
            Refused(503, "redis_unavailable", "Redis is unavailable; retry", {"Retry-After": "2"}),
        )
        return
    except LookupTimeout as exc:
        # The ownership check's fallback asked the sync agent and had no answer in time.
        await _deny(
            websocket,
            Refused(503, "lookup_timeout", f"{exc}; retry shortly", {"Retry-After": "1"}),
        )
        return
    budgets = _budgets(websocket)
    bucket = budgets.hold(context.user_id, context.device_id)
    try:
        offered = websocket.scope.get("subprotocols") or []
        # Only the protocol's name is echoed: never the bearer entry.
        await websocket.accept(subprotocol=SUBPROTOCOL if SUBPROTOCOL in offered else None)
        await DeviceSocket(websocket, source, context, bucket).run()
    finally:
        budgets.release(context.user_id, context.device_id)
        if source.lease is not None:
            await leases_of(websocket.app).release(source.lease)
        logger.debug("device socket of {}/{} ended", context.user_id, context.device_id)
