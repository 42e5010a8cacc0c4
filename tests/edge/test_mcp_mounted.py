"""/mcp in a gateway as production runs it (rate limits and the response cache on), in this
process: the SDK's client over streamable HTTP, a tool call through the limiter, its API call
under the /mcp request's correlation id, and MCP_ENABLED=false leaving no route behind."""

from __future__ import annotations

import uuid

import httpx
import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError

from core.config import Settings
from gateway.auth.principal import Tier
from gateway.middleware.rate_limit import TIER_LIMITS, counter_keys
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
            # Refused by the MCP server itself, before the API is asked: the same id.
            seek = await client.call_tool("send_command", {"device_id": "tv-1", "action": "seek"})
        assert denied.is_error and denied.structured_content is not None
        # Through the limiter (no 429) to the route, which wants a scope the token lacks.
        assert denied.structured_content["status"] == 403
        assert denied.structured_content["message"] == "missing scope: devices:read"
        # The API call the tool made was logged, and answered, under the /mcp request's id.
        assert denied.structured_content["request_id"] == "mcp-call-1"
        assert seek.is_error and seek.structured_content is not None
        assert seek.structured_content["status"] == 422
        assert seek.structured_content["request_id"] == "mcp-call-1"


async def test_a_tool_call_costs_its_mcp_request_and_its_api_calls_not_the_token_check(
    settings: Settings, topics_created: None
) -> None:
    """Each /mcp request makes the server check its token (GET /api/v1/auth/whoami, in
    process). That check counted against the user's limit as well: a tool call cost 3 hits,
    and a free-tier user (10 a second) got 3 tool calls a second. The check is the server's own
    call on a request counted already: a tool call costs the /mcp request and the API call."""
    subject = f"mcp-budget-{uuid.uuid4().hex[:8]}"
    token = user_token(settings, subject, scopes=["watchlist:read"], tier="free")
    prefix = settings.redis.key_prefix
    minute = counter_keys(prefix, f"user:{subject}", TIER_LIMITS[Tier.free])[1]
    posts: list[str] = []

    async def seen(request: httpx2.Request) -> None:
        if request.url.path == "/mcp":
            posts.append(request.method)

    async with running_gateway(settings) as (app, _):
        redis = app.state.redis
        transport = httpx2.ASGITransport(app=app)
        async with (
            httpx2.AsyncClient(
                transport=transport,
                headers=bearer(token),
                timeout=30,
                event_hooks={"request": [seen]},
            ) as http,
            Client(streamable_http_client("http://gateway/mcp", http_client=http)) as client,
        ):
            # The first call may fetch the tools' list (the client validates their output).
            await client.call_tool("devices", {})
            before, posts[:] = int(await redis.get(minute) or 0), []
            for _ in range(3):
                denied = await client.call_tool("devices", {})
                assert denied.is_error and denied.structured_content is not None
                assert denied.structured_content["status"] == 403  # the route's: not a 429
            spent = int(await redis.get(minute) or 0) - before
    # Each /mcp POST, and the one API call each tool call made; no check of the token.
    assert posts and spent == len(posts) + 3, (posts, spent)


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


async def test_a_rate_limited_mcp_request_tells_the_assistant_why_and_when_to_retry(
    settings: Settings, topics_created: None
) -> None:
    """The limiter refuses /mcp itself with a problem document; the SDK's client reads only a
    JSON-RPC error, so without one the assistant saw "Server returned an error response"."""
    token = user_token(settings, scopes=["watchlist:read"])
    async with running_gateway(settings) as (app, _):
        transport = httpx2.ASGITransport(app=app)
        async with (
            httpx2.AsyncClient(transport=transport, headers=bearer(token), timeout=30) as http,
            Client(streamable_http_client("http://gateway/mcp", http_client=http)) as client,
        ):
            # Spend the user's budget of the window on the API, as another app of theirs would.
            spent = [(await http.get("http://gateway/api/v1/auth/whoami")).status_code]
            while spent[-1] != 429:
                spent.append((await http.get("http://gateway/api/v1/auth/whoami")).status_code)
            with pytest.raises(MCPError) as refused:
                await client.call_tool("watchlist", {})
        error = refused.value.error
        assert "rate limit of the" in error.message
        assert "retry after" in error.message
        assert isinstance(error.data, dict)
        assert error.data["status"] == 429 and error.data["error"] == "rate_limited"
        assert error.data["request_id"]


async def test_a_refusal_on_mcp_is_a_jsonrpc_error_with_the_problems_headers(
    settings: Settings, topics_created: None
) -> None:
    # Free tier (10 a second, 200 a minute): the enterprise tier's 200 a second is out of reach
    # of a loaded machine, where the loop below sent 40 a second and never met a refusal.
    token = user_token(settings, scopes=["watchlist:read"], tier="free")
    async with running_gateway(settings) as (_, http):
        body = b'{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{}}'
        answers = []
        for _ in range(400):  # past the minute's 200 even at a few requests a second
            answers.append(
                await http.post(
                    "/mcp",
                    content=body,
                    headers={
                        **bearer(token),
                        "content-type": "application/json",
                        "accept": "application/json, text/event-stream",
                    },
                )
            )
            if answers[-1].status_code == 429:
                break
        refused = answers[-1]
        assert refused.status_code == 429
        assert refused.headers["content-type"] == "application/json"
        assert refused.headers["retry-after"]
        assert refused.headers["x-ratelimit-remaining"] == "0"
        answer = refused.json()
        assert answer["jsonrpc"] == "2.0" and answer["id"] is None
        assert answer["error"]["code"] == -32000
        assert answer["error"]["data"]["error"] == "rate_limited"
        # Answers that are not refusals are the SDK's own, untouched.
        assert answers[0].status_code == 200 and "result" in answers[0].json()


async def test_a_post_with_one_request_left_is_served_its_token_check_uncounted(
    settings: Settings, topics_created: None
) -> None:
    """/mcp checks the token with the API (whoami). That check counted against the user's
    limit, so a POST that passed the limiter with one request left had its check refused (a
    429, and before that a 401 invalid_token that told a client to drop a good token). The
    check is the server's own call on a request counted already: the POST is served."""
    token = user_token(settings, scopes=["watchlist:read"])
    body = b'{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{}}'
    mcp_headers = {
        **bearer(token),
        "content-type": "application/json",
        "accept": "application/json, text/event-stream",
    }
    async with running_gateway(settings) as (_, http):
        for _ in range(5):  # a window that rolls over mid-way leaves budget: try again
            remaining = "?"
            while remaining not in ("1", "0"):
                spent = await http.get("/api/v1/auth/whoami", headers=bearer(token))
                remaining = spent.headers["x-ratelimit-remaining"]
            if remaining == "0":
                continue
            answer = await http.post("/mcp", content=body, headers=mcp_headers)
            if answer.headers.get("x-ratelimit-remaining") == "0":
                break  # passed the limiter as the window's last request
        assert answer.headers["x-ratelimit-remaining"] == "0"
        assert answer.status_code == 200, answer.text
        assert "tools" in answer.json()["result"]
