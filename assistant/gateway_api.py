"""The gateway's HTTP API as the MCP server calls it: one method per route it uses.

A client like any app's: the caller's own bearer token on every request, the answers read as
the API documents them, and every refusal turned into an `ApiError` carrying the API's reason.
It never reaches PostgreSQL or Redis; whatever the gateway does not answer, it does not know.
"""

from __future__ import annotations

import uuid
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import httpx

API = "/api/v1"
# The correlation id of the MCP request being served, when the gateway serves it: its API calls
# carry it, so the gateway's log lines of one tool call share the /mcp request's id.
correlation: ContextVar[str | None] = ContextVar("mcp_correlation", default=None)
# The ASGI scope key that marks a request as the MCP server's own check of the token of the /mcp
# request it serves (mounted on the gateway): that /mcp request was counted already, so the
# gateway's limiter does not count the check again (docs/MCP.md "Rate limits"). A scope key,
# not a header: only a request made in process (assistant/mount.py) can carry it.
UNCOUNTED = "mgw.uncounted"


@dataclass(frozen=True)
class Caller:
    """Whose request this is: the bearer token presented, and the user it names (its `sub`)."""

    token: str
    user_id: str


@dataclass
class ApiError(Exception):
    """The API refused (or could not answer): its status, error code, message and field errors."""

    status: int
    error: str
    message: str
    fields: list[dict[str, str]] = field(default_factory=list)
    request_id: str | None = None
    # The refusal's Retry-After (a 429, a 503), for an answer that passes it on.
    retry_after: str | None = None

    def __str__(self) -> str:
        where = "; ".join(f"{f.get('field')}: {f.get('reason')}" for f in self.fields)
        return f"{self.status} {self.error}: {self.message}" + (f" ({where})" if where else "")

    def reason(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "error": self.error,
            "message": self.message,
            "fields": self.fields,
            "request_id": self.request_id,
        }


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _fields(value: Any) -> list[dict[str, str]]:
    if not isinstance(value, list):
        return []
    return [
        {"field": str(item.get("field", "")), "reason": str(item.get("reason", ""))}
        for item in value
        if isinstance(item, dict)
    ]


def api_error(response: httpx.Response) -> ApiError:
    """The reason of a refusal, from the project's error body (`error`, `message`, `fields`)
    or an RFC 9457 problem (`type`, `title`, `detail`, with `error` and `fields` as extension
    members); a body of neither shape (a proxy's page) keeps its status and a short excerpt."""
    try:
        body = response.json()
    except ValueError:
        body = None
    request_id = response.headers.get("x-request-id")
    if not isinstance(body, dict):
        excerpt = response.text.strip()[:200] or response.reason_phrase
        return ApiError(
            response.status_code, f"http_{response.status_code}", excerpt, [], request_id
        )
    code = _text(body.get("error")) or _text(body.get("type")) or f"http_{response.status_code}"
    message = (
        _text(body.get("message"))
        or _text(body.get("detail"))
        or _text(body.get("title"))
        or response.reason_phrase
    )
    return ApiError(
        response.status_code,
        code,
        message,
        _fields(body.get("fields")),
        _text(body.get("request_id")) or request_id,
        response.headers.get("retry-after"),
    )


# The assistant as one of the user's devices: it sends commands and edits, never obeys them.
ASSISTANT = {
    "device_type": "web",
    "platform": "web",
    "app_version": "mcp",
    "device_name": "Assistant",
    "capabilities": {"remote_controllable": False},
}


def _device_unknown(exc: ApiError) -> bool:
    """The API refused the request's X-Device-ID: not a device registered to the user."""
    return exc.error == "unknown_device" and any(
        f.get("field") == "header.X-Device-ID" for f in exc.fields
    )


class GatewayApi:
    """The routes the tools use. `http` carries the gateway's base URL (over a socket, or an
    in-process ASGI transport when the server is mounted in the gateway itself)."""

    def __init__(self, http: httpx.AsyncClient, device_id: str) -> None:
        self.http = http
        # The assistant's own device id: the sender of its remote commands and the device its
        # watchlist edits are made on. The API refuses a device that is not one of the user's
        # registered devices, so the assistant registers it when refused (`_call`).
        self.device_id = device_id

    async def _call(
        self,
        method: str,
        path: str,
        caller: Caller | str,
        *,
        params: dict[str, Any] | None = None,
        json: Any = None,
        device: bool = False,
    ) -> Any:
        token = caller.token if isinstance(caller, Caller) else caller
        headers = {"Authorization": f"Bearer {token}"}
        if device:
            headers["X-Device-ID"] = self.device_id
        if request_id := correlation.get():
            headers["X-Request-ID"] = request_id
        query = {k: v for k, v in (params or {}).items() if v is not None and v != []}
        try:
            return await self._send(method, path, query, json, headers)
        except ApiError as exc:
            if not (device and _device_unknown(exc)):
                raise
        # The assistant's device is not registered to this user (yet, or any more): register
        # it (the gateway knows it as soon as the registration is accepted) and send again.
        if not isinstance(caller, Caller):  # device calls always name their user
            raise TypeError("a device call needs the Caller, not a bare token")
        await self._call("PUT", self._user(caller, self._device_path()), caller, json=ASSISTANT)
        return await self._send(method, path, query, json, headers)

    def _device_path(self) -> str:
        return f"/devices/{quote(self.device_id, safe='')}"

    async def _send(
        self,
        method: str,
        path: str,
        query: dict[str, Any],
        json: Any,
        headers: dict[str, str],
    ) -> Any:
        try:
            response = await self.http.request(
                method, path, params=query, json=json, headers=headers
            )
        except httpx.HTTPError as exc:
            # The gateway itself is out of reach: said as a 503 so every error has one shape.
            raise ApiError(503, "gateway_unreachable", f"{type(exc).__name__}: {exc}") from None
        if response.status_code >= 400:
            raise api_error(response)
        return response.json()

    def _user(self, caller: Caller, path: str = "") -> str:
        # Ids are path segments: a `/` or `%` in one must not turn into another path.
        return f"{API}/users/{quote(caller.user_id, safe='')}{path}"

    async def whoami(self, token: str) -> dict[str, Any]:
        return await self._call("GET", f"{API}/auth/whoami", token)  # type: ignore[no-any-return]

    async def search(self, caller: Caller, params: dict[str, Any]) -> dict[str, Any]:
        return await self._call("GET", f"{API}/search", caller, params=params)  # type: ignore[no-any-return]

    async def content(self, caller: Caller, content_id: uuid.UUID) -> dict[str, Any]:
        return await self._call("GET", f"{API}/content/{content_id}", caller)  # type: ignore[no-any-return]

    async def recommendations(self, caller: Caller, params: dict[str, Any]) -> dict[str, Any]:
        path = f"{API}/recommendations"
        return await self._call("GET", path, caller, params=params)  # type: ignore[no-any-return]

    async def watchlist(self, caller: Caller) -> dict[str, Any]:
        return await self._call("GET", self._user(caller, "/watchlist"), caller)  # type: ignore[no-any-return]

    async def watchlist_edit(
        self, caller: Caller, content_id: uuid.UUID, add: bool
    ) -> dict[str, Any]:
        path = self._user(caller, f"/watchlist/{content_id}")
        method = "PUT" if add else "DELETE"
        return await self._call(method, path, caller, device=True)  # type: ignore[no-any-return]

    async def progress(self, caller: Caller, limit: int) -> dict[str, Any]:
        path = self._user(caller, "/progress")
        return await self._call("GET", path, caller, params={"limit": limit})  # type: ignore[no-any-return]

    async def progress_of(self, caller: Caller, content_id: uuid.UUID) -> dict[str, Any]:
        path = self._user(caller, f"/progress/{content_id}")
        return await self._call("GET", path, caller)  # type: ignore[no-any-return]

    async def devices(self, caller: Caller) -> dict[str, Any]:
        return await self._call("GET", self._user(caller, "/devices"), caller)  # type: ignore[no-any-return]

    async def command(
        self, caller: Caller, device_id: str, command: dict[str, Any]
    ) -> dict[str, Any]:
        path = self._user(caller, f"/devices/{quote(device_id, safe='')}/commands")
        body = {"command": command}
        return await self._call("POST", path, caller, json=body, device=True)  # type: ignore[no-any-return]
