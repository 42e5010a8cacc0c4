"""Request id in, request id out, and one structured log line per request."""

from __future__ import annotations

import time

from loguru import logger
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from core.observability import correlation


class CorrelationMiddleware:
    """Binds X-Request-ID (or a fresh id) for the whole request and echoes it back.

    Pure ASGI rather than BaseHTTPMiddleware so the contextvar is visible to the endpoint.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        raw = dict(scope.get("headers") or []).get(correlation.HEADER.lower().encode())
        cid = correlation.accept(raw.decode("latin-1") if raw else None)
        scope.setdefault("state", {})["request_id"] = cid
        started = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = list(message.get("headers", []))
                headers.append((correlation.HEADER.lower().encode(), cid.encode()))
                message["headers"] = headers
            await send(message)

        token = correlation.set_current(cid)
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            logger.info(
                "{} {} -> {} in {:.1f} ms",
                scope["method"],
                scope["path"],
                status,
                (time.perf_counter() - started) * 1000,
            )
            correlation.reset(token)
