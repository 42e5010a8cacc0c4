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

Access Manager, when made with keys and a secret key (`LoopbackPubNub(PamKeys(...))`), as
PubNub enforces it (devtools/bench/pubnub_pam.py): grants (`POST /v3/pam/{sub}/grant`) and
revocations (`DELETE /v3/pam/{sub}/grant/{token}`) must be signed with the secret key; a
publish must be signed or carry a token granting write on its channel; a subscribe (and a
presence heartbeat or leave) must carry a token (`auth`) granting read on every channel it
names, unexpired and unrevoked, or it gets 403 with PubNub's Access Manager body. A long-poll
held by a token that is revoked or expires meanwhile ends with that 403 at once.
`advance(seconds)` moves the server's clock for token expiry (tests of a TTL in minutes).
Without keys the channels are open (PUBNUB_ALLOW_OPEN_CHANNELS).
"""

from __future__ import annotations

import asyncio
import hmac
import json
import re
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from aiohttp import web
from pydantic import SecretStr

from core.config import PubNubSettings
from devtools.bench.pubnub_pam import (
    READ,
    SIGNATURE_SKEW_S,
    WRITE,
    Grant,
    GrantRequestError,
    expected_signature,
    forbidden,
    mint,
    parse_grant,
)

# How long a subscribe long-poll is held without news (PubNub holds ~280 s).
LONG_POLL_S = 30.0


@dataclass(frozen=True)
class PamKeys:
    """The keyset whose requests the server checks (Access Manager on)."""

    publish_key: str
    subscribe_key: str
    secret_key: str


@dataclass(frozen=True)
class Refusal:
    """A request Access Manager refused: which kind, with which token, on which channels, why."""

    kind: str
    token: str | None
    channels: tuple[str, ...]
    reason: str


@dataclass(frozen=True)
class Published:
    channel: str
    payload: Any
    timetoken: int
    publish_key: str
    subscribe_key: str


class LoopbackPubNub:
    def __init__(self, pam: PamKeys | None = None) -> None:
        self.pam = pam
        self.published: list[Published] = []
        self.subscribes = 0
        # Access Manager: every token issued, and the requests refused (403) by kind.
        self.grants: dict[str, Grant] = {}
        self.refused: dict[str, int] = {"subscribe": 0, "publish": 0, "presence": 0, "pam": 0}
        self.refusals: list[Refusal] = []
        self.clock_offset_s = 0.0
        self._failures: list[int] = []
        # Cleared: publishes wait (a slow PubNub) until `let_go`.
        self._open = asyncio.Event()
        self._open.set()
        self.publishes_waiting = 0
        self._last_tt = 0
        self._news = asyncio.Condition()
        self._runner: web.AppRunner | None = None
        self._closing = False
        self.port = 0

    @property
    def origin(self) -> str:
        return f"127.0.0.1:{self.port}"

    def client_settings(self, **extra: Any) -> PubNubSettings:
        """What points the real SDK at this server, with its Access Manager keys."""
        if self.pam is None:
            raise ValueError("a server without Access Manager keys has no keys to hand out")
        return PubNubSettings(
            publish_key=self.pam.publish_key,
            subscribe_key=self.pam.subscribe_key,
            secret_key=SecretStr(self.pam.secret_key),
            origin=self.origin,
            ssl=False,
            **extra,
        )

    def client_env(self) -> dict[str, str]:
        """`client_settings` as the variables of a worker or gateway process started here."""
        if self.pam is None:
            raise ValueError("a server without Access Manager keys has no keys to hand out")
        return {
            "PUBNUB_PUBLISH_KEY": self.pam.publish_key,
            "PUBNUB_SUBSCRIBE_KEY": self.pam.subscribe_key,
            "PUBNUB_SECRET_KEY": self.pam.secret_key,
            "PUBNUB_ORIGIN": self.origin,
            "PUBNUB_SSL": "false",
        }

    def fail_next(self, status: int, times: int = 1) -> None:
        self._failures.extend([status] * times)

    def hold(self) -> None:
        """Keep publishes waiting (each is answered once `let_go` is called)."""
        self._open.clear()

    def let_go(self) -> None:
        self._open.set()

    def messages(self, channel: str) -> list[Any]:
        return [p.payload for p in self.published if p.channel == channel]

    async def __aenter__(self) -> LoopbackPubNub:
        app = web.Application()
        app.router.add_get("/publish/{pub}/{sub}/0/{channel}/0/{payload:.*}", self._publish_get)
        app.router.add_post("/publish/{pub}/{sub}/0/{channel}/0", self._publish_post)
        app.router.add_get("/v2/subscribe/{sub}/{channels}/0", self._subscribe)
        app.router.add_get("/time/0", self._time)
        app.router.add_post("/v3/pam/{sub}/grant", self._grant)
        app.router.add_delete("/v3/pam/{sub}/grant/{token}", self._revoke)
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

    async def _store(self, request: web.Request, payload: Any, body: str = "") -> web.Response:
        refusal = self._check(
            request, "publish", [unquote(request.match_info["channel"])], WRITE, body
        )
        if refusal is not None:
            return refusal
        if self._failures:
            status = self._failures.pop(0)
            return web.json_response([0, "Loopback failure", str(self._timetoken())], status=status)
        if not self._open.is_set():
            self.publishes_waiting += 1
            await self._open.wait()
            self.publishes_waiting -= 1
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
        text = await request.text()
        return await self._store(request, json.loads(text), text)

    def _since(self, channels: set[str], after: int) -> list[Published]:
        return [p for p in self.published if p.timetoken > after and p.channel in channels]

    async def _subscribe(self, request: web.Request) -> web.Response:
        self.subscribes += 1
        channels = sorted({unquote(c) for c in request.match_info["channels"].split(",")})
        refusal = self._check(request, "subscribe", channels, READ)
        if refusal is not None:
            return refusal
        wanted = set(channels)
        after = int(request.query.get("tt", "0") or 0)
        if after == 0:
            return web.json_response({"t": {"t": str(self._timetoken()), "r": 1}, "m": []})
        token = request.query.get("auth")

        def lost() -> bool:
            # A token revoked or expired while its long-poll is held: PubNub refuses the next
            # request; here the held one ends with the refusal at once.
            return self.pam is not None and self._reading(token, channels) is not None

        async with self._news:
            try:
                await asyncio.wait_for(
                    self._news.wait_for(
                        lambda: self._closing or lost() or bool(self._since(wanted, after))
                    ),
                    LONG_POLL_S,
                )
            except TimeoutError:
                pass
            if lost():
                refusal = self._check(request, "subscribe", channels, READ)
                if refusal is not None:
                    return refusal
            found = self._since(wanted, after)
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
        # Heartbeats and leaves (`.../channel/{channels}/heartbeat|leave`): checked like a
        # subscribe to those channels, acknowledged, nothing kept.
        match = re.search(r"/channel/([^/]+)/", request.path)
        channels = sorted(unquote(c) for c in match.group(1).split(",")) if match else []
        refusal = self._check(request, "presence", channels, READ) if channels else None
        if refusal is not None:
            return refusal
        return web.json_response({"status": 200, "message": "OK", "service": "Presence"})

    # --- Access Manager ---------------------------------------------------------------------

    def now(self) -> float:
        """The server's clock for token expiry (moved by `advance`)."""
        return time.time() + self.clock_offset_s

    async def advance(self, seconds: float) -> None:
        """Move the clock token expiry is judged by; held long-polls look again."""
        async with self._news:
            self.clock_offset_s += seconds
            self._news.notify_all()

    def grant_of(self, token: str) -> Grant | None:
        return self.grants.get(token)

    def _signed(self, request: web.Request, body: str) -> str | None:
        """None when the request is signed with the keyset's secret key, else why not."""
        assert self.pam is not None
        query = dict(request.query)
        signature = query.get("signature")
        if signature is None:
            return "no signature"
        try:
            stamp = int(query.get("timestamp", ""))
        except ValueError:
            return "no timestamp"
        if abs(time.time() - stamp) > SIGNATURE_SKEW_S:
            return "timestamp too far from the server's clock"
        path = request.raw_path.split("?", 1)[0]
        keys = self.pam
        wanted = expected_signature(
            keys.secret_key,
            request.method,
            keys.publish_key,
            keys.subscribe_key,
            path,
            query,
            body,
        )
        if not hmac.compare_digest(wanted, signature):
            return "signature does not match"
        return None

    def _reading(self, token: str | None, channels: list[str], bit: int = READ) -> str | None:
        """None when `token` grants `bit` on every channel, else why not."""
        grant = self.grants.get(token) if token else None
        if grant is None:
            return "no valid token (auth)" if token is None else "token not issued here"
        if grant.revoked:
            return "token revoked"
        if self.now() >= grant.expires_at():
            return "token expired"
        denied = [c for c in channels if not grant.allows("chan", c, bit)]
        if denied:
            return f"token does not grant {'read' if bit == READ else 'write'} on {denied}"
        return None

    def _check(
        self, request: web.Request, kind: str, channels: list[str], bit: int, body: str = ""
    ) -> web.Response | None:
        """None when Access Manager lets the request through, else PubNub's 403."""
        if self.pam is None:
            return None
        if request.match_info.get("sub") not in (None, self.pam.subscribe_key):
            self.refused[kind] += 1
            return web.json_response(forbidden(channels, "Invalid Subscribe Key"), status=400)
        if "signature" in request.query and self._signed(request, body) is None:
            return None
        why = self._reading(request.query.get("auth"), channels, bit)
        if why is None:
            return None
        self.refused[kind] += 1
        self.refusals.append(Refusal(kind, request.query.get("auth"), tuple(channels), why))
        return web.json_response(forbidden(channels, f"Forbidden: {why}"), status=403)

    def refused_token(self, token: str, kind: str = "subscribe") -> list[Refusal]:
        """The requests of `kind` made with `token` that were refused."""
        return [r for r in self.refusals if r.token == token and r.kind == kind]

    def _pam_refusal(self, request: web.Request, body: str) -> web.Response | None:
        if self.pam is None:
            return web.json_response({"status": 400, "error": "Access Manager is off"}, status=400)
        why = self._signed(request, body)
        if why is None:
            return None
        self.refused["pam"] += 1
        return web.json_response(
            {
                "status": 403,
                "error": {"message": f"Invalid signature: {why}", "source": "grant"},
                "service": "Access Manager",
            },
            status=403,
        )

    async def _grant(self, request: web.Request) -> web.Response:
        body = await request.text()
        refusal = self._pam_refusal(request, body)
        if refusal is not None:
            return refusal
        assert self.pam is not None
        try:
            payload = json.loads(body)
            grant = parse_grant(payload, int(self.now()))
        except (ValueError, GrantRequestError) as exc:
            return web.json_response(
                {"status": 400, "error": {"message": str(exc)}, "service": "Access Manager"},
                status=400,
            )
        meta = payload["permissions"].get("meta") or {}
        token = mint(grant, self.pam.secret_key, meta)
        self.grants[token] = grant
        return web.json_response(
            {
                "status": 200,
                "data": {"message": "Success", "token": token},
                "service": "Access Manager",
            }
        )

    async def _revoke(self, request: web.Request) -> web.Response:
        refusal = self._pam_refusal(request, "")
        if refusal is not None:
            return refusal
        token = unquote(request.match_info["token"])
        grant = self.grants.get(token)
        if grant is None or self.now() >= grant.expires_at():
            return web.json_response(
                {
                    "status": 400,
                    "error": {"message": "Invalid token", "source": "revoke"},
                    "service": "Access Manager",
                },
                status=400,
            )
        async with self._news:
            grant.revoked = True
            self._news.notify_all()
        return web.json_response({"status": 200, "data": {}, "service": "Access Manager"})
