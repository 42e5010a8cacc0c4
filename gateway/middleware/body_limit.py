"""413 for request bodies over GATEWAY_MAX_BODY_BYTES, before any of it is parsed; a client
gone before its body arrived is no failure of ours."""

from __future__ import annotations

from loguru import logger
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.problems import MEDIA_TYPE, problem_bytes


class BodyTooLarge(Exception):
    pass


class BodyLimitMiddleware:
    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._reject(scope, send)
            return
        seen = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise BodyTooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except BodyTooLarge:
            # A chunked body without Content-Length: we only learn its size while reading.
            if not started:
                await self._reject(scope, send)
        except ClientDisconnect:
            # The client hung up, or was cut off for stalling its body (408,
            # gateway/edge_protocol.py), while its body was read: there is nobody to answer.
            logger.info(
                "{} {}: the client left before its body arrived", scope["method"], scope["path"]
            )

    async def _reject(self, scope: Scope, send: Send) -> None:
        body = problem_bytes(
            413,
            "payload_too_large",
            f"request body exceeds {self.max_bytes} bytes; send smaller requests",
            scope["path"],
            request_id=(scope.get("state") or {}).get("request_id"),
        )
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", MEDIA_TYPE.encode()),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
