"""401/403 (and 503 when the key mirror is unreachable) as problem details, with the
RFC 6750 `WWW-Authenticate` challenge."""

from __future__ import annotations

import re

from fastapi import FastAPI, Request
from fastapi.responses import Response
from loguru import logger

from core.observability.metrics import AUTH_FAILURES
from gateway.errors import error_response

REALM = "media-gateway"
UNAVAILABLE_RETRY_AFTER_S = 2
# RFC 6750 section 3: error_description may hold printable ASCII except '"' and '\'.
_NOT_ALLOWED = re.compile(r"[^\x20\x21\x23-\x5b\x5d-\x7e]")


def challenge(
    error: str | None = None, description: str | None = None, scope: str | None = None
) -> str:
    """A Bearer challenge; no `error` when the request carried no credential at all (RFC 6750)."""
    parts = [f'Bearer realm="{REALM}"']
    if error:
        parts.append(f'error="{error}"')
    if description:
        parts.append(f'error_description="{_NOT_ALLOWED.sub("?", description)}"')
    if scope:
        parts.append(f'scope="{_NOT_ALLOWED.sub("?", scope)}"')
    return ", ".join(parts)


class AuthError(Exception):
    status = 401
    code = "unauthorized"

    def __init__(self, message: str, www_authenticate: str, reason: str) -> None:
        super().__init__(message)
        self.message = message
        self.www_authenticate = www_authenticate
        # Low-cardinality label for the failure counter (never the caller's input).
        self.reason = reason


class Unauthorized(AuthError):
    """No usable credential: 401."""

    @classmethod
    def missing(cls) -> Unauthorized:
        return cls(
            "this route needs a credential: Authorization: Bearer <token>, or X-API-Key: <key>",
            challenge(),
            "missing",
        )

    @classmethod
    def invalid(cls, description: str, reason: str = "invalid_token") -> Unauthorized:
        return cls(description, challenge("invalid_token", description), reason)


class BadAuthRequest(AuthError):
    """A credential the server cannot interpret (e.g. two at once): 400 per RFC 6750."""

    status = 400
    code = "invalid_request"

    @classmethod
    def because(cls, description: str) -> BadAuthRequest:
        return cls(description, challenge("invalid_request", description), "invalid_request")


class Forbidden(AuthError):
    """A valid principal that may not do this: 403."""

    status = 403
    code = "forbidden"

    @classmethod
    def scope(cls, missing: list[str]) -> Forbidden:
        wanted = " ".join(missing)
        description = f"missing scope: {wanted}"
        return cls(
            description, challenge("insufficient_scope", description, wanted), "insufficient_scope"
        )

    @classmethod
    def not_owner(cls, description: str) -> Forbidden:
        return cls(description, challenge("insufficient_scope", description), "not_owner")


class AuthUnavailable(Exception):
    """API keys cannot be checked because their Redis mirror is unreachable."""


def auth_error_response(request: Request, exc: AuthError | AuthUnavailable) -> Response:
    if isinstance(exc, AuthUnavailable):
        logger.warning("API key refused unchecked, key store unreachable: {}", exc)
        return error_response(
            503,
            "auth_unavailable",
            "API keys cannot be checked right now; retry after the delay in Retry-After",
            request,
            headers={"Retry-After": str(UNAVAILABLE_RETRY_AFTER_S)},
        )
    AUTH_FAILURES.labels(reason=exc.reason).inc()
    return error_response(
        exc.status,
        exc.code,
        exc.message,
        request,
        headers={"WWW-Authenticate": exc.www_authenticate},
    )


def install_auth_error_handlers(app: FastAPI) -> None:
    """For refusals raised by route dependencies (scopes, ownership, or any authentication the
    rate-limit middleware did not already do)."""

    @app.exception_handler(AuthError)
    async def _auth(request: Request, exc: AuthError) -> Response:
        return auth_error_response(request, exc)

    @app.exception_handler(AuthUnavailable)
    async def _unavailable(request: Request, exc: AuthUnavailable) -> Response:
        return auth_error_response(request, exc)
