"""API keys managed over HTTP by users with the role `admin` (docs/AUTH.md, "API keys"):
issue, list, revoke. The gateway generates an issued key (its secret is in the 202 only, once)
and publishes its SHA-256 on accounts.api_keys; the accounts agent stores the row and mirrors
it into Redis, where the gateway verifies keys. The list is read from that mirror's index.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Literal

import orjson
import redis.asyncio as aioredis
from fastapi import APIRouter, Request, Response, status
from pydantic import BaseModel, ConfigDict, Field

from agreements.api_key_mirror import index_key
from core.publisher import Publisher
from gateway.accepted import Accepted
from gateway.auth.api_keys import generate_key
from gateway.auth.dependencies import require
from gateway.auth.errors import Forbidden
from gateway.auth.principal import ADMIN_ROLE, SCOPES, Principal
from gateway.fast_lane import MARKER as FAST_LANE
from gateway.idempotency import PARAMETER as IDEMPOTENCY_PARAMETER
from gateway.idempotency import operation_id
from gateway.json_body import json_body, openapi_body
from gateway.openapi_security import USER_TOKEN
from gateway.request_parameters import TextParameter
from schemas.accounts import ApiKeyChanged
from topics.registry import ACCOUNTS_API_KEYS

router = APIRouter(prefix="/api/v1/admin/api-keys", tags=["admin"])

KEY_ID = TextParameter("key_id", r"^[0-9a-f]{12}$", "a key id", "the key's public id")
_ADMIN_ONLY = {
    401: {"description": "no valid credential"},
    403: {"description": f"not a user token with the role `{ADMIN_ROLE}` (API keys never are)"},
}


# The scopes a key may be given, as the body's schema states them (docs/AUTH.md, Scopes).
Scope = StrEnum("Scope", {name: name for name in SCOPES})  # type: ignore[misc]


class NewApiKey(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    scopes: list[Scope] = Field(default_factory=list, max_length=32)  # type: ignore[valid-type]
    tier: Literal["free", "pro", "enterprise"] = "free"


class IssuedApiKey(Accepted):
    """202: the key, shown this once; it works once the accounts agent mirrored it (< 1 s)."""

    key: str
    key_id: str
    name: str
    scopes: list[str]
    tier: str


class ApiKeyListing(BaseModel):
    key_id: str
    name: str
    scopes: list[str]
    tier: str
    created_at: datetime
    revoked_at: datetime | None


async def require_admin(request: Request) -> Principal:
    principal = await require(request)
    if not principal.is_admin:
        raise Forbidden.not_owner(f"managing API keys needs the role {ADMIN_ROLE}")
    return principal


def _accepted_with(published: object, **extra: object) -> Response:
    body = {**published.__dict__, **extra}
    return Response(orjson.dumps(body), 202, media_type="application/json")


@router.post(
    "",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=IssuedApiKey,
    responses={
        **_ADMIN_ONLY,
        415: {"description": "the body is not JSON"},
        422: {"description": "invalid fields (a scope the gateway does not know among them)"},
        503: {"description": "not accepted: the broker is unavailable; retry"},
    },
    openapi_extra={
        **openapi_body(NewApiKey, "the key's name, scopes and rate-limit tier"),
        "parameters": [IDEMPOTENCY_PARAMETER],
        "security": USER_TOKEN,
        FAST_LANE: True,
    },
    summary="Issue an API key (admins)",
)
async def issue_api_key(request: Request) -> Response:
    admin = await require_admin(request)
    wanted = await json_body(request, NewApiKey)
    new = generate_key()
    scopes = sorted({str(scope) for scope in wanted.scopes})
    change = ApiKeyChanged(
        action="issued",
        key_id=new.key_id,
        name=wanted.name,
        hash=new.hash,
        scopes=scopes,
        tier=wanted.tier,
        changed_by=admin.subject,
        changed_at=datetime.now(UTC),
    )
    publisher: Publisher = request.app.state.publisher
    published = await publisher.publish(
        ACCOUNTS_API_KEYS, change, key=new.key_id, event_id=operation_id(request)
    )
    return _accepted_with(
        published,
        key=new.full,
        key_id=new.key_id,
        name=wanted.name,
        scopes=scopes,
        tier=wanted.tier,
    )


@router.get(
    "",
    response_model=list[ApiKeyListing],
    responses={**_ADMIN_ONLY, 503: {"description": "Redis is unavailable; retry"}},
    openapi_extra={"security": USER_TOKEN, FAST_LANE: True},
    summary="List API keys, revoked ones too (admins)",
)
async def list_api_keys(request: Request) -> Response:
    await require_admin(request)
    prefix = request.app.state.settings.redis.key_prefix
    listing = await _read_listing(request.app.state.redis, prefix)
    return Response(orjson.dumps(listing), media_type="application/json")


@router.delete(
    "/{key_id}",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=Accepted,
    responses={
        **_ADMIN_ONLY,
        422: {"description": "a key id that is not 12 hex digits"},
        503: {"description": "not accepted: the broker is unavailable; retry"},
    },
    openapi_extra={
        "parameters": [KEY_ID.openapi(), IDEMPOTENCY_PARAMETER],
        "security": USER_TOKEN,
        FAST_LANE: True,
    },
    summary="Revoke an API key (admins); a key already revoked keeps its first revocation time",
)
async def revoke_api_key(request: Request) -> Response:
    admin = await require_admin(request)
    key_id = KEY_ID.read(request)
    change = ApiKeyChanged(
        action="revoked", key_id=key_id, changed_by=admin.subject, changed_at=datetime.now(UTC)
    )
    publisher: Publisher = request.app.state.publisher
    published = await publisher.publish(
        ACCOUNTS_API_KEYS, change, key=key_id, event_id=operation_id(request)
    )
    return _accepted_with(published)


async def _read_listing(redis: aioredis.Redis, prefix: str) -> list[dict[str, Any]]:
    """Every key's listing in the mirror's index, oldest first."""
    rows = [orjson.loads(r) for r in await redis.hvals(index_key(prefix))]
    return sorted(rows, key=lambda r: (r["created_at"], r["key_id"]))
