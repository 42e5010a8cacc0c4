"""`mgw mcp`: the MCP server on stdin/stdout, for desktop assistants that start it themselves.

The user's token comes from the environment (MCP_TOKEN), the gateway's address from
MCP_GATEWAY_URL, else the running `mgw up` stack's (MGW_GATEWAY_URL), else 127.0.0.1:8080.
Stdout carries the protocol alone: logs go to stderr.
"""

from __future__ import annotations

import os

import httpx

from assistant.gateway_api import Caller, GatewayApi
from assistant.server import build_server
from core.config import Settings
from core.stack_file import GATEWAY_URL_VARIABLE

DEFAULT_GATEWAY = "http://127.0.0.1:8080"


def gateway_url(settings: Settings) -> str:
    return settings.mcp.gateway_url or os.environ.get(GATEWAY_URL_VARIABLE) or DEFAULT_GATEWAY


class TokenCaller:
    """The one user of this process: the token's subject, asked of the gateway once. Not at
    start: a token the gateway refuses is then each tool's answer (401 with the reason), which
    the assistant shows, rather than a server that dies before it can say why."""

    def __init__(self, api: GatewayApi, token: str) -> None:
        self.api, self.token = api, token
        self.known: Caller | None = None

    async def __call__(self) -> Caller:
        if self.known is None:
            me = await self.api.whoami(self.token)
            self.known = Caller(self.token, me["subject"])
        return self.known


async def run_stdio(settings: Settings, token: str) -> None:
    async with httpx.AsyncClient(base_url=gateway_url(settings), timeout=30) as http:
        api = GatewayApi(http, settings.mcp.device_id)
        await build_server(api, TokenCaller(api, token)).run_stdio_async()
