"""Every unexpected exception becomes a 500 problem, logged with its traceback and request id.

Starlette's own last resort answers plain text; this sits just inside the correlation
middleware, so the request id is bound when the traceback is logged and is in the body, which
says nothing of the exception itself (its text may hold data that is not the caller's).
"""

from __future__ import annotations

from loguru import logger
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.problems import MEDIA_TYPE, problem_bytes

DETAIL = (
    "the gateway failed unexpectedly; the failure is logged under this request_id. Whether a "
    "write took effect is unknown: retry it with the same Idempotency-Key"
)


class ServerErrorMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception:
            request_id = (scope.get("state") or {}).get("request_id")
            logger.exception(
                "unhandled error in {} {} (request {})", scope["method"], scope["path"], request_id
            )
            if started:
                # Half an answer is out: only closing the connection tells the client.
                raise
            body = problem_bytes(500, "internal_error", DETAIL, scope["path"], None, request_id)
            await send(
                {
                    "type": "http.response.start",
                    "status": 500,
                    "headers": [
                        (b"content-type", MEDIA_TYPE.encode()),
                        (b"content-length", str(len(body)).encode()),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": body})
