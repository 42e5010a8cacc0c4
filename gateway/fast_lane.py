"""The fast lane: the hottest routes served without FastAPI's router and dependency solving.

Every client write passes here, and FastAPI's per-request machinery (route matching over every
route, dependency resolution, its exception middleware) cost as much as the work itself. A fast
route is an ordinary FastAPI endpoint that takes only the `Request` and does its own
authentication and body parsing (gateway/json_body.py, gateway/auth/dependencies.py), so the
same function serves both lanes: this middleware calls it directly when the method and path
match, and FastAPI calls it otherwise (GATEWAY_FAST_LANE=false, or a route not listed here).

It is the innermost middleware: correlation id, body limit, metrics, response cache and rate
limit run as for any route. Exceptions go to the app's own handlers (the table FastAPI's
ExceptionMiddleware uses), so errors have the same shape and headers on both lanes.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from fastapi import FastAPI, Request, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from gateway.middleware.http_metrics import ROUTE_TEMPLATE_KEY

try:
    # FastAPI 0.16x keeps included routers nested; this is how its OpenAPI generator walks them.
    from fastapi.routing import iter_route_contexts as routes_of
except ImportError:  # earlier versions copy every included route into app.routes

    def routes_of(routes: Any) -> Any:  # type: ignore[misc]
        return iter(routes)


Endpoint = Callable[[Request], Awaitable[Response]]


def fast_routes(app: FastAPI) -> dict[tuple[str, str], Endpoint]:
    """(method, path) -> endpoint of every route marked fast (openapi_extra x-fast-lane)."""
    out: dict[tuple[str, str], Endpoint] = {}
    for route in routes_of(app.routes):
        extra: Mapping[str, Any] = getattr(route, "openapi_extra", None) or {}
        if not extra.get("x-fast-lane"):
            continue
        path: str = route.path  # type: ignore[attr-defined]
        if "{" in path:
            raise ValueError(f"fast routes take no path parameters: {path}")
        for method in route.methods:  # type: ignore[attr-defined]
            out[(method, path)] = route.endpoint  # type: ignore[attr-defined]
    return out


class FastLaneMiddleware:
    def __init__(self, app: ASGIApp, fastapi_app: FastAPI) -> None:
        self.app = app
        self._fastapi = fastapi_app
        self._routes: dict[tuple[str, str], Endpoint] | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self._routes is None:
            # Read once, after every router was included.
            self._routes = fast_routes(self._fastapi)
        path: str = scope["path"]
        endpoint = self._routes.get((scope["method"], path))
        if endpoint is None:
            await self.app(scope, receive, send)
            return
        scope["app"] = self._fastapi
        scope[ROUTE_TEMPLATE_KEY] = path
        request = Request(scope, receive)
        try:
            response = await endpoint(request)
        except Exception as exc:
            handler = self._handler_for(exc)
            if handler is None:
                raise
            response = await handler(request, exc)
        await response(scope, receive, send)

    def _handler_for(self, exc: Exception) -> Callable[..., Awaitable[Response]] | None:
        handlers = self._fastapi.exception_handlers
        for cls in type(exc).__mro__:
            if cls in handlers:
                return handlers[cls]  # type: ignore[return-value]
        return None
