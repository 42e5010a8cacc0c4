"""The MCP server through the SDK's own client, against one gateway and its workers (sync,
discovery, readmodel, sona) on a catalog of its own: over the SDK's in-memory transport, over
streamable HTTP at the gateway's /mcp, and over stdio (`mgw mcp`). Every tool is called; the
assistant's flow (search, pick, command the TV) ends on the TV's own event stream."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import httpx2
import pytest
from mcp import Client, StdioServerParameters
from mcp.client._memory import InMemoryTransport
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError
from mcp.types import CallToolResult

from assistant.gateway_api import GatewayApi
from assistant.server import SCOPES, build_server
from assistant.stdio import TokenCaller
from devtools.bench.sync_clients import SseDevice
from tests.auth.helpers import bearer, user_token
from tests.conftest import ROOT, Isolated, Spawner, isolated_env
from tests.discovery.catalog import BY_TITLE
from tests.e2e.test_search import seeded
from tests.helpers import run_cli, wait_for

pytestmark = pytest.mark.slow

TOOLS = {
    "search_titles",
    "title_details",
    "recommendations",
    "watchlist",
    "watchlist_add",
    "watchlist_remove",
    "progress",
    "devices",
    "send_command",
}
SHREK = BY_TITLE["Shrek"].canonical_id  # on Netflix in the US and GB
HEAT_LIKE = uuid.uuid4()  # no such title
WELL_KNOWN = "/.well-known/oauth-protected-resource"


@dataclass
class Stack:
    url: str
    isolated: Isolated

    def user(self, *scopes: str) -> tuple[str, str]:
        """A fresh user and a token of theirs with these scopes (by default every tool's, and
        what the test needs to play the TV's part: register it, report progress)."""
        user_id = f"mcp-{uuid.uuid4().hex[:8]}"
        scopes = scopes or (*SCOPES, "devices:write", "progress:write")
        token = user_token(self.isolated.settings, subject=user_id, scopes=scopes)
        return user_id, token

    @asynccontextmanager
    async def http_client(self, token: str | None) -> AsyncIterator[Client]:
        """The SDK's client over streamable HTTP at the gateway's /mcp."""
        headers = bearer(token) if token else {}
        async with (
            httpx2.AsyncClient(headers=headers, timeout=30) as http,
            Client(streamable_http_client(f"{self.url}/mcp", http_client=http)) as client,
        ):
            yield client

    async def register(self, user_id: str, token: str, device_id: str, kind: str) -> None:
        body = {
            "device_type": kind,
            "platform": "tizen" if kind == "tv" else "ios",
            "app_version": "1.0",
            "device_name": f"living room {kind}",
            "capabilities": {"remote_controllable": kind == "tv"},
        }
        async with httpx.AsyncClient(base_url=self.url) as http:
            path = f"/api/v1/users/{user_id}/devices/{device_id}"
            answer = await http.put(path, json=body, headers=bearer(token))
            assert answer.status_code == 202, answer.text


@pytest.fixture(scope="module")
async def stack(
    service_env: dict[str, str], topics_created: None, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Stack]:
    """One stack for the module: the gateway (rate limits off) and the workers the tools need."""
    directory = tmp_path_factory.mktemp("mcp")
    async with isolated_env(service_env, directory) as isolated:
        spawn = Spawner(service_env, directory)
        env = {**isolated.env, "RATE_LIMIT_ENABLED": "false"}
        # The gateway starts while the catalog is seeded; the worker opens the vector store
        # only after the seeding closed it (one process at a time).
        gateway = asyncio.create_task(asyncio.to_thread(spawn, "gateway", extra_env=env))
        try:
            await seeded(isolated)
            groups = ("sync", "discovery", "readmodel", "sona")
            await asyncio.to_thread(spawn, "worker", *groups, extra_env=isolated.env)
            yield Stack((await gateway).url, isolated)
        finally:
            await asyncio.gather(gateway, return_exceptions=True)
            # Both drain at once, not one after the other; any that hangs is killed after.
            for proc in spawn.procs:
                proc.popen.send_signal(signal.SIGINT)
            for proc in spawn.procs:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    await asyncio.to_thread(proc.popen.wait, 15)
            spawn.stop_all()


def ok(result: CallToolResult) -> dict[str, Any]:
    assert not result.is_error, result.content
    assert result.structured_content is not None
    return result.structured_content


def refused(result: CallToolResult) -> dict[str, Any]:
    assert result.is_error
    text = result.content[0].text  # type: ignore[union-attr]
    assert "Traceback" not in text and 'File "' not in text
    assert result.structured_content is not None
    return result.structured_content


async def until(client: Client, tool: str, match: Any, **arguments: Any) -> dict[str, Any]:
    """A tool's answer once it matches (the agents apply writes after the 202)."""

    async def answer() -> dict[str, Any] | None:
        body = ok(await client.call_tool(tool, arguments))
        return body if match(body) else None

    return await wait_for(answer, timeout=15, interval=0.2)  # type: ignore[no-any-return]


async def test_in_memory_the_tools_resources_and_prompt_are_listed_and_answer(
    stack: Stack,
) -> None:
    _, token = stack.user()
    async with httpx.AsyncClient(base_url=stack.url, timeout=30) as http:
        api = GatewayApi(http, "assistant")
        server = build_server(api, TokenCaller(api, token))
        async with Client(InMemoryTransport(server)) as client:
            tools = {t.name: t for t in (await client.list_tools()).tools}
            assert set(tools) == TOOLS
            for tool in tools.values():
                assert tool.description and tool.output_schema, tool.name
            # Typed inputs: the schema carries the API's forms (a UUID, a region's pattern).
            detail = tools["title_details"].input_schema["properties"]
            assert detail["content_id"]["format"] == "uuid"
            assert tools["send_command"].input_schema["properties"]["action"]["enum"] == [
                "play",
                "pause",
                "seek",
                "load",
            ]

            found = ok(await client.call_tool("search_titles", {"query": "ogre donkey princess"}))
            assert found["results"][0]["content_id"] == str(SHREK)

            resources = (await client.list_resources()).resources
            assert [str(r.uri) for r in resources] == ["mgw://watchlist"]
            templates = (await client.list_resource_templates()).resource_templates
            assert [t.uri_template for t in templates] == ["mgw://titles/{content_id}"]
            title = await client.read_resource(f"mgw://titles/{SHREK}")
            document = json.loads(title.contents[0].text)  # type: ignore[union-attr]
            offers = {
                (o["platform"], tuple(sorted(o["regions"]))) for o in document["where_to_watch"]
            }
            assert document["title"] == "Shrek" and offers == {("netflix", ("GB", "US"))}

            prompts = (await client.list_prompts()).prompts
            assert [p.name for p in prompts] == ["what_to_watch_tonight"]
            prompt = await client.get_prompt("what_to_watch_tonight", {"mood": "cheerful"})
            text = prompt.messages[0].content.text  # type: ignore[union-attr]
            assert "cheerful" in text and "recommendations" in text and "send_command" in text


async def test_over_http_every_tool_answers_for_the_tokens_user(stack: Stack) -> None:
    user_id, token = stack.user()
    await stack.register(user_id, token, "tv-1", "tv")
    async with stack.http_client(token) as client:
        assert {t.name for t in (await client.list_tools()).tools} == TOOLS

        gb = ok(await client.call_tool("title_details", {"content_id": str(SHREK), "region": "gb"}))
        assert gb["region"] == "GB" and [o["platform"] for o in gb["where_to_watch"]] == ["netflix"]
        japan = {"content_id": str(SHREK), "region": "JP"}
        assert ok(await client.call_tool("title_details", japan))["where_to_watch"] == []

        picks = ok(
            await client.call_tool(
                "recommendations", {"device": "tv", "mood": "happy", "region": "US", "limit": 5}
            )
        )
        assert picks["device"] == "tv" and picks["region"] == "US"
        assert 0 < len(picks["items"]) <= 5
        assert {p["title"] for p in picks["items"]} <= set(BY_TITLE)

        added = ok(await client.call_tool("watchlist_add", {"content_id": str(SHREK)}))
        assert added["in_watchlist"] and added["event_id"]
        listed = await until(client, "watchlist", lambda b: b["items"])
        assert listed["items"] == [{"content_id": str(SHREK), "device_id": "assistant"}]
        resource = await client.read_resource("mgw://watchlist")
        assert json.loads(resource.contents[0].text)["items"] == listed["items"]  # type: ignore[union-attr]
        ok(await client.call_tool("watchlist_remove", {"content_id": str(SHREK)}))
        await until(client, "watchlist", lambda b: b["items"] == [])

        # The assistant registered its own device when the API first refused it (its watchlist
        # edit): listed beside the TV, and never a target of commands.
        devices = await until(client, "devices", lambda b: len(b["devices"]) == 2)
        by_id = {d["device_id"]: d for d in devices["devices"]}
        assert set(by_id) == {"assistant", "tv-1"}
        assert not by_id["assistant"]["remote_controllable"]
        tv = by_id["tv-1"]
        assert (tv["device_id"], tv["is_online"], tv["remote_controllable"]) == ("tv-1", True, True)

        async with httpx.AsyncClient(base_url=stack.url) as http:
            put = await http.put(
                f"/api/v1/users/{user_id}/progress/{SHREK}",
                json={"position_seconds": 600, "duration_seconds": 5400, "state": "paused"},
                headers={**bearer(token), "X-Device-ID": "tv-1"},
            )
            assert put.status_code == 202, put.text
        under_way = await until(client, "progress", lambda b: b["items"])
        assert [(i["content_id"], i["position_seconds"]) for i in under_way["items"]] == [
            (str(SHREK), 600)
        ]
        one = ok(await client.call_tool("progress", {"content_id": str(SHREK)}))
        assert one["items"] == under_way["items"]
        none = ok(await client.call_tool("progress", {"content_id": str(HEAT_LIKE)}))
        assert none["items"] == []

        sent = ok(await client.call_tool("send_command", {"device_id": "tv-1", "action": "pause"}))
        assert sent["command"] == {"type": "pause"} and sent["device_id"] == "tv-1"


async def test_refusals_carry_the_apis_reason(stack: Stack) -> None:
    _, reader = stack.user("watchlist:read")
    async with stack.http_client(reader) as client:
        # The scope is the route's: the API's 403, word for word, as the tool's error.
        denied = refused(await client.call_tool("watchlist_add", {"content_id": str(SHREK)}))
        assert (denied["status"], denied["error"]) == (403, "forbidden")
        assert "watchlist:write" in denied["message"] and denied["request_id"]
        assert ok(await client.call_tool("watchlist", {}))["items"] == []

        missing = refused(await client.call_tool("title_details", {"content_id": str(HEAT_LIKE)}))
        assert (missing["status"], missing["error"]) == (404, "not_found")
        with pytest.raises(MCPError) as raised:
            await client.read_resource(f"mgw://titles/{HEAT_LIKE}")
        assert raised.value.error.code == -32002
        assert raised.value.error.data["status"] == 404  # type: ignore[index]

    _, writer = stack.user()
    async with stack.http_client(writer) as client:
        # An id the model made up: told so, and nothing lands on the watchlist.
        invented = refused(await client.call_tool("watchlist_add", {"content_id": str(HEAT_LIKE)}))
        assert (invented["status"], invented["error"]) == (404, "not_found")
        assert invented["fields"] == [
            {"field": "path.content_id", "reason": "no title with this id in the catalog"}
        ]
        assert ok(await client.call_tool("watchlist", {}))["items"] == []

    _, commander = stack.user("devices:command")
    async with stack.http_client(commander) as client:
        # A command to the assistant's own device id: the API's 422 names the field.
        itself = {"device_id": "assistant", "action": "play"}
        invalid = refused(await client.call_tool("send_command", itself))
        assert (invalid["status"], invalid["error"]) == (422, "validation_failed")
        assert [f["field"] for f in invalid["fields"]] == ["path.device_id"]
        # Arguments that make no command are refused before the API is asked.
        seek = refused(
            await client.call_tool("send_command", {"device_id": "tv", "action": "seek"})
        )
        assert seek["fields"] == [
            {"field": "position_seconds", "reason": seek["fields"][0]["reason"]}
        ]
        # Like every refusal, it names a request (it was null: refused before any was made).
        assert seek["request_id"]


async def test_without_a_token_mcp_points_at_its_metadata(stack: Stack) -> None:
    async with httpx.AsyncClient(base_url=stack.url) as http:
        refused_ = await http.post("/mcp", json={"jsonrpc": "2.0", "id": 1, "method": "ping"})
        assert refused_.status_code == 401
        challenge = refused_.headers["www-authenticate"]
        assert f'resource_metadata="{stack.url}/.well-known/oauth-protected-resource/mcp"' in (
            challenge
        )
        for path in (
            "/.well-known/oauth-protected-resource",
            "/.well-known/oauth-protected-resource/mcp",
        ):
            metadata = (await http.get(path)).json()
            assert metadata["resource"] == f"{stack.url}/mcp"
            # The session's AUTH_ISSUER is no URL: the gateway names itself.
            assert metadata["authorization_servers"] == [stack.url]
            assert set(metadata["scopes_supported"]) == set(SCOPES)
            assert metadata["bearer_methods_supported"] == ["header"]
        bad = await http.post("/mcp", json={}, headers=bearer("not-a-token"))
        assert bad.status_code == 401


async def test_the_assistant_puts_a_title_on_the_tv(stack: Stack) -> None:
    user_id, token = stack.user()
    await stack.register(user_id, token, "tv-1", "tv")
    tv = await SseDevice(stack.url, user_id, token, "tv-1", channels="devices").start()
    try:
        async with stack.http_client(token) as client:
            found = ok(await client.call_tool("search_titles", {"query": "ogre donkey princess"}))
            pick = found["results"][0]["content_id"]
            listed = await until(client, "devices", lambda b: b["devices"])
            [target] = [d for d in listed["devices"] if d["remote_controllable"] and d["is_online"]]
            load = {"device_id": target["device_id"], "action": "load", "content_id": pick}
            ok(await client.call_tool("send_command", load))
            play = {"device_id": target["device_id"], "action": "play"}
            ok(await client.call_tool("send_command", play))

        # The TV's own stream: the load, then the play, in the order the assistant sent them.
        is_command = lambda h: isinstance(h.body, dict) and h.body.get("kind") == "command"  # noqa: E731
        first = await tv.inbox.wait_for(is_command, wait_s=15)
        second = await tv.inbox.wait_for(is_command, wait_s=15)
        assert [first.body["command"], second.body["command"]] == [
            {"type": "load_content", "content_id": pick, "start_position": 0},
            {"type": "play"},
        ]
        assert {first.body["source_device_id"], second.body["source_device_id"]} == {"assistant"}
    finally:
        await tv.close()


async def test_mgw_mcp_serves_the_tools_on_stdio_with_the_token_of_its_environment(
    stack: Stack,
) -> None:
    user_id, token = stack.user()
    env = {
        **stack.isolated.env,
        "PATH": os.environ.get("PATH", ""),
        "MCP_GATEWAY_URL": stack.url,
        "MCP_DEVICE_ID": "desktop-assistant",
    }
    # Without a token it says which variable it needs (run beside the session below).
    tokenless = asyncio.create_task(run_cli("mcp", env=env, limit_s=30))
    command = StdioServerParameters(
        command=sys.executable,
        args=["-m", "cli.main", "mcp"],
        env={**env, "MCP_TOKEN": token},
        cwd=ROOT,
    )
    async with Client(command) as client:
        assert {t.name for t in (await client.list_tools()).tools} == TOOLS
        added = ok(await client.call_tool("watchlist_add", {"content_id": str(SHREK)}))
        assert added["in_watchlist"]
        listed = await until(client, "watchlist", lambda b: b["items"])
    code, _, err = await tokenless
    assert code == 2 and "MCP_TOKEN" in err
    # The token's user, from the assistant's device.
    assert listed["items"] == [{"content_id": str(SHREK), "device_id": "desktop-assistant"}]
    async with httpx.AsyncClient(base_url=stack.url) as http:
        theirs = await http.get(f"/api/v1/users/{user_id}/watchlist", headers=bearer(token))
        assert [i["content_id"] for i in theirs.json()["items"]] == [str(SHREK)]
