"""Device-side clients of the realtime channels, for tests and `mgw bench sync`: a Server-Sent
Events reader over a real socket (httpx) and a PubNub subscriber (the real SDK).

Both collect what arrives as `Heard` values (the channel, the message body, when it arrived)
on a queue and a list, so callers can wait for one message or inspect all of them.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import httpx
import orjson
from pubnub.callbacks import SubscribeCallback
from pubnub.enums import PNStatusCategory
from pubnub.pnconfiguration import PNConfiguration
from pubnub.pubnub_asyncio import PubNubAsyncio
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.typing import Subprotocol


@dataclass(frozen=True)
class Heard:
    channel: str  # the SSE event type: a channel name, or `ready` / `resync`
    body: Any
    event_id: str | None
    at: float  # time.perf_counter() on arrival


@dataclass
class Inbox:
    heard: list[Heard] = field(default_factory=list)
    queue: asyncio.Queue[Heard] = field(default_factory=asyncio.Queue)

    def put(self, item: Heard) -> None:
        self.heard.append(item)
        self.queue.put_nowait(item)

    async def wait_for(self, match: Callable[[Heard], bool], wait_s: float = 10.0) -> Heard:
        """The first message from now on that matches (earlier ones are consumed)."""
        deadline = time.monotonic() + wait_s
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError("no matching realtime message arrived")
            item = await asyncio.wait_for(self.queue.get(), remaining)
            if match(item):
                return item

    def messages(self, kind: str | None = None) -> list[Any]:
        return [
            h.body
            for h in self.heard
            if h.channel not in ("ready", "resync")
            and isinstance(h.body, dict)
            and (kind is None or h.body.get("kind") == kind)
        ]


class SseDevice:
    """One device listening on its user's stream (GET /api/v1/users/{user}/stream)."""

    def __init__(
        self,
        base_url: str,
        user_id: str,
        token: str,
        device_id: str | None = None,
        channels: str | None = None,
        last_event_id: str | None = None,
    ) -> None:
        self.inbox = Inbox()
        self.status: int | None = None
        self.last_event_id = last_event_id
        self._url = f"{base_url}/api/v1/users/{user_id}/stream"
        self._headers = {"Authorization": f"Bearer {token}"}
        if device_id:
            self._headers["X-Device-ID"] = device_id
        if last_event_id:
            self._headers["Last-Event-ID"] = last_event_id
        self._params = {"channels": channels} if channels else {}
        self._client = httpx.AsyncClient(timeout=httpx.Timeout(10.0, read=None))
        self._task: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()

    async def start(self) -> SseDevice:
        """Connect; returns once the stream said `ready` (after any catch-up or `resync`), or
        the HTTP status was not 200 (see `status`)."""
        self._task = asyncio.create_task(self._read())
        await asyncio.wait_for(self._ready.wait(), 10.0)
        return self

    async def _read(self) -> None:
        try:
            async with self._client.stream(
                "GET", self._url, headers=self._headers, params=self._params
            ) as response:
                self.status = response.status_code
                if response.status_code != 200:
                    self._ready.set()
                    return
                fields: dict[str, str] = {}
                async for line in response.aiter_lines():
                    if line:
                        if not line.startswith(":"):
                            name, _, value = line.partition(":")
                            fields[name] = value.removeprefix(" ")
                        continue
                    if "event" in fields or "data" in fields:
                        self._dispatch(fields)
                    fields = {}
        finally:
            self._ready.set()

    def _dispatch(self, fields: dict[str, str]) -> None:
        kind = fields.get("event", "message")
        event_id = fields.get("id")
        if event_id is not None:
            self.last_event_id = event_id
        body = orjson.loads(fields["data"]) if fields.get("data") else None
        if kind == "ready":
            self._ready.set()
        self.inbox.put(Heard(kind, body, event_id, time.perf_counter()))

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, httpx.HTTPError):
                await self._task
        await self._client.aclose()


class SocketDevice:
    """One device on its WebSocket (GET /api/v1/users/{user}/devices/{device}/socket): what
    the socket delivers lands in `inbox` (messages by channel, `ready` / `resync` by name),
    the answers to its own frames (`accepted`, `error`) in `answers`."""

    def __init__(
        self,
        base_url: str,
        user_id: str,
        token: str | None,
        device_id: str,
        channels: str | None = None,
        last_event_id: str | None = None,
        ticket: str | None = None,
    ) -> None:
        """`token` goes in the `bearer.` subprotocol; None with a `ticket` (`?ticket=`)."""
        self.inbox = Inbox()
        self.answers = Inbox()
        self.refusal: Any = None
        self.status: int | None = None
        self.close_code: int | None = None
        self.close_reason: str = ""
        self.last_event_id = last_event_id
        params = (("channels", channels), ("last_event_id", last_event_id), ("ticket", ticket))
        query = {k: v for k, v in params if v}
        url = (
            base_url.replace("http", "ws", 1)
            + f"/api/v1/users/{user_id}/devices/{device_id}/socket"
        )
        self._url = url + (f"?{urlencode(query)}" if query else "")
        self._token = token
        self._ws: Any = None
        self._task: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()
        self.closed = asyncio.Event()

    async def start(self) -> SocketDevice:
        """Connect; returns once the socket said `ready`, or the handshake was refused (see
        `status`)."""
        try:
            self._ws = await connect(
                self._url,
                subprotocols=[Subprotocol("mgw.v1")]
                + ([Subprotocol(f"bearer.{self._token}")] if self._token else []),
                max_size=None,
                compression=None,
                open_timeout=10,
            )
        except InvalidStatus as exc:
            self.status = exc.response.status_code
            self.refusal = orjson.loads(exc.response.body) if exc.response.body else None
            self.closed.set()
            return self
        self.status = 101
        self._task = asyncio.create_task(self._read())
        await asyncio.wait_for(self._ready.wait(), 10.0)
        return self

    @property
    def subprotocol(self) -> str | None:
        return self._ws.subprotocol if self._ws is not None else None

    async def _read(self) -> None:
        try:
            async for raw in self._ws:
                frame = orjson.loads(raw)
                now = time.perf_counter()
                kind = frame["type"]
                if kind in ("accepted", "error"):
                    self.answers.put(Heard(kind, frame, frame.get("ref"), now))
                    continue
                event_id = frame.get("id")
                if event_id is not None:
                    self.last_event_id = event_id
                channel = frame["channel"] if kind == "message" else kind
                self.inbox.put(Heard(channel, frame.get("data"), event_id, now))
                if kind == "ready":
                    self._ready.set()
        except ConnectionClosed:
            pass
        finally:
            if self._ws is not None and self._ws.close_code is not None:
                self.close_code = self._ws.close_code
                self.close_reason = self._ws.close_reason or ""
            self._ready.set()
            self.closed.set()

    async def send(self, frame: dict[str, Any] | str | bytes) -> None:
        await self._ws.send(
            frame if isinstance(frame, (str, bytes)) else orjson.dumps(frame).decode()
        )

    async def command(self, target: str, command: dict[str, Any], ref: str) -> None:
        await self.send(
            {
                "type": "command",
                "ref": ref,
                "target_device_id": target,
                "body": {"command": command},
            }
        )

    async def wait_closed(self, wait_s: float = 10.0) -> int | None:
        await asyncio.wait_for(self.closed.wait(), wait_s)
        return self.close_code

    async def close(self) -> None:
        if self._ws is not None:
            with contextlib.suppress(Exception):
                await self._ws.close()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


class _Listener(SubscribeCallback):
    def __init__(self, inbox: Inbox) -> None:
        self.inbox = inbox
        # Access Manager refused a subscribe (403): its statuses, for tests to see.
        self.denied: list[Any] = []

    def status(self, pubnub: Any, status: Any) -> None:
        if status.category is PNStatusCategory.PNAccessDeniedCategory:
            self.denied.append(status)

    def presence(self, pubnub: Any, presence: Any) -> None:
        pass

    def message(self, pubnub: Any, message: Any) -> None:
        self.inbox.put(
            Heard(message.channel, message.message, message.timetoken, time.perf_counter())
        )


class PubNubDevice:
    """One device subscribed to channels through the `pubnub` SDK."""

    def __init__(
        self,
        origin: str,
        subscribe_key: str,
        device_id: str,
        *,
        ssl: bool = False,
        token: str | None = None,
    ):
        config = PNConfiguration()
        config.subscribe_key = subscribe_key
        config.user_id = device_id
        config.origin = origin
        config.ssl = ssl
        config.disable_config_locking = False
        self.inbox = Inbox()
        self.client = PubNubAsyncio(config)
        # Access Manager: the token of POST .../realtime/token, sent as `auth` with each request.
        if token is not None:
            self.client.set_token(token)
        self.listener = _Listener(self.inbox)
        self.client.add_listener(self.listener)

    def subscribe(self, *channels: str) -> None:
        self.client.subscribe().channels(list(channels)).execute()

    async def close(self) -> None:
        await self.client.stop()
