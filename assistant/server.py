"""The MCP server: tools, resources and a prompt over the gateway's HTTP API.

Every tool calls the API with the caller's own token, so the scopes are the routes' own: a
token without `devices:command` gets the API's 403 from `send_command`. A refusal is answered
as MCP's tool execution error (`isError: true`, which the model reads and can act on) with the
API's reason as its structured content and in its text; arguments that do not fit a tool's
input schema are refused by the SDK before the API is called. Nothing else escapes a tool: a
failure of our own is "Error executing tool X", its trace stays in the server's log.
"""

from __future__ import annotations

import functools
import importlib.metadata
import json
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Annotated, ParamSpec, TypeVar

from mcp.server.mcpserver import MCPServer
from mcp.shared.exceptions import MCPError
from mcp.types import INTERNAL_ERROR, INVALID_PARAMS, CallToolResult, TextContent
from pydantic import Field

from assistant import models
from assistant.gateway_api import ApiError, Caller, GatewayApi, correlation
from core.observability.correlation import new_id

# The scopes the tools use, each as its route checks it (docs/AUTH.md).
SCOPES = (
    "watchlist:read",
    "watchlist:write",
    "progress:read",
    "devices:read",
    "devices:command",
    # The assistant registers itself as one of the user's devices before it first acts as one
    # (the API refuses a device that is not registered: 403 unknown_device).
    "devices:write",
    "recommendations:read",
)
# MCP's code for a resource that does not exist (the specification's "Resource not found").
RESOURCE_NOT_FOUND = -32002
Region = Annotated[
    str | None,
    Field(pattern=r"^[A-Za-z]{2}$", description="ISO 3166-1 alpha-2 country code, e.g. US"),
]
ContentId = Annotated[uuid.UUID, Field(description="the title's content id (from a search)")]
DeviceId = Annotated[
    str, Field(pattern=r"^[A-Za-z0-9._:-]{1,128}$", description="a device id from `devices`")
]
Callers = Callable[[], Awaitable[Caller]]

P = ParamSpec("P")
R = TypeVar("R")


def tool_error(exc: ApiError) -> CallToolResult:
    """The API's reason as a tool execution error the model can read (and a client can parse)."""
    reason = exc.reason()
    text = f"The Media Gateway API refused: {exc}\n{json.dumps(reason)}"
    return CallToolResult(
        content=[TextContent(type="text", text=text)], structured_content=reason, is_error=True
    )


def api_tool(fn: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
    """A tool whose API refusals become tool errors; its signature (the schemas) stays fn's."""

    @functools.wraps(fn)
    async def run(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return await fn(*args, **kwargs)
        except ApiError as exc:
            return tool_error(exc)  # type: ignore[return-value]

    return run


def resource_error(exc: ApiError) -> MCPError:
    if exc.status == 404:
        code = RESOURCE_NOT_FOUND
    elif exc.status < 500:
        code = INVALID_PARAMS
    else:
        code = INTERNAL_ERROR
    return MCPError(code=code, message=str(exc), data=exc.reason())


def _version() -> str:
    try:
        return importlib.metadata.version("media-gateway")
    except importlib.metadata.PackageNotFoundError:  # run from a checkout without installing
        return "0"


def build_server(api: GatewayApi, caller: Callers) -> MCPServer:
    """The server; `caller` names whose request is being served (the bearer token of the HTTP
    request, or the token `mgw mcp` was started with)."""
    server = MCPServer(
        "media-gateway",
        title="Media Gateway",
        version=_version(),
        instructions=(
            "A streaming guide: find titles and where to watch them, recommendations, the "
            "user's watchlist and progress, and their devices, which can be told to play. "
            "Content ids come from search_titles or recommendations; device ids from devices."
        ),
    )
    add_tools(server, api, caller)
    add_resources(server, api, caller)
    add_prompt(server)
    return server


def add_tools(server: MCPServer, api: GatewayApi, caller: Callers) -> None:
    @server.tool(description="Search the catalog in plain words ('crime movies like Heat').")
    @api_tool
    async def search_titles(
        query: Annotated[str, Field(min_length=1, max_length=500)],
        region: Region = None,
        platforms: Annotated[
            list[str] | None, Field(description="netflix, prime_video, Disney+ ...")
        ] = None,
        genres: list[str] | None = None,
        year_from: int | None = None,
        year_to: int | None = None,
        page_size: Annotated[int, Field(ge=1, le=50)] = 10,
    ) -> models.SearchResults:
        params = {
            "q": query,
            "region": region,
            "platforms": ",".join(platforms or []) or None,
            "genres": ",".join(genres or []) or None,
            "year_from": year_from,
            "year_to": year_to,
            "page_size": page_size,
        }
        return models.search_results(await api.search(await caller(), params))

    @server.tool(description="A title's details and where to watch it now (in a region).")
    @api_tool
    async def title_details(content_id: ContentId, region: Region = None) -> models.TitleDetails:
        body = await api.content(await caller(), content_id)
        return models.title_details(body, region, datetime.now(UTC))

    @server.tool(description="Personalized picks for a device and a mood, best first.")
    @api_tool
    async def recommendations(
        device: models.DeviceKind | None = None,
        mood: Annotated[str | None, Field(max_length=64, description="happy, scared...")] = None,
        region: Region = None,
        # The API answers at most 20 (`limit` of GET /api/v1/recommendations).
        limit: Annotated[int, Field(ge=1, le=20)] = 10,
    ) -> models.Recommendations:
        params = {"device": device, "mood": mood, "region": region, "limit": limit}
        return models.recommendations(await api.recommendations(await caller(), params))

    @server.tool(description="The user's watchlist, most recently added first.")
    @api_tool
    async def watchlist() -> models.Watchlist:
        return models.watchlist(await api.watchlist(await caller()))

    async def edit_watchlist(content_id: uuid.UUID, add: bool) -> models.Accepted:
        answer = await api.watchlist_edit(await caller(), content_id, add)
        return models.Accepted(content_id=content_id, event_id=answer["event_id"], in_watchlist=add)

    @server.tool(
        description=(
            "Add a title to the user's watchlist; an id the catalog does not have is refused "
            "(not_found): find the title with search_titles first."
        )
    )
    @api_tool
    async def watchlist_add(content_id: ContentId) -> models.Accepted:
        return await edit_watchlist(content_id, add=True)

    @server.tool(description="Take a title off the user's watchlist.")
    @api_tool
    async def watchlist_remove(content_id: ContentId) -> models.Accepted:
        return await edit_watchlist(content_id, add=False)

    @server.tool(description="Titles the user is part way through (one, given its content id).")
    @api_tool
    async def progress(
        content_id: ContentId | None = None, limit: Annotated[int, Field(ge=1, le=200)] = 20
    ) -> models.Progress:
        who = await caller()
        if content_id is None:
            return models.progress((await api.progress(who, limit))["items"])
        try:
            return models.progress([await api.progress_of(who, content_id)])
        except ApiError as exc:
            # The API's 404 here means "not started or already finished": an answer, not a fault.
            if exc.status == 404:
                return models.Progress(items=[])
            raise

    @server.tool(description="The user's devices, whether each is online and what it plays.")
    @api_tool
    async def devices() -> models.Devices:
        return models.devices(await api.devices(await caller()))

    @server.tool(
        description=(
            "Tell one of the user's devices to play, pause, seek (position_seconds) or load a "
            "title (content_id, optionally from position_seconds)."
        )
    )
    @api_tool
    async def send_command(
        device_id: DeviceId,
        action: models.Action,
        position_seconds: Annotated[float | None, Field(ge=0)] = None,
        content_id: ContentId | None = None,
    ) -> models.CommandSent:
        command = models.remote_command(action, position_seconds, content_id)
        if isinstance(command, tuple):
            # Refused before the API is asked, in the API's own words for a missing field.
            name, why = command
            fields = [{"field": name, "reason": why}]
            # Under the /mcp request's id when the gateway serves it (as the API's refusals
            # are); from `mgw mcp`, no request reached the gateway: an id of its own, so the
            # refusal still carries one a log line or a report can name.
            request_id = correlation.get() or new_id()
            raise ApiError(
                422, "validation_failed", "1 field(s) failed validation", fields, request_id
            )
        answer = await api.command(await caller(), device_id, command)
        return models.CommandSent(
            command_id=answer["command_id"],
            device_id=device_id,
            command=command,
            expires_at=answer["expires_at"],
        )


def add_resources(server: MCPServer, api: GatewayApi, caller: Callers) -> None:
    @server.resource(
        "mgw://titles/{content_id}",
        name="title",
        description="A title's details with every offer open now, in every region.",
        mime_type="application/json",
    )
    async def title(content_id: str) -> str:
        try:
            cid = uuid.UUID(content_id)
        except ValueError:
            raise MCPError(INVALID_PARAMS, f"not a content id: {content_id!r}") from None
        try:
            body = await api.content(await caller(), cid)
        except ApiError as exc:
            raise resource_error(exc) from None
        return models.title_details(body, None, datetime.now(UTC)).model_dump_json()

    @server.resource(
        "mgw://watchlist",
        name="watchlist",
        description="The user's watchlist, most recently added first.",
        mime_type="application/json",
    )
    async def watchlist() -> str:
        try:
            body = await api.watchlist(await caller())
        except ApiError as exc:
            raise resource_error(exc) from None
        return models.watchlist(body).model_dump_json()


def add_prompt(server: MCPServer) -> None:
    @server.prompt(
        name="what_to_watch_tonight",
        title="What to watch tonight",
        description="Pick something for tonight and offer to start it on a device.",
    )
    def what_to_watch_tonight(mood: str = "", device: str = "tv", region: str = "US") -> str:
        feeling = f" I feel {mood}." if mood else ""
        return (
            f"What should I watch tonight?{feeling} I am in {region.upper()} and will watch on "
            f"my {device}.\n"
            f"1. Call `recommendations` with device={device!r}"
            + (f", mood={mood!r}" if mood else "")
            + f", region={region.upper()!r}, and look at my `watchlist` too.\n"
            f"2. For the best three, call `title_details` with region={region.upper()!r} and "
            "keep those I can watch there; say where (platform, subscription or price).\n"
            "3. Suggest them in a sentence each. When I choose one, find my device with "
            "`devices` (online and remote-controllable) and `send_command` action 'load' with "
            "its content_id, then 'play'."
        )
