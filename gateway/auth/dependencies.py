"""Who is calling (`authenticate`, `require`), may they (`require_scopes`), and is it their own
user id (`own_user`, for the routes under /api/v1/users/{user_id}).

A request is authenticated once; the result is kept in the ASGI scope (PRINCIPAL_KEY) so the rate
limiter (which runs first, to learn the tier) and the route's dependencies share it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Literal

from fastapi import Depends, Request
from loguru import logger
from redis.exceptions import RedisError

from core.config import AuthSettings
from gateway.auth.api_keys import (
    ApiKeyRecord,
    InvalidApiKey,
    hash_secret,
    parse_key,
    redis_key,
    verify_record,
)
from gateway.auth.errors import AuthUnavailable, BadAuthRequest, Forbidden, Unauthorized
from gateway.auth.principal import PRINCIPAL_KEY, Principal
from gateway.auth.tokens import InvalidToken, TokenVerifier
from gateway.request_parameters import USER_ID

API_KEY_HEADER = "X-API-Key"


@dataclass(frozen=True)
class Credential:
    kind: Literal["bearer", "api_key"]
    value: str


def extract_credential(authorization: str | None, api_key: str | None) -> Credential | None:
    """The one credential a request carries, None if it carries none we understand.

    An Authorization scheme we do not support (e.g. Basic) counts as no credential, so the
    401 challenge tells the client which scheme to use (RFC 6750 section 3.1).
    """
    from_header: Credential | None = None
    if authorization is not None:
        scheme, _, value = authorization.strip().partition(" ")
        kind = {"bearer": "bearer", "apikey": "api_key"}.get(scheme.lower())
        if kind is not None:
            if not value.strip():
                raise Unauthorized.invalid(f"empty {scheme} credential")
            from_header = Credential(kind, value.strip())  # type: ignore[arg-type]
    if api_key is not None:
        if from_header is not None:
            raise BadAuthRequest.because(
                f"send one credential: Authorization or {API_KEY_HEADER}, not both"
            )
        if not api_key.strip():
            raise Unauthorized.invalid(f"empty {API_KEY_HEADER}")
        return Credential("api_key", api_key.strip())
    return from_header


class Authenticator:
    """Verifies bearer tokens in-process and API keys against their Redis mirror."""

    def __init__(self, auth: AuthSettings, redis_prefix: str) -> None:
        self.verifier = TokenVerifier.from_settings(auth)
        self.redis_prefix = redis_prefix

    async def principal_for(self, credential: Credential, request: Request) -> Principal:
        if credential.kind == "bearer":
            try:
                return await self.verifier.verify_async(credential.value)
            except InvalidToken as exc:
                raise Unauthorized.invalid(str(exc)) from None
        try:
            key_id, secret = parse_key(credential.value)
        except InvalidApiKey as exc:
            raise Unauthorized.invalid(str(exc), reason="invalid_api_key") from None
        redis = request.app.state.redis
        try:
            raw = await redis.get(redis_key(self.redis_prefix, hash_secret(secret)))
        except (RedisError, OSError) as exc:
            raise AuthUnavailable(f"{type(exc).__name__}: {exc}") from None
        record = None
        if raw is not None:
            try:
                record = ApiKeyRecord.from_json(raw)
            except (ValueError, KeyError, TypeError) as exc:
                logger.error("API key {} has a corrupt mirror record: {}", key_id, exc)
        try:
            return verify_record(key_id, record)
        except InvalidApiKey as exc:
            raise Unauthorized.invalid(str(exc), reason="invalid_api_key") from None


async def resolve_principal(request: Request) -> Principal | None:
    """Authenticate once per request; None for a request without credentials."""
    scope = request.scope
    # A scope key, not request.state: a missing State attribute costs an exception per request.
    if PRINCIPAL_KEY in scope:
        return scope[PRINCIPAL_KEY]  # type: ignore[no-any-return]
    credential = extract_credential(
        request.headers.get("authorization"), request.headers.get(API_KEY_HEADER)
    )
    authenticator: Authenticator = request.app.state.authenticator
    principal = (
        None if credential is None else await authenticator.principal_for(credential, request)
    )
    scope[PRINCIPAL_KEY] = principal
    return principal


async def optional_principal(request: Request) -> Principal | None:
    """For routes open to anonymous callers: a bad credential is still a 401."""
    return await resolve_principal(request)


async def authenticate(
    principal: Annotated[Principal | None, Depends(optional_principal)],
) -> Principal:
    if principal is None:
        raise Unauthorized.missing()
    return principal


def check_scopes(principal: Principal, scopes: tuple[str, ...]) -> Principal:
    missing = principal.missing_scopes(scopes)
    if missing:
        raise Forbidden.scope(missing)
    return principal


async def require(request: Request, *scopes: str) -> Principal:
    """For routes that authenticate in their own body (the fast lane): 401 without a
    credential, 403 without every one of `scopes`."""
    principal = await resolve_principal(request)
    if principal is None:
        raise Unauthorized.missing()
    return check_scopes(principal, scopes)


def require_scopes(*scopes: str) -> Callable[..., Awaitable[Principal]]:
    """A dependency that lets through principals holding every one of `scopes` (403 otherwise)."""

    async def dependency(principal: Annotated[Principal, Depends(authenticate)]) -> Principal:
        return check_scopes(principal, scopes)

    dependency.__name__ = f"require_scopes_{'_'.join(s.replace(':', '_') for s in scopes)}"
    return dependency


async def own_user(request: Request, *scopes: str) -> tuple[Principal, str]:
    """The caller, holding `scopes`, acting on the path's user id: their own, or as an admin.

    Checked in this order: credential (401), scope (403), the path's user id (422), ownership
    (403), so a caller learns nothing about a user id it may not use.
    """
    principal = await require(request, *scopes)
    user_id = USER_ID.read(request)
    if not principal.may_act_for(user_id):
        if principal.kind == "api_key":
            raise Forbidden.not_owner("API keys do not act for users; use the user's own token")
        raise Forbidden.not_owner("a user may act on their own user id only")
    return principal, user_id
