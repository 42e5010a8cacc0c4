"""An account's profiles (adults, kids) and their parental limits: listed from the Redis read
model the accounts agents render; created, replaced and removed through accounts.profiles
events (docs/AUTH.md, "Profiles and parental controls").

`profiles:read` lists, `profiles:write` changes; a request acting as a kids profile may do
neither change (403 `restricted`): a child must not lift their own limits.
"""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter, Request, Response, status
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, Field

from agreements.genres import CANONICAL_GENRES
from agreements.profiles_read_model import read_profiles
from core.observability.metrics import BOUND_REFUSALS
from core.publisher import Publisher
from gateway.accepted import Accepted, accepted
from gateway.auth.dependencies import own_user
from gateway.errors import error_response
from gateway.idempotency import operation_id
from gateway.json_body import json_body, openapi_body
from gateway.profiles import HEADER_PARAMETER, acting_profile, restricted
from gateway.request_parameters import USER_ID, TextParameter
from gateway.routes.user_routes import READ_RESPONSES, RESPONSES, documented
from schemas.accounts import (
    ProfileChanged,
    ProfileKind,
    ProfileLimits,
    ProfilesResponse,
)
from topics.registry import ACCOUNTS_PROFILES

router = APIRouter(prefix="/api/v1/users/{user_id}/profiles", tags=["profiles"])

PROFILE_ID = TextParameter(
    "profile_id", r"^[A-Za-z0-9_-]{1,64}$", "a profile id", "the profile (chosen by the client)"
)
_KIDS_MAY_NOT = "a kids profile may not change the account's profiles"
_WRITE_RESPONSES = {
    **RESPONSES,
    403: {
        "description": f"{RESPONSES[403]['description']}; or `restricted`: the request acts "
        "as a kids profile; or `unknown_profile`"
    },
}


class ProfileBody(BaseModel):
    """A profile to create or replace (its id is in the path)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(default="", max_length=100)
    kind: ProfileKind
    limits: ProfileLimits = Field(default_factory=ProfileLimits)


async def _changer(request: Request) -> tuple[str, str, str]:
    """(acting subject, user id, profile id) of a change the caller may make."""
    principal, user_id = await own_user(request, "profiles:write")
    profile_id = PROFILE_ID.read(request)
    acting = await acting_profile(request)
    if acting is not None and acting.kind is ProfileKind.kids:
        raise restricted(_KIDS_MAY_NOT)
    return principal.subject, user_id, profile_id


def _invalid(field: str, reason: str) -> RequestValidationError:
    return RequestValidationError(
        [{"loc": ("body", *field.split(".")), "msg": reason, "type": "value_error"}]
    )


async def _publish(request: Request, change: ProfileChanged) -> Response:
    publisher: Publisher = request.app.state.publisher
    published = await publisher.publish(
        ACCOUNTS_PROFILES, change, key=change.user_id, event_id=operation_id(request)
    )
    return accepted(published)


@router.get(
    "",
    response_model=ProfilesResponse,
    responses=READ_RESPONSES,
    openapi_extra=documented(USER_ID, extra={"parameters": [HEADER_PARAMETER]}),
    summary="The account's profiles and their parental limits",
)
async def list_profiles(request: Request) -> Response:
    _, user_id = await own_user(request, "profiles:read")
    await acting_profile(request)  # a profile named must be the account's
    settings = request.app.state.settings
    profiles = await read_profiles(request.app.state.redis, settings.redis.key_prefix, user_id)
    body = ProfilesResponse(user_id=user_id, profiles=profiles)
    return Response(body.model_dump_json(), media_type="application/json")


@router.put(
    "/{profile_id}",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=Accepted,
    responses={
        **_WRITE_RESPONSES,
        422: {
            "description": f"{RESPONSES[422]['description']}; also refused: a kids profile "
            "without `limits.content_rating_limit`, a blocked genre that is not a canonical "
            "genre id"
        },
        409: {
            "description": "`profile_limit_reached`: a new profile, and the account has "
            "AUTH_MAX_PROFILES already"
        },
    },
    openapi_extra=documented(
        USER_ID,
        PROFILE_ID,
        write=True,
        extra={
            **openapi_body(ProfileBody, "the profile; its limits apply on every read path"),
            "parameters": [HEADER_PARAMETER],
        },
    ),
    summary="Create or replace a profile of the account",
)
async def put_profile(request: Request) -> Response:
    subject, user_id, profile_id = await _changer(request)
    body = await json_body(request, ProfileBody)
    unknown = [g for g in body.limits.blocked_genres if g not in CANONICAL_GENRES]
    if unknown:
        raise _invalid(
            "limits.blocked_genres",
            f"{unknown[0]!r} is not a canonical genre id ({', '.join(CANONICAL_GENRES)})",
        )
    if body.kind is ProfileKind.kids and body.limits.content_rating_limit is None:
        raise _invalid(
            "limits.content_rating_limit", "a kids profile needs a maximum maturity rating"
        )
    settings = request.app.state.settings
    cap = settings.auth.max_profiles
    existing = await read_profiles(request.app.state.redis, settings.redis.key_prefix, user_id)
    if len(existing) >= cap and profile_id not in {p.profile_id for p in existing}:
        # A courtesy with a clear answer: the accounts agent enforces the bound itself.
        BOUND_REFUSALS.labels(bound="profiles_per_account", where="gateway").inc()
        return error_response(
            409,
            "profile_limit_reached",
            f"the account already has {len(existing)} profiles (at most {cap}); remove one first",
            request,
            fields=[{"field": "profile_id", "reason": f"a new profile past the limit of {cap}"}],
        )
    change = ProfileChanged(
        user_id=user_id,
        profile_id=profile_id,
        name=body.name,
        kind=body.kind,
        limits=body.limits,
        changed_by=subject,
        changed_at=datetime.now(UTC),
    )
    return await _publish(request, change)


@router.delete(
    "/{profile_id}",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=Accepted,
    responses=_WRITE_RESPONSES,
    openapi_extra=documented(
        USER_ID, PROFILE_ID, write=True, extra={"parameters": [HEADER_PARAMETER]}
    ),
    summary="Remove a profile of the account",
)
async def delete_profile(request: Request) -> Response:
    subject, user_id, profile_id = await _changer(request)
    change = ProfileChanged(
        user_id=user_id,
        profile_id=profile_id,
        removed=True,
        changed_by=subject,
        changed_at=datetime.now(UTC),
    )
    return await _publish(request, change)
