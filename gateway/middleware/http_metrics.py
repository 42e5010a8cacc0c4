"""http_requests_total, http_request_duration_seconds and requests in progress, by route template.

Labels carry the route template (`/api/v1/content/{content_id}`), never the raw path: one
series per route, not one per title. A request no route matches is `unmatched`.
"""

from __future__ import annotations

import time
from collections.abc import Iterable

from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from core.observability.metrics import (
    HTTP_REQUEST_SECONDS,
    HTTP_REQUESTS,
    HTTP_REQUESTS_IN_PROGRESS,
)

UNMATCHED = "unmatched"
# Set by middlewares that answer for a route without running it (the response cache).
ROUTE_TEMPLATE_KEY = "mgw.route_template"


def route_template(scope: Scope) -> str:
    """The template of the route that handled (or would have handled) this request."""
    route = scope.get("route")
    if route is not None:
        return _template_of(route)
    # Answered before the router ran: a cache hit names the route its entry was made by;
    # anything else (a refusal by a middleware) is matched against the routes here.
    if ROUTE_TEMPLATE_KEY in scope:
        return str(scope[ROUTE_TEMPLATE_KEY])
    found = _match(getattr(scope.get("app"), "routes", ()), scope)
    return _template_of(found) if found is not None else UNMATCHED


def _match(routes: Iterable[BaseRoute], scope: Scope) -> BaseRoute | None:
    for candidate in routes:
        # FastAPI keeps included routers as one route each; their own routes carry full paths.
        inner = getattr(candidate, "original_router", None)
        if inner is not None:
            found = _match(inner.routes, scope)
            if found is not None:
                return found
            continue
        match, _ = candidate.matches(scope)
        if match is Match.FULL:
            return candidate
    return None


def _template_of(route: BaseRoute) -> str:
    return str(getattr(route, "path_format", None) or getattr(route, "path", None) or UNMATCHED)


class HttpMetricsMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # what the client gets when the app raises before answering

        async def record_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        HTTP_REQUESTS_IN_PROGRESS.inc()
        try:
            await self.app(scope, receive, record_status)
        finally:
            HTTP_REQUESTS_IN_PROGRESS.dec()
            route = route_template(scope)
            method = scope["method"]
            HTTP_REQUESTS.labels(method, route, str(status)).inc()
            HTTP_REQUEST_SECONDS.labels(method, route).observe(time.perf_counter() - started)
