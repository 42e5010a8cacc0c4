"""One error shape for every 4xx/5xx: RFC 9457 problem details (gateway/problems.py)."""

from __future__ import annotations

import math
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from loguru import logger
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import compile_path

from core.publisher import BrokerUnavailable, PublishOutcomeUnknown
from core.resilience import CircuitOpen
from gateway.device_ownership import UnknownDevice
from gateway.fast_lane import routes_of
from gateway.lookup import AgentFailed, LookupTimeout
from gateway.problems import MEDIA_TYPE, problem_bytes
from schemas.storable import error_reason

RETRY_AFTER_S = 5
# The detail of Starlette's 404 when no route matched the path.
NO_ROUTE = "Not Found"


def error_response(
    status: int,
    code: str,
    message: str,
    request: Request,
    fields: list[dict[str, str]] | None = None,
    headers: dict[str, str] | None = None,
    extensions: dict[str, Any] | None = None,
) -> Response:
    """A problem answer: `message` is its detail, the request's path its instance."""
    body = problem_bytes(
        status,
        code,
        message,
        request.url.path,
        fields,
        getattr(request.state, "request_id", None),
        extensions,
    )
    return Response(body, status_code=status, headers=headers, media_type=MEDIA_TYPE)


def field_errors(exc: RequestValidationError) -> list[dict[str, str]]:
    out = []
    for err in exc.errors():
        loc = [str(p) for p in err.get("loc", ())]
        # "body" is where, not what: clients know the field by its path in their JSON.
        if loc and loc[0] == "body":
            loc = loc[1:]
        out.append({"field": ".".join(loc) or "(body)", "reason": error_reason(err)})
    return out


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> Response:
        fields = field_errors(exc)
        return error_response(
            422, "validation_failed", f"{len(fields)} field(s) failed validation", request, fields
        )

    @app.exception_handler(BrokerUnavailable)
    async def _broker(request: Request, exc: BrokerUnavailable) -> Response:
        logger.warning("publish refused, broker unavailable: {}", exc)
        return error_response(
            503,
            "broker_unavailable",
            "the event was not accepted (the message broker cannot be reached, or this "
            "gateway is shutting down); nothing was written, so a retry after the delay in "
            "Retry-After is safe",
            request,
            headers={"Retry-After": str(RETRY_AFTER_S)},
        )

    @app.exception_handler(PublishOutcomeUnknown)
    async def _unknown(request: Request, exc: PublishOutcomeUnknown) -> Response:
        logger.warning("publish outcome unknown: {}", exc)
        key = request.headers.get("idempotency-key")
        advice = (
            f"retrying with the same Idempotency-Key ({key!r}) is safe: it is applied once"
            if key
            else "a plain retry may apply it twice; retry with an Idempotency-Key header "
            "(and send one with every write) to make retries safe"
        )
        return error_response(
            503,
            "outcome_unknown",
            f"the broker did not confirm the event in time, so it may or may not have been "
            f"accepted; {advice}",
            request,
            headers={"Retry-After": str(RETRY_AFTER_S)},
        )

    @app.exception_handler(UnknownDevice)
    async def _unknown_device(request: Request, exc: UnknownDevice) -> Response:
        return error_response(
            403,
            "unknown_device",
            str(exc),
            request,
            fields=[{"field": exc.field, "reason": "not a device registered to this user"}],
        )

    @app.exception_handler(LookupTimeout)
    async def _lookup(request: Request, exc: LookupTimeout) -> Response:
        logger.warning("read-model lookup unanswered: {}", exc)
        return error_response(
            503, "lookup_timeout", f"{exc}; retry shortly", request, headers={"Retry-After": "1"}
        )

    @app.exception_handler(AgentFailed)
    async def _agent_failed(request: Request, exc: AgentFailed) -> Response:
        failure = exc.failure
        logger.warning("agent could not answer {} {}: {}", request.method, request.url.path, exc)
        if failure.retryable:
            return error_response(
                503,
                "agent_unavailable",
                f"the {failure.agent} agent cannot answer now: {failure.reason}; retry shortly",
                request,
                headers={"Retry-After": "1"},
            )
        return error_response(
            502,
            "agent_failed",
            f"the {failure.agent} agent could not answer this request: {failure.reason}",
            request,
        )

    @app.exception_handler(CircuitOpen)
    async def _open(request: Request, exc: CircuitOpen) -> Response:
        retry = max(1, math.ceil(exc.retry_after_s))
        return error_response(
            503,
            "dependency_unavailable",
            f"{exc.service} is failing; calls are paused, retry after {retry} s",
            request,
            headers={"Retry-After": str(retry)},
        )

    async def _redis_down(request: Request, exc: Exception) -> Response:
        # A read model or cache read with Redis away: the data is safe in PostgreSQL and
        # comes back with Redis, so this is "retry", never a 500. A sync write needs Redis too
        # (the user's clock stamps it) and was not published.
        logger.warning("redis unavailable for {} {}: {!r}", request.method, request.url.path, exc)
        return error_response(
            503,
            "redis_unavailable",
            "Redis (read models, users' clocks) is unavailable; retry after the delay in "
            "Retry-After",
            request,
            headers={"Retry-After": str(RETRY_AFTER_S)},
        )

    for error in (RedisConnectionError, RedisTimeoutError):
        app.add_exception_handler(error, _redis_down)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        detail = str(exc.detail)
        if exc.status_code == 405:
            # Starlette names only the methods of the first route that matched the path; a
            # path served by several routes (PUT and DELETE of a watchlist item) has them all.
            allowed = allowed_methods(app, request)
            exc.headers = {**(exc.headers or {}), "Allow": allowed}
            detail = f"{request.method} is not served on this path; it serves {allowed}"
        elif exc.status_code == 404 and detail == NO_ROUTE:
            # No route (or static file) matched: say so, and where the routes are listed.
            detail = (
                f"nothing is served at {request.method} {request.url.path}; every route is listed "
                "in the OpenAPI document, /openapi.json (/docs)"
            )
        code = {
            404: "not_found",
            405: "method_not_allowed",
            413: "payload_too_large",
            415: "unsupported_media_type",
            503: "service_unavailable",
        }.get(exc.status_code, "http_error")
        return error_response(
            exc.status_code, code, detail, request, headers=dict(exc.headers or {})
        )


def allowed_methods(app: FastAPI, request: Request) -> str:
    """Every method some route serves on this request's path, as an Allow header value."""
    methods: set[str] = set()
    path = request.url.path
    for route in routes_of(app.routes):
        template = getattr(route, "path", None)
        if template and compile_path(template)[0].match(path):
            methods |= set(getattr(route, "methods", None) or ())
    if "GET" in methods:
        methods.add("HEAD")
    return ", ".join(sorted(methods))
