"""The fast lane: routes that parse their own requests, served without FastAPI's router and
dependency solving.

FastAPI's per-request machinery (matching over every route, dependency resolution, its
exception and exit-stack middlewares) cost as much as a route's own work: in a py-spy profile
of the read-model GET it took 244 samples against the endpoint's 230
(docs/GATEWAY_PERFORMANCE.md). A fast route is an ordinary FastAPI route, declared once in its
router; it is marked `x-fast-lane` in its `openapi_extra`, takes only the `Request` and parses
it from the same declarations its OpenAPI operation is written from (gateway/json_body.py,
gateway/path_parameters.py, gateway/auth/ownership.py). So the app's routes are the one route
table: the OpenAPI document and this lane are both read from it, and FastAPI serves the same
function when the lane is off (GATEWAY_FAST_LANE=false).

Path templates match as Starlette matches them (the route's own compiled pattern and
convertors). A fast route whose template could match a path some other route of the same
method also matches is refused at start: then the order of the routes would decide, and this
lane does not follow that order.

It is the innermost middleware: correlation id, body limit, metrics, response cache and rate
limit run as for any route. Exceptions go to the app's own handlers (the table FastAPI's
ExceptionMiddleware uses), so errors have the same shape and headers on both lanes.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI, Request, Response
from starlette.convertors import Convertor
from starlette.types import ASGIApp, Receive, Scope, Send

from gateway.middleware.http_metrics import ROUTE_TEMPLATE_KEY

try:
    # FastAPI 0.16x keeps included routers nested; this is how its OpenAPI generator walks them.
    from fastapi.routing import iter_route_contexts as routes_of
except ImportError:  # earlier versions copy every included route into app.routes

    def routes_of(routes: Any) -> Any:  # type: ignore[misc]
        return iter(routes)


Endpoint = Callable[[Request], Awaitable[Response]]
MARKER = "x-fast-lane"
_PARAMETER = re.compile(r"{([^}:]+)(?::([^}]+))?}")


@dataclass(frozen=True)
class FastRoute:
    method: str
    template: str
    pattern: re.Pattern[str]
    convertors: Mapping[str, Convertor[Any]]
    endpoint: Endpoint


class FastRoutes:
    """The fast routes: a literal path by a dict lookup (the hottest routes have one), a
    template by method and number of path segments, then by its pattern."""

    def __init__(self, routes: Iterable[FastRoute]) -> None:
        self._literal: dict[tuple[str, str], FastRoute] = {}
        self._by_shape: dict[tuple[str, int], list[FastRoute]] = {}
        for route in routes:
            if route.convertors:
                key = (route.method, route.template.count("/"))
                self._by_shape.setdefault(key, []).append(route)
            else:
                self._literal[(route.method, route.template)] = route

    def match(self, method: str, path: str) -> tuple[FastRoute, dict[str, Any]] | None:
        literal = self._literal.get((method, path))
        if literal is not None:
            return literal, {}
        for route in self._by_shape.get((method, path.count("/")), ()):
            found = route.pattern.match(path)
            if found is not None:
                params = {k: route.convertors[k].convert(v) for k, v in found.groupdict().items()}
                return route, params
        return None


def fast_routes(app: FastAPI) -> FastRoutes:
    """Every route of `app` marked fast (openapi_extra x-fast-lane), checked unambiguous."""
    every = [r for r in routes_of(app.routes) if getattr(r, "path", None)]
    out: list[FastRoute] = []
    for route in every:
        extra: Mapping[str, Any] = getattr(route, "openapi_extra", None) or {}
        if not extra.get(MARKER):
            continue
        template: str = route.path
        for other in every:
            shared = set(route.methods) & set(getattr(other, "methods", None) or ())
            if other is not route and shared and _may_overlap(template, other.path):
                raise ValueError(
                    f"fast route {template} may match the paths of {other.path} "
                    f"({', '.join(sorted(shared))}): make the templates distinct"
                )
        for method in route.methods:
            out.append(
                FastRoute(
                    method,
                    route.path_format,
                    route.path_regex,
                    route.param_convertors,
                    route.endpoint,
                )
            )
    return FastRoutes(out)


def _may_overlap(a: str, b: str) -> bool:
    """Whether some path matches both templates (segment by segment; a segment holding a
    parameter matches any segment, a {name:path} parameter any rest)."""
    left, right = a.strip("/").split("/"), b.strip("/").split("/")
    for x, y in zip(left, right, strict=False):
        if _is_rest(x) or _is_rest(y):
            return True
        if x != y and not _PARAMETER.search(x) and not _PARAMETER.search(y):
            return False
    return len(left) == len(right)


def _is_rest(segment: str) -> bool:
    found = _PARAMETER.fullmatch(segment)
    return found is not None and found.group(2) == "path"


class FastLaneMiddleware:
    def __init__(self, app: ASGIApp, fastapi_app: FastAPI) -> None:
        self.app = app
        self._fastapi = fastapi_app
        self._routes: FastRoutes | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self._routes is None:
            # Read once, after every router was included.
            self._routes = fast_routes(self._fastapi)
        found = self._routes.match(scope["method"], scope["path"])
        if found is None:
            await self.app(scope, receive, send)
            return
        route, params = found
        scope["app"] = self._fastapi
        scope["path_params"] = params
        scope[ROUTE_TEMPLATE_KEY] = route.template
        request = Request(scope, receive)
        try:
            response = await route.endpoint(request)
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
