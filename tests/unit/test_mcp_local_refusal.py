"""A refusal the MCP server makes itself (send_command `seek` without a position, refused before
the API is asked) carries a request id like every refusal of the API does: it was null, so the
one error a user could report named no request. Served by `mgw mcp` (no /mcp request, hence no
correlation id), the id is one of its own; mounted on the gateway, it is the /mcp request's
(tests/edge/test_mcp_mounted.py)."""

from __future__ import annotations

import re

import httpx
from mcp import Client

from assistant.gateway_api import Caller, GatewayApi
from assistant.server import build_server


async def test_a_seek_without_a_position_is_refused_with_a_request_id() -> None:
    async def caller() -> Caller:
        return Caller("a.b.c", "u-1")

    # Never reached: the refusal is made before any API call (a call would fail to connect).
    async with httpx.AsyncClient(base_url="http://127.0.0.1:9") as http:
        server = build_server(GatewayApi(http, "assistant"), caller)
        async with Client(server) as client:
            ids = []
            for _ in range(2):
                answer = await client.call_tool(
                    "send_command", {"device_id": "tv-1", "action": "seek"}
                )
                assert answer.is_error and answer.structured_content is not None
                reason = answer.structured_content
                assert (reason["status"], reason["error"]) == (422, "validation_failed")
                assert [f["field"] for f in reason["fields"]] == ["position_seconds"]
                ids.append(reason["request_id"])
    assert all(isinstance(i, str) and re.fullmatch(r"[0-9a-f]{32}", i) for i in ids), ids
    assert ids[0] != ids[1]
