"""TV sign-in by the Device Authorization Grant (RFC 8628), docs/AUTH.md "TV sign-in":
`POST /api/v1/auth/device/code` (the TV asks for codes), `POST /api/v1/auth/device/approve`
and `/deny` (a signed-in phone decides). The TV then polls `POST /api/v1/auth/token` with
grant_type `urn:ietf:params:oauth:grant-type:device_code` (gateway/auth/token_routes.py).

The gateway makes the codes and publishes only their hashes; the auth agents store them and
decide. An approval registers the TV as a device of the approving user: the gateway publishes
the same DeviceRegistered event the devices route publishes, and marks it in the register
(gateway/device_ownership.py), so the TV's first request naming its device is accepted.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from redis.exceptions import RedisError

from agreements.device_codes import (
    USER_CODE_ALPHABET,
    USER_CODE_LENGTH,
    new_device_code,
    new_user_code,
    normalize_user_code,
    sha256_hex,
)
from agreements.profiles_read_model import read_profile
from core.observability.metrics import BOUND_REFUSALS
from core.publisher import Publisher
from gateway.auth.dependencies import authenticate
from gateway.auth.errors import Forbidden
from gateway.auth.principal import Principal
from gateway.auth.token_routes import (
    FORM,
    NO_STORE,
    OAUTH_ERROR,
    OAuthError,
    ask_agents,
    read_form,
    required,
)
from gateway.bounds import device_limit
from gateway.device_ownership import note_membership
from gateway.errors import error_response
from gateway.json_body import json_body, openapi_body
from gateway.lookup import LookupTimeout, new_reply_channel
from gateway.profiles import HEADER_PARAMETER, ProfileRefused, acting_profile, device_profile
from gateway.sync_clock import operation_stamp
from schemas.accounts import ProfileId
from schemas.auth import DeviceApprovalRequested, DeviceAuthorizationRequested
from schemas.sync import DeviceCapabilities, DeviceInfo, DeviceRegistered
from topics.registry import AUTH_DEVICE_APPROVALS, AUTH_DEVICE_AUTHORIZATIONS, SYNC_DEVICES

router = APIRouter(prefix="/api/v1/auth/device", tags=["auth"])

# A new pair when the agent says the user code is taken (about 1 in 10^10 per live code).
USER_CODE_ATTEMPTS = 3


# What _device_code answers (RFC 8628 section 3.2), documented here because the route builds
# its JSONResponse by hand, and FastAPI then documented it as {}.
DEVICE_CODES: dict[str, Any] = {
    "content": {
        "application/json": {
            "schema": {
                "type": "object",
                "required": [
                    "device_code",
                    "user_code",
                    "verification_uri",
                    "verification_uri_complete",
                    "expires_in",
                    "interval",
                    "device_id",
                ],
                "properties": {
                    "device_code": {
                        "type": "string",
                        "description": "secret: the TV polls POST /api/v1/auth/token with it",
                    },
                    "user_code": {
                        "type": "string",
                        "description": "what the TV shows the user, e.g. WDJB-MJHT",
                    },
                    "verification_uri": {"type": "string", "description": "where to enter it"},
                    "verification_uri_complete": {
                        "type": "string",
                        "description": "verification_uri with the user code filled in",
                    },
                    "expires_in": {"type": "integer", "description": "the codes' life, s"},
                    "interval": {"type": "integer", "description": "seconds between polls"},
                    "device_id": {
                        "type": "string",
                        "description": "not in RFC 8628: the id the TV is registered under, "
                        "for its X-Device-ID once signed in",
                    },
                },
            }
        }
    }
}


def _decision(*statuses: str, device_id: bool = False) -> dict[str, Any]:
    """The body of a 200 of /approve or /deny (_decide builds it by hand)."""
    properties: dict[str, Any] = {"status": {"type": "string", "enum": list(statuses)}}
    if device_id:
        properties["device_id"] = {
            "type": "string",
            "description": "the TV, now a registered device of the approver",
        }
    return {
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "required": list(properties),
                    "properties": properties,
                }
            }
        }
    }


def _rate_key(prefix: str, address: str) -> str:
    return f"{prefix}:auth:device-code-rate:{{{address}}}"


async def _count_request(request: Request) -> int | None:
    """Seconds to wait when this client address asked for too many codes this minute."""
    settings = request.app.state.settings
    address = request.client.host if request.client else "unknown"
    key = _rate_key(settings.redis.key_prefix, address)
    redis = request.app.state.redis
    try:
        async with redis.pipeline(transaction=True) as pipe:
            pipe.incr(key)
            pipe.expire(key, 60, nx=True)
            pipe.ttl(key)
            count, _, ttl = await pipe.execute()
    except (RedisError, OSError):
        # The anonymous rate limit (which falls back to process memory) still holds.
        return None
    if count > settings.auth.device_codes_per_minute:
        return max(1, int(ttl))
    return None


@router.post(
    "/code",
    summary="A TV asks for a device code and a user code to show (RFC 8628 section 3.1)",
    responses={
        200: {
            "description": "device_code, user_code, verification_uri, expires_in, interval",
            **DEVICE_CODES,
        },
        400: {
            "description": "invalid_request (field client_id missing, a field sent twice, "
            "a bad device field; error_description names it) or invalid_scope",
            **OAUTH_ERROR,
        },
        429: {
            "description": "slow_down: too many codes asked from this address this minute",
            **OAUTH_ERROR,
        },
        503: {
            "description": "temporarily_unavailable: the auth agents did not answer",
            **OAUTH_ERROR,
        },
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                FORM: {
                    "schema": {
                        "type": "object",
                        "required": ["client_id"],
                        "properties": {
                            "client_id": {"type": "string", "description": "the TV app"},
                            "scope": {"type": "string"},
                            "device_id": {"type": "string"},
                            "device_name": {"type": "string", "default": "TV"},
                            "platform": {"type": "string", "default": "tizen"},
                            "app_version": {"type": "string", "default": "1.0"},
                            "remote_controllable": {
                                "type": "string",
                                "enum": ["true", "false"],
                                "default": "false",
                                "description": "whether the TV acts on remote commands "
                                "(play, pause, seek) from the user's other devices",
                            },
                        },
                    }
                }
            },
        }
    },
)
async def device_code(request: Request) -> Response:
    try:
        return await _device_code(request)
    except OAuthError as exc:
        return exc.response()


def _flag(fields: dict[str, str], name: str) -> bool:
    """A form field's "true" or "false" (absent: false); anything else is invalid_request."""
    value = (fields.get(name) or "false").lower()
    if value not in ("true", "false"):
        raise OAuthError("invalid_request", f"field {name}: true or false, not {value[:20]!r}")
    return value == "true"


async def _device_code(request: Request) -> Response:
    fields = await read_form(request)
    client_id = required(fields, "client_id")
    wait = await _count_request(request)
    if wait is not None:
        BOUND_REFUSALS.labels(bound="device_codes", where="gateway").inc()
        refused = OAuthError("slow_down", "too many device codes from this address", 429)
        answer = refused.response()
        answer.headers["Retry-After"] = str(wait)
        return answer
    auth = request.app.state.settings.auth
    try:
        device = DeviceInfo(
            device_id=fields.get("device_id") or f"tv-{uuid.uuid4().hex[:12]}",
            device_type="tv",
            platform=fields.get("platform") or "tizen",
            app_version=fields.get("app_version") or "1.0",
            device_name=fields.get("device_name") or "TV",
            capabilities=DeviceCapabilities(
                remote_controllable=_flag(fields, "remote_controllable")
            ),
        )
    except ValidationError as exc:
        first = exc.errors()[0]
        raise OAuthError("invalid_request", f"field {first['loc'][0]}: {first['msg']}") from None
    scope = fields.get("scope") or None
    for _ in range(USER_CODE_ATTEMPTS):
        code, user_code = new_device_code(), new_user_code()
        payload = DeviceAuthorizationRequested(
            device_code_hash=sha256_hex(code),
            user_code_hash=sha256_hex(normalize_user_code(user_code) or ""),
            client_id=client_id[:200],
            scope=scope,
            device=device,
            expires_in_s=auth.device_code_ttl_s,
            interval_s=auth.device_poll_interval_s,
            reply_channel=new_reply_channel(request.app.state.settings.redis.key_prefix),
        )
        answer = await ask_agents(
            request, AUTH_DEVICE_AUTHORIZATIONS, payload, payload.device_code_hash
        )
        if answer["status"] == 200:
            break
    else:
        raise OAuthError("temporarily_unavailable", "no free user code; retry", 503)
    base = str(request.base_url).rstrip("/")
    verification = auth.device_verification_uri or f"{base}/activate"
    body = {
        "device_code": code,
        "user_code": user_code,
        "verification_uri": verification,
        "verification_uri_complete": f"{verification}?user_code={user_code}",
        "expires_in": auth.device_code_ttl_s,
        "interval": auth.device_poll_interval_s,
        # Not in RFC 8628 (extra members are allowed): the id the TV is registered under, for
        # its X-Device-ID once signed in.
        "device_id": device.device_id,
    }
    return JSONResponse(body, headers=NO_STORE)


# What normalize_user_code accepts, stated for the OpenAPI document: the code's letters in
# either case, with spaces and dashes anywhere.
_LETTER = f"[{USER_CODE_ALPHABET}{USER_CODE_ALPHABET.lower()}]"
USER_CODE_PATTERN = rf"^[ -]*(?:{_LETTER}[ -]*){{{USER_CODE_LENGTH}}}$"


class UserCode(BaseModel):
    model_config = ConfigDict(extra="forbid")

    user_code: str = Field(
        min_length=1,
        max_length=32,
        pattern=USER_CODE_PATTERN,
        description="the code the TV shows, e.g. WDJB-MJHT (any case; spaces and dashes ignored)",
    )

    @field_validator("user_code")
    @classmethod
    def _well_formed(cls, value: str) -> str:
        code = normalize_user_code(value)
        if code is None:
            raise ValueError("not a user code: 8 letters like WDJB-MJHT")
        return code


class Approval(UserCode):
    profile_id: ProfileId | None = Field(
        default=None,
        description="bind the TV to this profile of the account (its tokens carry the "
        "`profile` claim: a kids TV can never act as the parent); none: the approver's acting "
        "profile (token `profile` claim or X-Profile-ID), else the account unbound",
    )


DECISION_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"description": "refused: the TV polling gets access_denied", **_decision("denied")},
    400: {"description": "`invalid_user_code`: no TV waits with this code (expired, used)"},
    403: {"description": "an API key (it acts for no user)"},
    409: {"description": "`device_limit_reached`: the user has no room for another device"},
    422: {"description": "`validation_failed`: user_code is not a well-formed code"},
}
APPROVAL_RESPONSES: dict[int | str, dict[str, Any]] = {
    **DECISION_RESPONSES,
    200: {
        "description": "approved: the TV is registered as the user's device",
        **_decision("approved", device_id=True),
    },
    403: {
        "description": "an API key (it acts for no user); `unknown_profile`: profile_id (or "
        "X-Profile-ID) is not a profile of the account; `restricted`: the approver acts as a "
        "kids profile (or its token is bound to a profile) and profile_id names another"
    },
    422: {"description": "`validation_failed`: user_code or profile_id is malformed"},
}


async def _tv_profile(request: Request, principal: Principal, asked: str | None) -> str | None:
    """The profile the approved TV is bound to, checked against the profiles read model."""
    acting = await acting_profile(request)
    chosen = device_profile(acting, principal.profile is not None, asked)
    if chosen is not None and (acting is None or chosen != acting.profile_id):
        settings = request.app.state.settings
        found = await read_profile(
            request.app.state.redis, settings.redis.key_prefix, principal.subject, chosen
        )
        if found is None:
            raise ProfileRefused(
                "unknown_profile", "no such profile in the account", "body.profile_id"
            )
    return chosen


async def _decide(request: Request, principal: Principal, approved: bool) -> Response:
    if principal.kind != "user":
        raise Forbidden.not_owner("API keys do not act for users; use the user's own token")
    body = await json_body(request, Approval if approved else UserCode)
    profile_id = None
    if isinstance(body, Approval):
        profile_id = await _tv_profile(request, principal, body.profile_id)
    payload = DeviceApprovalRequested(
        user_code_hash=sha256_hex(body.user_code),
        user_id=principal.subject,
        approved=approved,
        approver_scopes=sorted(principal.scopes),
        profile_id=profile_id,
        reply_channel=new_reply_channel(request.app.state.settings.redis.key_prefix),
    )
    try:
        answer = await ask_agents(request, AUTH_DEVICE_APPROVALS, payload, payload.user_code_hash)
    except OAuthError:
        raise LookupTimeout("the token service did not answer in time") from None
    if answer["status"] != 200:
        return error_response(
            400,
            "invalid_user_code",
            answer["body"].get("error_description", "no device waits with this code"),
            request,
            fields=[{"field": "body.user_code", "reason": "no device waits with this code"}],
        )
    device = DeviceInfo.model_validate(answer["body"]["device"])
    if not approved:
        return JSONResponse({"status": "denied"}, headers=NO_STORE)
    user_id = principal.subject
    refused = await device_limit(request, user_id, device.device_id)
    if refused is not None:
        # Too many devices: the TV is told access_denied rather than left waiting.
        deny = payload.model_copy(update={"approved": False})
        await ask_agents(request, AUTH_DEVICE_APPROVALS, deny, deny.user_code_hash)
        return refused
    event = DeviceRegistered(
        user_id=user_id, device=device, timestamp=await operation_stamp(request, user_id)
    )
    publisher: Publisher = request.app.state.publisher
    await publisher.publish(SYNC_DEVICES, event, key=user_id)
    # Known at once, as after PUT .../devices/{device_id}: the TV's first request may follow.
    await note_membership(request, user_id, device.device_id, event.timestamp, registered=True)
    return JSONResponse({"status": "approved", "device_id": device.device_id}, headers=NO_STORE)


@router.post(
    "/approve",
    summary="A signed-in user approves the TV showing this user code (RFC 8628)",
    responses=APPROVAL_RESPONSES,
    openapi_extra={
        **openapi_body(Approval, "the code the TV shows, and the profile to bind the TV to"),
        "parameters": [HEADER_PARAMETER],
    },
)
async def approve(
    request: Request, principal: Annotated[Principal, Depends(authenticate)]
) -> Response:
    return await _decide(request, principal, approved=True)


@router.post(
    "/deny",
    summary="A signed-in user refuses the TV showing this user code: it gets access_denied",
    responses=DECISION_RESPONSES,
    openapi_extra=openapi_body(UserCode, "the code the TV shows"),
)
async def deny(
    request: Request, principal: Annotated[Principal, Depends(authenticate)]
) -> Response:
    return await _decide(request, principal, approved=False)
