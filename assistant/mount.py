"""The MCP server on the gateway: `/mcp` (streamable HTTP) and its protected-resource metadata.

The tools call the gateway's API through an in-process ASGI transport to the very app that
serves /mcp, not over a socket to its own port: every request still passes the whole HTTP
stack (authentication, scopes, rate limits, validation, errors), but the server need not know
an address it can reach itself at (a bind to 0.0.0.0, a socket inherited from `mgw up`, a TLS
proxy in front), it costs no connection, and it cannot be turned away by the process's own
connection cap (gateway/edge_protocol.py). The transport buffers each answer, which is all the
tools read (none reads the event stream).

Stateless: every POST is a session of its own, so any of the gateway's processes can answer
any request (a session kept in one process's memory would be lost on the next request that
another process takes). Answers are plain JSON; the server sends the client nothing between
requests.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import orjson
from loguru import logger
from mcp.server.auth.middleware.auth_context import AuthContextMiddleware, get_access_token
from mcp.server.auth.middleware.bearer_auth import BearerAuthBackend, RequireAuthMiddleware
from mcp.server.auth.provider import AccessToken
from mcp.server.auth.routes import build_resource_metadata_url
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from mcp.server.transport_security import TransportSecuritySettings
from mcp.shared.auth import ProtectedResourceMetadata
from pydantic import AnyHttpUrl
from starlette.applications import Starlette
from starlette.middleware.authentication import AuthenticationMiddleware
from starlette.requests import HTTPConnection, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from assistant.gateway_api import (
    UNCOUNTED,
    ApiError,
    Caller,
    GatewayApi,
    api_error,
    correlation,
)
from assistant.server import SCOPES, build_server
from core.config import Settings

PATH = "/mcp"
WELL_KNOWN = "/.well-known/oauth-protected-resource"


class TokenNotChecked(Exception):
    """The gateway did not say whether a token is good: its refusal of the check."""

    def __init__(self, refusal: ApiError) -> None:
        super().__init__(str(refusal))
        self.refusal = refusal


class WhoAmIVerifier:
    """A bearer token is good when the gateway says so: `GET /api/v1/auth/whoami` with it. The
    gateway's own verification (signature, expiry, issuer, audience) is the only one."""

    def __init__(self, api: GatewayApi) -> None:
        self.api = api

    async def verify_token(self, token: str) -> AccessToken | None:
        try:
            me = await self.api.whoami(token)
        except ApiError as exc:
            if exc.status == 401:
                return None
            # Not a verdict on the token (the user's rate limit, the gateway busy): answered
            # as what it is, since a 401 would have the client drop a good token.
            logger.warning("mcp: the gateway could not check a token: {}", exc)
            raise TokenNotChecked(exc) from None
        if me.get("kind") != "user":
            return None  # the tools act for a user; API keys never do (docs/AUTH.md)
        return AccessToken(
            token=token, client_id=me["subject"], subject=me["subject"], scopes=me["scopes"]
        )


async def request_caller() -> Caller:
    """Whose MCP request is being served: the token the bearer middleware accepted."""
    access = get_access_token()
    if access is None or access.subject is None:
        # Unreachable behind RequireAuthMiddleware; said as the API would say it.
        raise ApiError(401, "unauthorized", "no bearer token on this MCP request")
    return Caller(access.token, access.subject)


def _origin(conn: HTTPConnection) -> str:
    return str(conn.base_url).rstrip("/")


class Metadata:
    """RFC 9728 protected-resource metadata of /mcp, naming who issues its tokens."""

    def __init__(self, settings: Settings) -> None:
        self.resource_url = settings.mcp.resource_url
        issuer = settings.auth.issuer
        self.servers = settings.mcp.authorization_servers or (
            [issuer] if issuer.startswith(("http://", "https://")) else []
        )

    def resource(self, conn: HTTPConnection) -> str:
        return self.resource_url or f"{_origin(conn)}{PATH}"

    def document(self, request: Request) -> ProtectedResourceMetadata:
        # Strings, for the model to read without adding a slash: an issuer is compared exactly.
        return ProtectedResourceMetadata.model_validate(
            {
                "resource": self.resource(request),
                "authorization_servers": self.servers or [_origin(request)],
                "scopes_supported": list(SCOPES),
                "resource_name": "Media Gateway MCP server",
            }
        )

    async def endpoint(self, request: Request) -> Response:
        body = self.document(request).model_dump(mode="json", exclude_none=True)
        return JSONResponse(body, headers={"Cache-Control": "public, max-age=3600"})


class McpEndpoint:
    """/mcp: the bearer token checked (401 naming the metadata), then the MCP transport. An
    ASGI app (not a function), so Starlette passes it every method: POST, GET and DELETE."""

    def __init__(self, transport: Any, metadata: Metadata, backend: BearerAuthBackend) -> None:
        self.transport, self.metadata, self.backend = transport, metadata, backend

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        resource = AnyHttpUrl(self.metadata.resource(HTTPConnection(scope)))
        guarded = RequireAuthMiddleware(self.transport, [], build_resource_metadata_url(resource))
        inner: Any = AuthenticationMiddleware(AuthContextMiddleware(guarded), backend=self.backend)
        # The id the gateway's correlation middleware gave this request (X-Request-ID).
        bound = correlation.set(scope.get("state", {}).get("request_id"))
        try:
            await inner(scope, receive, send)
        except TokenNotChecked as exc:
            await refusal_response(exc.refusal)(scope, receive, send)
        finally:
            correlation.reset(bound)


# JSON-RPC's range for errors a server defines: a refusal of the HTTP request, not of a method.
REFUSED = -32000


def jsonrpc_refusal(status: int, problem: bytes, request_id: str | None) -> bytes:
    """A problem document of the gateway's own layers as the JSON-RPC error of the request it
    refused: the message is the problem's detail, `data` the reason as the tools report one."""
    try:
        body = orjson.loads(problem)
    except orjson.JSONDecodeError:
        body = None
    response = httpx.Response(
        status,
        json=body if isinstance(body, dict) else None,
        headers={"x-request-id": request_id} if request_id else None,
    )
    return jsonrpc_error(api_error(response))


def jsonrpc_error(refusal: ApiError) -> bytes:
    # `id` null: the request was refused unread; the SDK's client puts its own request's id.
    error = {"code": REFUSED, "message": str(refusal), "data": refusal.reason()}
    return orjson.dumps({"jsonrpc": "2.0", "id": None, "error": error})


def refusal_response(refusal: ApiError) -> Response:
    """A refusal of the API as the JSON-RPC error answering the /mcp request, at its status."""
    headers = {"Retry-After": refusal.retry_after} if refusal.retry_after else None
    return Response(
        jsonrpc_error(refusal),
        status_code=refusal.status,
        headers=headers,
        media_type="application/json",
    )


class JsonRpcRefusals:
    """Before /mcp is reached, the gateway's own layers may refuse the request: the rate limit
    (429), the body limit (413), an expired token at the limiter (401), a 5xx. They answer a
    problem document, which the SDK's client does not read: an assistant sees "Server returned
    an error response" (-32603) and neither the reason nor when to retry. The SDK does read a
    JSON-RPC error at any status, so such an answer becomes one (status and headers kept,
    Retry-After included)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != PATH:
            await self.app(scope, receive, send)
            return
        held: Message | None = None
        chunks: list[bytes] = []

        async def rewrite(message: Message) -> None:
            nonlocal held
            if message["type"] == "http.response.start":
                headers = dict(message.get("headers", []))
                problem = headers.get(b"content-type", b"").startswith(b"application/problem+json")
                if message["status"] >= 400 and problem:
                    held = message
                    return
            if held is None or message["type"] != "http.response.body":
                await send(message)
                return
            chunks.append(message.get("body", b""))
            if message.get("more_body"):
                return
            headers = [
                (k, v)
                for k, v in held.get("headers", [])
                if k.lower() not in (b"content-type", b"content-length")
            ]
            request_id = dict(headers).get(b"x-request-id", b"").decode() or None
            body = jsonrpc_refusal(held["status"], b"".join(chunks), request_id)
            headers += [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ]
            await send({**held, "headers": headers})
            await send({"type": "http.response.body", "body": body})

        await self.app(scope, receive, rewrite)


class OwnChecks:
    """The app as the token check reaches it: every request marked UNCOUNTED. Only the check's
    client goes through here; the tools' API calls count as any app's would."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app({**scope, UNCOUNTED: True}, receive, send)


def _client(app: ASGIApp) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app, raise_app_exceptions=False),
        base_url="http://gateway.internal",
        timeout=30,
    )


def mount_mcp(app: Starlette, settings: Settings) -> None:
    """Serve /mcp and the metadata on `app`, and run the session manager in its lifespan."""
    http = _client(app)
    # The token check of each /mcp request: the server's own call, which the limiter does not
    # count (the /mcp request it checks was counted).
    checks = _client(OwnChecks(app))
    api = GatewayApi(http, settings.mcp.device_id)
    server = build_server(api, request_caller)
    # Builds the session manager (the Starlette app it returns is not used: /mcp is the
    # gateway's own route, behind its middleware).
    server.streamable_http_app(
        json_response=True,
        stateless_http=True,
        # A bearer token is required on every request, which a rebinding page cannot send; the
        # host check would refuse every name the gateway is published under.
        transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False),
    )
    manager = server.session_manager
    metadata = Metadata(settings)
    backend = BearerAuthBackend(WhoAmIVerifier(GatewayApi(checks, settings.mcp.device_id)))

    app.router.routes.append(
        Route(PATH, endpoint=McpEndpoint(manager.handle_request, metadata, backend))
    )
    for path in (WELL_KNOWN, f"{WELL_KNOWN}{PATH}"):
        app.router.routes.append(Route(path, metadata.endpoint, methods=["GET"]))
    # Outermost, so it sees every layer's refusal of /mcp (added after the gateway's own).
    app.add_middleware(JsonRpcRefusals)

    outer = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(target: Starlette) -> AsyncIterator[Any]:
        async with outer(target) as state:
            running = asyncio.create_task(serve_sessions(manager, stop := asyncio.Event()))
            try:
                yield state
            finally:
                stop.set()
                await running
                await http.aclose()
                await checks.aclose()

    app.router.lifespan_context = lifespan


async def serve_sessions(manager: StreamableHTTPSessionManager, stop: asyncio.Event) -> None:
    # In a task of its own: the manager's task group must be left in the task that entered it,
    # and a lifespan may be entered and left in two (a test harness's fixtures are).
    async with manager.run():
        await stop.wait()
