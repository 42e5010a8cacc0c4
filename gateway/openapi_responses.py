"""Answers every route can give, documented once for all of them in the OpenAPI document.

They come from the layers around the routes, not from the routes: the rate limiter (429, on
every route it does not exempt), authentication (a bad credential is refused with 401 even
where anonymous callers are welcome, and two credentials at once are 400), and the body limit
(413 on every route that takes a body), the HTTP protocol layer (431 on every route,
gateway/edge_protocol.py) and the last resort (500, on every route). A route
that documents one of them itself keeps its own wording.

Every 4xx/5xx answer is a problem (gateway/problems.py): each error response gets
`application/problem+json` content with the `Problem` schema, in place of FastAPI's own
validation-error shape, which the gateway never sends. A route may document another body
beside it (the readiness report of /health/ready's 503).
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from gateway.idempotency import PARAMETER as IDEMPOTENCY_PARAMETER
from gateway.middleware.idempotency import NEVER_STORED, REPLAYED_HEADER, WRITE_METHODS
from gateway.middleware.rate_limit import is_exempt
from gateway.problems import MEDIA_TYPE, problem_schema

RATE_LIMITED = {
    "description": "`rate_limited`: rate limit exceeded: X-RateLimit-Limit, -Remaining and "
    "-Reset, and Retry-After, say when to come back; or `too_many_auth_failures`: this client "
    "address sent more failing credentials in a minute than RATE_LIMIT_AUTH_FAILURES_PER_MINUTE, "
    "and a request carrying a credential is refused unread until Retry-After"
}
BAD_CREDENTIAL = {"description": "a credential was sent and is not valid (expired, revoked...)"}
TWO_CREDENTIALS = {"description": "Authorization and X-API-Key together: send one"}
TOO_LARGE = {"description": "the body is larger than the gateway accepts"}
HEADERS_TOO_LARGE = {
    "description": "the request line and headers exceed GATEWAY_MAX_HEADER_BYTES; the "
    "connection is closed"
}
INTERNAL = {
    "description": "an unexpected failure: the body names no cause, the gateway's log has it "
    "under the request id"
}
IN_FLIGHT = {
    "description": "`idempotency_in_flight`: a request with this Idempotency-Key is still being "
    "processed; Retry-After says when to ask again"
}
KEY_REUSED = {
    "description": "`idempotency_key_reused`: the Idempotency-Key was used for another request"
}
REPLAYED = {
    "description": "`true` when this is the stored answer to an earlier request with the same "
    "Idempotency-Key (nothing ran again)",
    "schema": {"type": "string", "enum": ["true"]},
}
PROBLEM_CONTENT = {MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}}
# FastAPI's 422 shape: replaced by the Problem schema, then dropped from the components.
_FASTAPI_ERROR_SCHEMAS = ("HTTPValidationError", "ValidationError")
_METHODS = ("get", "put", "post", "delete", "patch")


def install_common_responses(app: FastAPI) -> None:
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        document = generate()
        for path, item in document.get("paths", {}).items():
            for method, operation in item.items():
                if method in _METHODS:
                    _add_common(path, operation)
                    if method.upper() in WRITE_METHODS and path not in NEVER_STORED:
                        _add_idempotency(operation)
                    _as_problems(operation)
        schemas = document.setdefault("components", {}).setdefault("schemas", {})
        for name in _FASTAPI_ERROR_SCHEMAS:
            schemas.pop(name, None)
        schemas["Problem"] = problem_schema()
        return document

    app.openapi = openapi  # type: ignore[method-assign]


def _add_common(path: str, operation: dict[str, Any]) -> None:
    responses = operation.setdefault("responses", {})
    if not is_exempt(path):
        responses.setdefault("429", dict(RATE_LIMITED))
    if path.startswith("/api/"):
        responses.setdefault("401", dict(BAD_CREDENTIAL))
        responses.setdefault("400", dict(TWO_CREDENTIALS))
    if "requestBody" in operation:
        responses.setdefault("413", dict(TOO_LARGE))
    responses.setdefault("431", dict(HEADERS_TOO_LARGE))
    responses.setdefault("500", dict(INTERNAL))


def _add_idempotency(operation: dict[str, Any]) -> None:
    """Every write honours Idempotency-Key (gateway/middleware/idempotency.py)."""
    parameters = operation.setdefault("parameters", [])
    if not any(p.get("name") == IDEMPOTENCY_PARAMETER["name"] for p in parameters):
        parameters.append(IDEMPOTENCY_PARAMETER)
    responses = operation["responses"]
    responses.setdefault("409", dict(IN_FLIGHT))
    if "422" in responses:
        reused = KEY_REUSED["description"]
        if reused not in responses["422"].get("description", ""):
            described = responses["422"].get("description", "")
            responses["422"] = {**responses["422"], "description": f"{described}; {reused}"}
    else:
        responses["422"] = dict(KEY_REUSED)
    for status, response in responses.items():
        if status[:1] in ("2", "3"):
            response["headers"] = {**response.get("headers", {}), REPLAYED_HEADER: REPLAYED}


def _as_problems(operation: dict[str, Any]) -> None:
    for status, response in operation.get("responses", {}).items():
        if status[:1] not in ("4", "5"):
            continue
        content = response.setdefault("content", {})
        schema = content.get("application/json", {}).get("schema")
        # Kept only when the route documents a body of its own there.
        if not schema or "HTTPValidationError" in str(schema.get("$ref", "")):
            content.pop("application/json", None)
        content.update(PROBLEM_CONTENT)
