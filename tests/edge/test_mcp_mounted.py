"""/mcp in a gateway as production runs it (rate limits and the response cache on), in this
process: the SDK's client over streamable HTTP, a tool call through the limiter, its API call
under the /mcp request's correlation id, and MCP_ENABLED=false leaving no route behind."""

from __future__ import annotations

import httpx
import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from core.config import Settings
from tests.auth.helpers import bearer, running_gateway, user_token


async def test_a_tool_call_passes_the_limiter_and_keeps_the_requests_correlation_id(
    settings: Settings, topics_created: None
) -> None:
    assert settings.rate_limit.enabled
    token = user_token(settings, scopes=["watchlist:read"])
    async with running_gateway(settings) as (app, _):
        headers = {**bearer(token), "X-Request-ID": "mcp-call-1"}
        transport = httpx2.ASGITransport(app=app)
        async with (
            httpx2.AsyncClient(transport=transport, headers=headers, timeout=30) as http,
            Client(streamable_http_client("http://gateway/mcp", http_client=http)) as client,
        ):
            # No agent runs here: a refusal by the route itself is the answer to look at.
            denied = await client.call_tool("devices", {})
        assert denied.is_error and denied.structured_content is not None
        # Through the limiter (no 429) to the route, which wants a scope the token lacks.
        assert denied.structured_content["status"] == 403
        assert denied.structured_content["message"] == "missing scope: devices:read"
        # The API call the tool made was logged, and answered, under the /mcp request's id.
        assert denied.structured_content["request_id"] == "mcp-call-1"


async def test_switched_off_the_gateway_serves_no_mcp(
    settings: Settings, topics_created: None
) -> None:
    off = settings.model_copy(update={"mcp": settings.mcp.model_copy(update={"enabled": False})})
    async with running_gateway(off) as (_, http):
        assert (await http.post("/mcp", json={})).status_code == 404
        assert (await http.get("/.well-known/oauth-protected-resource")).status_code == 404
    async with running_gateway(settings) as (_, http):
        assert (await http.get("/.well-known/oauth-protected-resource")).status_code == 200
        missing: httpx.Response = await http.post("/mcp", json={})
        assert missing.status_code == 401
