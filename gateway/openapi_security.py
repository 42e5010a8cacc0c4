"""The OpenAPI document's security: the two schemes a caller may use (a bearer JWT, an
X-API-Key) in components.securitySchemes, and a `security` requirement on every operation, so
that /docs can "Authorize" once and try each route with the credential it takes.

An operation's requirement is, in this order:
- its own, when the route declares one in `openapi_extra` (the fast lane's routes, which
  authenticate in their body: gateway/routes/user_routes.py's `documented` gives every
  per-user route USER_TOKEN);
- ANY_CREDENTIAL when a FastAPI dependency of the route authenticates (`authenticate`);
- PUBLIC (`[]`) on the paths the rate limiter skips (health, problems): nothing reads a
  credential there;
- OPTIONAL otherwise: anonymous callers are served, and a credential, when sent, is verified
  (401 when bad) and sets the caller's rate-limit tier.

tests/auth/test_openapi_security.py holds each operation's requirement against what the
route does without a credential.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.routing import APIRoute

from gateway.auth.dependencies import API_KEY_HEADER, authenticate
from gateway.fast_lane import routes_of
from gateway.middleware.rate_limit import is_exempt

BEARER = "bearerAuth"
API_KEY = "apiKeyAuth"

SCHEMES: dict[str, dict[str, Any]] = {
    BEARER: {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": "a user's access token (HS256 or RS256; `mgw token dev` signs one)",
    },
    API_KEY: {
        "type": "apiKey",
        "in": "header",
        "name": API_KEY_HEADER,
        "description": "a machine client's API key (`mgw keys create`); also accepted as "
        "`Authorization: ApiKey <key>`",
    },
}

# A user's own token: the per-user routes (an API key acts for no user: 403).
USER_TOKEN: list[dict[str, list[str]]] = [{BEARER: []}]
API_KEY_ONLY: list[dict[str, list[str]]] = [{API_KEY: []}]
ANY_CREDENTIAL: list[dict[str, list[str]]] = [{BEARER: []}, {API_KEY: []}]
# `{}` first: no credential is acceptable too.
OPTIONAL: list[dict[str, list[str]]] = [{}, {BEARER: []}, {API_KEY: []}]
PUBLIC: list[dict[str, list[str]]] = []


def needs_credential(security: list[dict[str, list[str]]]) -> bool:
    """Whether an operation with this requirement refuses a caller without a credential."""
    return bool(security) and {} not in security


def install_security(app: FastAPI) -> None:
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        document = generate()
        components = document.setdefault("components", {})
        components["securitySchemes"] = SCHEMES
        paths = document.get("paths", {})
        # FastAPI 0.16x yields each route in the context of its router (the full path);
        # earlier versions, the route itself.
        for context in routes_of(app.routes):
            route = getattr(context, "original_route", context)
            if not isinstance(route, APIRoute) or not route.include_in_schema:
                continue
            for method in context.methods or ():
                operation = paths.get(context.path_format, {}).get(method.lower())
                if operation is not None and "security" not in operation:
                    operation["security"] = requirement_of(route, context.path_format)
        return document

    app.openapi = openapi  # type: ignore[method-assign]


def requirement_of(route: APIRoute, path: str) -> list[dict[str, list[str]]]:
    """The requirement of a route (served at `path`) that declares none of its own."""
    if _calls(route.dependant, authenticate):
        return ANY_CREDENTIAL
    if is_exempt(path):
        return PUBLIC
    return OPTIONAL


def _calls(dependant: Any, function: Any) -> bool:
    return any(d.call is function or _calls(d, function) for d in dependant.dependencies)
