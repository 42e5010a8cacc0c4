"""What every sync route shares: the caller's own user id from the path, the acting device, the
operation's stamp from the user's clock (gateway/sync_clock.py), optional JSON bodies, and the
202 answer.

Sync routes take only the `Request` and do their own authentication and parsing (the pattern
of gateway/routes/content.py), so they can be served by the fast lane once it matches path
templates. Checks run in this order: credential (401), scope (403), path and body (422),
ownership (403): a caller learns nothing about a user id it may not use.
"""

from __future__ import annotations

import re
import uuid
from typing import Any, TypeVar

import orjson
from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel
from starlette.exceptions import HTTPException

from core.publisher import Published
from gateway.auth.dependencies import USER_ID_PATTERN, require
from gateway.auth.errors import Forbidden
from gateway.auth.principal import Principal
from gateway.idempotency import PARAMETER as IDEMPOTENCY_PARAMETER
from gateway.json_body import BODY_MODELS, json_body
from gateway.lookup import AGENT_FAILED_RESPONSE
from gateway.sync_clock import ClockTooFarAhead, stamp
from schemas.sync import HLC, MAX_CLOCK_AHEAD_S

M = TypeVar("M", bound=BaseModel)

DEVICE_ID_PATTERN = r"^[A-Za-z0-9._:-]{1,128}$"
DEVICE_HEADER = "X-Device-ID"
_USER_ID = re.compile(USER_ID_PATTERN)
_DEVICE_ID = re.compile(DEVICE_ID_PATTERN)

# Scopes not in gateway/auth/principal.py's SCOPES yet (docs/SYNC.md, "Scopes").
PROGRESS_READ = "progress:read"
DEVICES_WRITE = "devices:write"


def invalid(loc: tuple[str, ...], message: str, value: object = None) -> RequestValidationError:
    """A 422 naming the field (`loc`, e.g. ("path", "user_id")) and the reason."""
    return RequestValidationError(
        [{"type": "value_error", "loc": loc, "msg": message, "input": value}]
    )


def path_text(request: Request, name: str, pattern: re.Pattern[str], what: str) -> str:
    value = str(request.path_params.get(name, ""))
    if not pattern.fullmatch(value):
        raise invalid(("path", name), f"{what} must match {pattern.pattern}", value)
    return value


def path_user(request: Request) -> str:
    return path_text(request, "user_id", _USER_ID, "a user id")


def path_device(request: Request) -> str:
    return path_text(request, "device_id", _DEVICE_ID, "a device id")


def path_uuid(request: Request, name: str) -> uuid.UUID:
    value = str(request.path_params.get(name, ""))
    try:
        return uuid.UUID(value)
    except ValueError:
        raise invalid(("path", name), "must be a UUID", value) from None


def device_header(request: Request, *, required: bool) -> str | None:
    """The acting device, from X-Device-ID."""
    value = request.headers.get(DEVICE_HEADER)
    if value is None:
        if required:
            raise invalid(("header", DEVICE_HEADER), "the acting device's id is required")
        return None
    if not _DEVICE_ID.fullmatch(value):
        raise invalid(("header", DEVICE_HEADER), f"must match {DEVICE_ID_PATTERN}", value)
    return value


async def own_user(request: Request, *scopes: str) -> tuple[Principal, str]:
    """The caller, holding `scopes`, acting on the path's user id: their own, or as an admin."""
    principal = await require(request, *scopes)
    user_id = path_user(request)
    if not principal.may_act_for(user_id):
        if principal.kind == "api_key":
            raise Forbidden.not_owner("API keys do not act for users; use the user's own token")
        raise Forbidden.not_owner("a user may act on their own user id only")
    return principal, user_id


async def optional_body(request: Request, model: type[M]) -> M:
    """The JSON body as `model`, or `model()` when the request has no body at all."""
    if not request.headers.get("content-type") and not await request.body():
        return model()
    return await json_body(request, model)


async def operation_stamp(request: Request, user_id: str, client: HLC | None = None) -> HLC:
    """The operation's stamp: the client's own (offline edits keep when they were made), or the
    next of the user's clock. A client clock too far ahead is refused (it would win every
    race); one accepted moves only this user's clock."""
    try:
        return await stamp(
            request.app.state.redis, request.app.state.settings.redis.key_prefix, user_id, client
        )
    except ClockTooFarAhead as exc:
        # Integers only: a stamp may be any size, too large for a float.
        seconds, micros = divmod(exc.ahead_us, 1_000_000)
        raise invalid(
            ("body", "timestamp"),
            f"is {seconds}.{micros // 100_000} s ahead of the server's clock (at most "
            f"{MAX_CLOCK_AHEAD_S} s tolerated); fix the device's clock",
            client.model_dump() if client else None,
        ) from None


def accepted(published: Published, **extra: Any) -> Response:
    """202 with where the broker put the event, and what the client needs to know later."""
    body = {**published.__dict__, **extra}
    return Response(orjson.dumps(body), 202, media_type="application/json")


def not_found(message: str) -> HTTPException:
    return HTTPException(404, message)


def path_parameters(*names: str) -> dict[str, Any]:
    """openapi_extra documenting path parameters the endpoint reads itself."""
    schemas: dict[str, dict[str, Any]] = {
        "user_id": {"type": "string", "pattern": USER_ID_PATTERN},
        "device_id": {"type": "string", "pattern": DEVICE_ID_PATTERN},
        "content_id": {"type": "string", "format": "uuid"},
    }
    descriptions = {
        "user_id": "the caller's own user id (admins: any user's)",
        "device_id": "one of the user's devices",
        "content_id": "the title",
    }
    return {
        "parameters": [
            {
                "name": name,
                "in": "path",
                "required": True,
                "schema": schemas[name],
                "description": descriptions[name],
            }
            for name in names
        ]
    }


def device_header_parameter(required: bool) -> dict[str, Any]:
    return {
        "name": DEVICE_HEADER,
        "in": "header",
        "required": required,
        "schema": {"type": "string", "pattern": DEVICE_ID_PATTERN},
        "description": "the device acting (or listening)",
    }


def documented(
    *path: str,
    device: bool | None = None,
    write: bool = False,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """openapi_extra: path parameters, the X-Device-ID header (None: not taken), the
    Idempotency-Key header of writes, and more."""
    out = path_parameters(*path)
    if device is not None:
        out["parameters"].append(device_header_parameter(device))
    if write:
        out["parameters"].append(IDEMPOTENCY_PARAMETER)
    for key, value in (extra or {}).items():
        if key == "parameters":
            out["parameters"].extend(value)
        else:
            out[key] = value
    return out


RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"description": "no valid credential"},
    403: {"description": "missing scope, or another user's id"},
    415: {"description": "a body that is not JSON"},
    422: {"description": "invalid path, header or body fields, each named with the reason"},
    503: {
        "description": "not accepted: the broker is down (`broker_unavailable`, "
        "`dependency_unavailable`), or Redis, whose per-user clocks stamp watchlist, progress "
        "and device writes (`redis_unavailable`); or the outcome is unknown "
        "(`outcome_unknown`: retry with the same Idempotency-Key, it is applied once)"
    },
}


# Rules across fields, or against the server's clock, that the JSON Schema of a request cannot
# state; each write whose body carries one names it in its 422 (tests/edge/fuzz_rules.py).
CLOCK_RULE = (
    f"a `timestamp` more than {MAX_CLOCK_AHEAD_S} s ahead of the server's clock (fix the "
    "device's clock)"
)


def responses_with_rules(*rules: str) -> dict[int | str, dict[str, Any]]:
    """RESPONSES whose 422 also names these rules."""
    described = RESPONSES[422]["description"] + "; also refused: " + "; ".join(rules)
    return {**RESPONSES, 422: {"description": described}}


READ_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"description": "no valid credential"},
    403: {"description": "missing scope, or another user's id"},
    422: {"description": "invalid path or query fields, each named with the reason"},
    503: {"description": "not in the read model and no sync agent answered; retry"},
    **AGENT_FAILED_RESPONSE,
}

# Per-user state changes any second: never kept by a browser or a shared cache.
NO_STORE = {"Cache-Control": "no-store"}


def json_document(body: bytes) -> Response:
    return Response(body, media_type="application/json", headers=NO_STORE)


def optional_body_doc(model: type[BaseModel], description: str) -> dict[str, Any]:
    """openapi_extra documenting an optional JSON body of `model`."""
    BODY_MODELS[model.__name__] = model
    ref = {"$ref": f"#/components/schemas/{model.__name__}"}
    return {
        "requestBody": {
            "required": False,
            "description": description,
            "content": {"application/json": {"schema": ref}},
        }
    }
