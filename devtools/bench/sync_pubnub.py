"""A loopback server speaking PubNub's publish/subscribe HTTP protocol, for the real `pubnub`
SDK to talk to in tests and in `mgw bench sync` (never in production).

    async with LoopbackPubNub() as server:
        config.origin, config.ssl = server.origin, False
        ...
        server.published   # every message published: channel and payload

Publish: `GET /publish/{pub}/{sub}/0/{channel}/0/{url-encoded JSON}` or a POST with the JSON
body, answered `[1, "Sent", "<timetoken>"]`. Subscribe: `GET /v2/subscribe/{sub}/{channels}/0`
with `tt=0` answers the current timetoken at once (the handshake); with `tt=<t>` it long-polls
until messages newer than `t` exist on those channels. Timetokens are 17-digit, strictly
increasing. `fail_next(status, times)` makes the next publishes fail with that status.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from aiohttp import web

# How long a subscribe long-poll is held without news (PubNub holds ~280 s).
LONG_POLL_S = 30.0


@dataclass(frozen=True)
class Published:
    channel: str
    payload: Any
    timetoken: int
    publish_key: str
    subscribe_key: str


class LoopbackPubNub:
    def __init__(self) -> None:
        self.published: list[Published] = []
        self.subscribes = 0
        self._failures: list[int] = []
        self._last_tt = 0
        self._news = asyncio.Condition()
        self._runner: web.AppRunner | None = None
        self._closing = False
        self.port = 0

    @property
    def origin(self) -> str:
        return f"127.0.0.1:{self.port}"

    def fail_next(self, status: int, times: int = 1) -> None:
        self._failures.extend([status] * times)

    def messages(self, channel: str) -> list[Any]:
        return [p.payload for p in self.published if p.channel == channel]

    async def __aenter__(self) -> LoopbackPubNub:
        app = web.Application()
        app.router.add_get("/publish/{pub}/{sub}/0/{channel}/0/{payload:.*}", self._publish_get)
        app.router.add_post("/publish/{pub}/{sub}/0/{channel}/0", self._publish_post)
        app.router.add_get("/v2/subscribe/{sub}/{channels}/0", self._subscribe)
        app.router.add_get("/time/0", self._time)
        app.router.add_route("*", "/v2/presence/{rest:.*}", self._presence)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = self._runner.addresses[0][1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        # Release held long-polls, or the server's shutdown would wait for each to time out.
        async with self._news:
            self._closing = True
            self._news.notify_all()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def _timetoken(self) -> int:
        # 100-ns units since the epoch, like PubNub's; strictly increasing here.
        self._last_tt = max(time.time_ns() // 100, self._last_tt + 1)
        return self._last_tt

    async def _store(self, request: web.Request, payload: Any) -> web.Response:
        if self._failures:
            status = self._failures.pop(0)
            return web.json_response([0, "Loopback failure", str(self._timetoken())], status=status)
        info = request.match_info
        async with self._news:
            tt = self._timetoken()
            self.published.append(
                Published(unquote(info["channel"]), payload, tt, info["pub"], info["sub"])
            )
            self._news.notify_all()
        return web.json_response([1, "Sent", str(tt)])

    async def _publish_get(self, request: web.Request) -> web.Response:
        raw = request.match_info["payload"]
        return await self._store(request, json.loads(unquote(raw)))

    async def _publish_post(self, request: web.Request) -> web.Response:
        return await self._store(request, json.loads(await request.text()))

    def _since(self, channels: set[str], after: int) -> list[Published]:
        return [p for p in self.published if p.timetoken > after and p.channel in channels]

    async def _subscribe(self, request: web.Request) -> web.Response:
        self.subscribes += 1
        channels = {unquote(c) for c in request.match_info["channels"].split(",")}
        after = int(request.query.get("tt", "0") or 0)
        if after == 0:
            return web.json_response({"t": {"t": str(self._timetoken()), "r": 1}, "m": []})
        async with self._news:
            try:
                await asyncio.wait_for(
                    self._news.wait_for(
                        lambda: self._closing or bool(self._since(channels, after))
                    ),
                    LONG_POLL_S,
                )
            except TimeoutError:
                pass
            found = self._since(channels, after)
        last = max((p.timetoken for p in found), default=after)
        return web.json_response(
            {
                "t": {"t": str(last), "r": 1},
                "m": [
                    {
                        "a": "1",
                        "f": 0,
                        "p": {"t": str(p.timetoken), "r": 1},
                        "k": p.subscribe_key,
                        "c": p.channel,
                        "d": p.payload,
                    }
                    for p in found
                ],
            }
        )

    async def _time(self, request: web.Request) -> web.Response:
        return web.json_response([self._timetoken()])

    async def _presence(self, request: web.Request) -> web.Response:
        # Heartbeats and leaves: acknowledged, nothing kept.
        return web.json_response({"status": 200, "message": "OK", "service": "Presence"})
