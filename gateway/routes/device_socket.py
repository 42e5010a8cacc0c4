"""`GET /api/v1/users/{user_id}/devices/{device_id}/socket`: the device WebSocket
(docs/DEVICE_PROTOCOL.md).

Admission happens before the handshake is accepted, so a refused socket gets the HTTP answer
any route would give, as problem+json (the WebSocket Denial Response extension, which uvicorn
serves): 401 without a usable credential, 403 for a missing scope, another user's id or a
device that is not the user's, 422 for a bad parameter, 404 in a PubNub deployment, 503 when
the fan-out cannot reach Redis. A browser only sees that the handshake failed; every other
client reads the status and the body.

The credential: the subprotocol list carries it for browsers (`new WebSocket(url, ["mgw.v1",
"bearer." + token])`; the server accepts `mgw.v1` and never echoes the token), or an
`Authorization: Bearer` header from clients that can set one, or a stream ticket `?ticket=`
(gateway/realtime/tickets.py).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter
from fastapi.exceptions import RequestValidationError
from loguru import logger
from starlette.exceptions import HTTPException
from starlette.responses import Response
from starlette.websockets import WebSocket

from core.observability.metrics import DEVICE_SOCKET_CLOSES
from gateway.auth.dependencies import PRINCIPAL_KEY, Credential, resolve_principal
from gateway.auth.errors import AuthError, AuthUnavailable, Forbidden, Unauthorized
from gateway.auth.principal import Principal
from gateway.device_ownership import FROM_PATH, UnknownDevice, require_own_device
from gateway.errors import field_errors
from gateway.problems import MEDIA_TYPE, problem_bytes
from gateway.realtime.device_frames import SUBPROTOCOL, bearer_of
from gateway.realtime.events import EventSource, StreamRequest
from gateway.realtime.flood import Budgets
from gateway.realtime.hub import HubUnavailable
from gateway.realtime.socket import NOT_REGISTERED, DeviceSocket, SocketContext, acked
from gateway.request_parameters import DEVICE_ID, USER_ID
from gateway.routes.realtime import (
    CHANNEL_NAMES,
    CHANNEL_SCOPES,
    _channels,
    _last_event_id,
    _pubnub,
    hub_of,
)

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


async def _principal(websocket: WebSocket) -> Principal:
    offered = list(websocket.scope.get("subprotocols") or [])
    token = bearer_of(offered)
    ticket = websocket.query_params.get("ticket")
    if token is not None and ticket is not None:
        raise Unauthorized.invalid("send one credential: a bearer subprotocol or a ticket")
    if ticket is not None:
        return await _redeem(websocket, ticket)
    if token is not None:
        authenticator = websocket.app.state.authenticator
        principal: Principal = await authenticator.principal_for(
            Credential("bearer", token),
            websocket,  # type: ignore[arg-type]
        )
        websocket.scope[PRINCIPAL_KEY] = principal
        return principal
    found = await resolve_principal(websocket)  # type: ignore[arg-type]
    if found is None:
        raise Unauthorized.missing()
    return found


async def _redeem(websocket: WebSocket, ticket: str) -> Principal:
    """A stream ticket, single use (gateway/realtime/tickets.py, from the stream work)."""
    try:
        from gateway.realtime import tickets  # type: ignore[attr-defined]
    except ImportError:
        raise Unauthorized.invalid("stream tickets are not available on this gateway") from None
    redeemed: Any = await tickets.redeem_ticket(websocket, ticket)
    return redeemed  # type: ignore[no-any-return]


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
    try:
        principal = await _principal(websocket)
        try:
            channels = _channels(websocket)  # type: ignore[arg-type]
            user_id = USER_ID.read(websocket)  # type: ignore[arg-type]
            device_id = DEVICE_ID.read(websocket)  # type: ignore[arg-type]
            last = _last_event_id(websocket)  # type: ignore[arg-type]
        except RequestValidationError as exc:
            fields = field_errors(exc)
            raise Refused(
                422, "validation_failed", f"{len(fields)} field(s) failed validation", None, fields
            ) from None
        missing = principal.missing_scopes(tuple(sorted({CHANNEL_SCOPES[c] for c in channels})))
        if missing:
            raise Forbidden.scope(missing)
        if not principal.may_act_for(user_id):
            raise Forbidden.not_owner("a user may act on their own user id only")
    except AuthError as exc:
        raise Refused(
            exc.status, exc.code, exc.message, {"WWW-Authenticate": exc.www_authenticate}
        ) from None
    except AuthUnavailable:
        raise Refused(503, "auth_unavailable", "credentials cannot be checked now; retry") from None
    check = _owner_check(websocket, user_id)
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
    source = EventSource(
        hub,
        app.state.redis,
        prefix,
        StreamRequest(
            user_id=user_id,
            device_id=device_id,
            channels=frozenset(CHANNEL_NAMES[c](user_id) for c in channels),
            last_event_id=last,
        ),
    )
    context = SocketContext(
        user_id=user_id,
        device_id=device_id,
        scopes=frozenset(principal.scopes),
        instance=websocket.url.path,
        max_frame_bytes=settings.socket.max_frame_bytes,
        check_target=check,
    )
    return source, context


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
    except HTTPException as exc:  # pragma: no cover - the helpers above raise Refused
        await _deny(websocket, Refused(exc.status_code, "http_error", str(exc.detail)))
        return
    offered = websocket.scope.get("subprotocols") or []
    # Only the protocol's name is echoed: never the bearer entry.
    await websocket.accept(subprotocol=SUBPROTOCOL if SUBPROTOCOL in offered else None)
    budgets = _budgets(websocket)
    bucket = budgets.hold(context.user_id, context.device_id)
    try:
        await DeviceSocket(websocket, source, context, bucket).run()
    finally:
        budgets.release(context.user_id, context.device_id)
        logger.debug("device socket of {}/{} ended", context.user_id, context.device_id)
