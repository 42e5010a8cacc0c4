"""Answers every route can give, documented once for all of them in the OpenAPI document.

They come from the layers around the routes, not from the routes: the rate limiter (429, on
every route it does not exempt), authentication (a bad credential is refused with 401 even
where anonymous callers are welcome, and two credentials at once are 400), and the body limit
(413 on every route that takes a body). A route that documents one of them itself keeps its
own wording.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from gateway.middleware.rate_limit import is_exempt

RATE_LIMITED = {
    "description": "rate limit exceeded: X-RateLimit-Limit, -Remaining and -Reset, and "
    "Retry-After, say when to come back"
}
BAD_CREDENTIAL = {"description": "a credential was sent and is not valid (expired, revoked...)"}
TWO_CREDENTIALS = {"description": "Authorization and X-API-Key together: send one"}
TOO_LARGE = {"description": "the body is larger than the gateway accepts"}
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
        return document

    app.openapi = openapi  # type: ignore[method-assign]


def _add_common(path: str, operation: dict[str, Any]) -> None:
    responses = operation.setdefault("responses", {})
    if not is_exempt(path):
        responses.setdefault("429", RATE_LIMITED)
    if path.startswith("/api/"):
        responses.setdefault("401", BAD_CREDENTIAL)
        responses.setdefault("400", TWO_CREDENTIALS)
    if "requestBody" in operation:
        responses.setdefault("413", TOO_LARGE)
