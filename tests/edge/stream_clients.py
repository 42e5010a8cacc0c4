"""A gateway served over a real socket in this process (uvicorn), and an EventSource-shaped
client: a streaming GET that sends no header of its own and parses Server-Sent Events."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import httpx
import orjson
import uvicorn
from fastapi import FastAPI

from core.config import Settings
from core.embedded import free_port
from gateway.app import create_app


@asynccontextmanager
async def served_gateway(settings: Settings) -> AsyncIterator[tuple[FastAPI, str]]:
    """The gateway app behind uvicorn on a free loopback port; yields the app and its URL."""
    app = create_app(settings)
    port = free_port()
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        log_config=None,
        access_log=False,
        lifespan="on",
        timeout_graceful_shutdown=1,
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    try:
        for _ in range(200):
            if server.started:
                break
            if task.done():
                task.result()
            await asyncio.sleep(0.05)
        assert server.started, "uvicorn did not start"
        yield app, f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(task, 10)


@dataclass(frozen=True)
class Event:
    kind: str
    data: object
    event_id: str | None


class EventSourceLike:
    """What a browser's `new EventSource(url)` does: GET with `Accept: text/event-stream`
    and no other header (no Authorization: it cannot send one), then read events."""

    def __init__(self, url: str) -> None:
        self._client = httpx.AsyncClient(timeout=httpx.Timeout(10.0, read=None))
        self._url = url
        self._stack = contextlib.AsyncExitStack()
        self.response: httpx.Response | None = None
        self._lines: AsyncIterator[str] | None = None

    async def open(self) -> httpx.Response:
        await self._stack.enter_async_context(self._client)
        request = self._client.build_request("GET", self._url)
        # httpx adds its own defaults; a browser sends none of ours either.
        request.headers = httpx.Headers({"Accept": "text/event-stream", "Host": request.url.host})
        self.response = await self._client.send(request, stream=True)
        self._stack.push_async_callback(self.response.aclose)
        if self.response.status_code == 200:
            self._lines = self.response.aiter_lines()
        else:
            await self.response.aread()
        return self.response

    async def next_event(self, wait_s: float = 10.0) -> Event | None:
        """The next event (comments and `retry:` skipped); None when the stream ended."""
        assert self._lines is not None
        fields: dict[str, str] = {}
        while True:
            try:
                line = await asyncio.wait_for(anext(self._lines), wait_s)
            except StopAsyncIteration:
                return None
            if line:
                if not line.startswith(":"):
                    name, _, value = line.partition(":")
                    fields[name] = value.removeprefix(" ")
                continue
            if "event" in fields or "data" in fields:
                raw = fields.get("data", "")
                try:
                    data: object = orjson.loads(raw)
                except orjson.JSONDecodeError:
                    data = raw
                return Event(fields.get("event", "message"), data, fields.get("id"))
            fields = {}

    async def wait_event(self, kind: str, wait_s: float = 10.0) -> Event:
        while True:
            got = await self.next_event(wait_s)
            assert got is not None, f"the stream ended before a {kind!r} event"
            if got.kind == kind:
                return got

    async def close(self) -> None:
        await self._stack.aclose()
