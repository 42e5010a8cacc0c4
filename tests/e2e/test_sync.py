"""Cross-device sync end to end: a sync worker and a gateway as processes, devices listening
over real sockets (Server-Sent Events with httpx; PubNub with the real SDK against a loopback
server), commands and edits through the HTTP API."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from agreements.sync_realtime import newer
from devtools.bench.sync_clients import Heard, PubNubDevice, SseDevice
from devtools.bench.sync_pubnub import LoopbackPubNub, PamKeys
from schemas.sync import devices_channel, notifications_channel, sync_channel
from tests.auth.helpers import bearer, user_token
from tests.conftest import Isolated
from tests.helpers import catalog_title, catalog_titles, wait_for

pytestmark = pytest.mark.slow

SCOPES = [
    "devices:read",
    "devices:write",
    "devices:command",
    "watchlist:read",
    "watchlist:write",
    "progress:write",
    "progress:read",
]


def device_body(kind: str, **caps: Any) -> dict[str, Any]:
    return {
        "device_type": kind,
        "platform": "tizen" if kind == "tv" else "ios",
        "capabilities": caps,
        "app_version": "1.0",
        "device_name": f"a {kind}",
    }


class Account:
    """One user talking to the gateway."""

    def __init__(self, http: httpx.AsyncClient, isolated: Isolated, name: str) -> None:
        self.http = http
        self.user_id = f"{name}-{uuid.uuid4().hex[:6]}"
        self.token = user_token(isolated.settings, subject=self.user_id, scopes=SCOPES)
        self.headers = bearer(self.token)

    def url(self, path: str) -> str:
        return f"/api/v1/users/{self.user_id}{path}"

    async def register(self, device_id: str, kind: str, **caps: Any) -> None:
        resp = await self.http.put(
            self.url(f"/devices/{device_id}"), json=device_body(kind, **caps), headers=self.headers
        )
        assert resp.status_code == 202, resp.text

    async def devices(self) -> list[dict[str, Any]]:
        resp = await self.http.get(self.url("/devices"), headers=self.headers)
        assert resp.status_code == 200, resp.text
        return resp.json()["devices"]  # type: ignore[no-any-return]

    async def command(self, source: str, target: str, body: dict[str, Any]) -> httpx.Response:
        return await self.http.post(
            self.url(f"/devices/{target}/commands"),
            json={"command": body},
            headers={**self.headers, "X-Device-ID": source},
        )

    async def realtime_token(self, device_id: str) -> dict[str, Any]:
        resp = await self.http.post(
            self.url("/realtime/token"), headers={**self.headers, "X-Device-ID": device_id}
        )
        assert resp.status_code == 200, resp.text
        return resp.json()  # type: ignore[no-any-return]

    async def wait_devices(self, count: int) -> None:
        async def listed() -> bool:
            return len(await self.devices()) == count

        await wait_for(listed, timeout=20, interval=0.1)


@dataclass
class Stack:
    http: httpx.AsyncClient
    url: str


@pytest.fixture
async def stack(spawn, isolated: Isolated) -> AsyncIterator[Stack]:  # type: ignore[no-untyped-def]
    spawn("worker", "sync", extra_env=isolated.env)
    gateway = spawn("gateway", extra_env={**isolated.env, "RATE_LIMIT_ENABLED": "false"})
    async with httpx.AsyncClient(base_url=gateway.url, timeout=10) as http:
        yield Stack(http, gateway.url)


def is_kind(kind: str) -> Any:
    return lambda h: isinstance(h.body, dict) and h.body.get("kind") == kind


async def test_a_phone_plays_on_the_tv_and_nobody_else_acts_on_it(
    stack: Stack, isolated: Isolated
) -> None:
    base, http = stack.url, stack.http
    alice, bob = Account(http, isolated, "alice"), Account(http, isolated, "bob")
    await alice.register("phone-1", "phone", remote_controllable=True)
    await alice.register("tv-1", "tv", remote_controllable=True)
    await alice.register("tv-2", "tv", remote_controllable=True)
    await bob.register("tv-1", "tv", remote_controllable=True)
    await alice.wait_devices(3)
    await bob.wait_devices(1)

    tv = await SseDevice(base, alice.user_id, alice.token, "tv-1").start()
    other_tv = await SseDevice(base, alice.user_id, alice.token, "tv-2").start()
    phone = await SseDevice(base, alice.user_id, alice.token, "phone-1").start()
    bobs_tv = await SseDevice(base, bob.user_id, bob.token, "tv-1").start()
    try:
        sent = await alice.command("phone-1", "tv-1", {"type": "play"})
        assert sent.status_code == 202, sent.text
        command_id = sent.json()["command_id"]
        heard = await tv.inbox.wait_for(is_kind("command"))
        assert heard.channel == devices_channel(alice.user_id)
        assert heard.body["command_id"] == command_id and heard.body["command"] == {"type": "play"}
        # One form of a time on the 202 and on the stream.
        assert heard.body["expires_at"] == sent.json()["expires_at"]
        result = await phone.inbox.wait_for(is_kind("command_result"))
        assert result.channel == notifications_channel(alice.user_id)
        assert (result.body["command_id"], result.body["status"]) == (command_id, "delivered")

        # A command to a device that is not Alice's (Bob's tv-1 is Bob's): Alice cannot.
        forbidden = await http.post(
            f"/api/v1/users/{bob.user_id}/devices/tv-1/commands",
            json={"command": {"type": "pause"}},
            headers={**alice.headers, "X-Device-ID": "phone-1"},
        )
        assert forbidden.status_code == 403
        spy = await SseDevice(base, bob.user_id, alice.token, "tv-1").start()
        assert spy.status == 403
        await spy.close()

        # A device that is not hers is refused at the gateway, as target or as sender.
        for source, target in (("phone-1", "tv-9"), ("tv-9", "tv-1")):
            unknown = await alice.command(source, target, {"type": "play"})
            assert (unknown.status_code, unknown.json()["error"]) == (403, "unknown_device")
        # A rejected command reaches only the sender, with its typed error: tv-2 cannot cast.
        cast = {"type": "cast_to", "target_device_id": "tv-1", "content_id": str(uuid.uuid4())}
        not_cast = await alice.command("phone-1", "tv-2", cast)
        rejected = await phone.inbox.wait_for(is_kind("command_result"))
        assert rejected.body["command_id"] == not_cast.json()["command_id"]
        assert rejected.body["error"] == "not_supported"

        # A watchlist add on the phone reaches the TV.
        title = await catalog_title(isolated.settings)
        added = await http.put(
            alice.url(f"/watchlist/{title}"), headers={**alice.headers, "X-Device-ID": "phone-1"}
        )
        assert added.status_code == 202
        change = await tv.inbox.wait_for(is_kind("watchlist"))
        assert change.channel == sync_channel(alice.user_id)
        assert change.body["content_id"] == str(title) and change.body["in_watchlist"]
        await asyncio.sleep(0.5)
        # tv-2 never got the command for tv-1 (nor its results), Bob's TV got nothing of Alice.
        assert other_tv.inbox.messages("command") == []
        assert other_tv.inbox.messages("command_result") == []
        assert [m["content_id"] for m in other_tv.inbox.messages("watchlist")] == [str(title)]
        # (Bob's TV may hear its own presence; never Alice's watchlist or commands.)
        assert bobs_tv.inbox.messages("command") == bobs_tv.inbox.messages("watchlist") == []
        assert all(alice.user_id not in h.channel for h in bobs_tv.inbox.heard)
        assert len(tv.inbox.messages("command")) == 1
        listed = await http.get(alice.url("/watchlist"), headers=alice.headers)
        assert [i["content_id"] for i in listed.json()["items"]] == [str(title)]
    finally:
        for device in (tv, other_tv, phone, bobs_tv):
            await device.close()


async def test_a_device_that_reconnects_gets_what_it_missed(
    stack: Stack, isolated: Isolated
) -> None:
    base, http = stack.url, stack.http
    alice = Account(http, isolated, "alice")
    # Known to the gateway as soon as accepted: no wait for the agent.
    await alice.register("phone-1", "phone")
    await alice.register("tv-1", "tv")
    headers = {**alice.headers, "X-Device-ID": "phone-1"}
    tv = await SseDevice(base, alice.user_id, alice.token, "tv-1", channels="sync").start()
    observer = await SseDevice(base, alice.user_id, alice.token, "phone-1", channels="sync").start()
    first, second, third, fourth = await catalog_titles(isolated.settings, 4)
    await http.put(alice.url(f"/watchlist/{first}"), headers=headers)
    seen = await tv.inbox.wait_for(is_kind("watchlist"))
    assert seen.body["content_id"] == str(first)
    await tv.close()

    # While the TV is away, two more changes.
    await http.put(alice.url(f"/watchlist/{second}"), headers=headers)
    await http.delete(alice.url(f"/watchlist/{first}"), headers=headers)

    # The phone stayed connected: once it heard both, they are in the stream the TV resumes.
    await observer.inbox.wait_for(
        lambda h: (
            is_kind("watchlist")(h)
            and h.body["content_id"] == str(first)
            and h.body["operation"] == "remove"
        )
    )
    back = await SseDevice(
        base, alice.user_id, alice.token, "tv-1", channels="sync", last_event_id=seen.event_id
    ).start()
    try:
        caught_up = [h for h in back.inbox.heard if h.channel == sync_channel(alice.user_id)]
        assert [(h.body["content_id"], h.body["operation"]) for h in caught_up] == [
            (str(second), "add"),
            (str(first), "remove"),
        ]
        assert [h.channel for h in back.inbox.heard][-1] == "ready"
        # And it is live again.
        await http.put(alice.url(f"/watchlist/{third}"), headers=headers)
        live = await back.inbox.wait_for(
            lambda h: is_kind("watchlist")(h) and h.body["content_id"] == str(third)
        )
        assert newer(str(live.event_id), str(caught_up[-1].event_id))
        # An id from another stream lifetime (or long gone) gets a resync, never a silent gap.
        stale = await SseDevice(
            base, alice.user_id, alice.token, "tv-1", last_event_id="deadbeef:1-0"
        ).start()
        assert [h.channel for h in stale.inbox.heard] == ["resync", "ready"]
        await stale.close()
        # An id of this stream but ahead of it gets a resync too, then the live messages.
        epoch = str(live.event_id).split(":")[0]
        ahead = await SseDevice(
            base, alice.user_id, alice.token, "tv-1", last_event_id=f"{epoch}:9999999999999-0"
        ).start()
        try:
            assert [h.channel for h in ahead.inbox.heard] == ["resync", "ready"]
            await http.put(alice.url(f"/watchlist/{fourth}"), headers=headers)
            await ahead.inbox.wait_for(
                lambda h: is_kind("watchlist")(h) and h.body["content_id"] == str(fourth)
            )
        finally:
            await ahead.close()
        # A number Redis cannot take is refused before the stream opens.
        past = await SseDevice(
            base, alice.user_id, alice.token, "tv-1", last_event_id=f"{epoch}:1-{'9' * 20}"
        ).start()
        assert past.status == 422
        await past.close()
    finally:
        await back.close()
        await observer.close()


async def titles(account: Account) -> list[str]:
    resp = await account.http.get(account.url("/watchlist"), headers=account.headers)
    assert resp.status_code == 200, resp.text
    return [item["content_id"] for item in resp.json()["items"]]


async def send(http: httpx.AsyncClient, method: str, url: str, **kwargs: Any) -> None:
    resp = await http.request(method, url, **kwargs)
    assert resp.status_code == 202, resp.text


async def test_one_users_skewed_clock_moves_no_other_users_stamps(
    spawn,
    isolated: Isolated,  # type: ignore[no-untyped-def]
) -> None:
    """Two gateway processes; Alice's device clock runs 55 s ahead. Bob (no client stamps)
    registers devices through one process and removes them through the other, adds a title
    through one and removes it through the other: each later operation of his wins. And
    Alice's own later remove, stamped by the gateway, wins over her skewed add."""
    spawn("worker", "sync", extra_env=isolated.env)
    env = {**isolated.env, "RATE_LIMIT_ENABLED": "false"}
    urls = [spawn("gateway", extra_env=env).url for _ in range(2)]
    async with (
        httpx.AsyncClient(base_url=urls[0], timeout=10) as first,
        httpx.AsyncClient(base_url=urls[1], timeout=10) as second,
    ):
        alice, bob = Account(first, isolated, "alice"), Account(first, isolated, "bob")
        await bob.register("marker", "tv")
        await bob.wait_devices(1)

        skewed, bobs, sentinel = await catalog_titles(isolated.settings, 3)
        ahead = {"physical_us": time.time_ns() // 1000 + 55_000_000, "logical": 0}
        await send(
            first,
            "PUT",
            alice.url(f"/watchlist/{skewed}"),
            json={"timestamp": ahead},
            headers=alice.headers,
        )
        phones = [f"phone-{n}" for n in range(3)]
        for phone in phones:
            await bob.register(phone, "phone")
            await send(second, "DELETE", bob.url(f"/devices/{phone}"), headers=bob.headers)
        await send(first, "PUT", bob.url(f"/watchlist/{bobs}"), headers=bob.headers)
        await send(second, "DELETE", bob.url(f"/watchlist/{bobs}"), headers=bob.headers)
        await send(second, "DELETE", alice.url(f"/watchlist/{skewed}"), headers=alice.headers)

        # Sentinels: the last operation on each topic, through the second process. Once one
        # is merged, every operation before it on its topic (one partition per user) is too.
        await send(second, "DELETE", bob.url("/devices/marker"), headers=bob.headers)
        await send(
            second, "PUT", bob.url("/devices/last"), json=device_body("tv"), headers=bob.headers
        )
        for account in (alice, bob):
            await send(
                second, "PUT", account.url(f"/watchlist/{sentinel}"), headers=account.headers
            )

        async def devices_merged() -> list[str] | None:
            listed = [d["device_id"] for d in await bob.devices()]
            return listed if "last" in listed and "marker" not in listed else None

        assert await wait_for(devices_merged, timeout=20, interval=0.1) == ["last"]
        for account, removed in ((alice, skewed), (bob, bobs)):

            async def watchlist_merged(account: Account = account) -> list[str] | None:
                listed = await titles(account)
                return listed if str(sentinel) in listed else None

            listed = await wait_for(watchlist_merged, timeout=20, interval=0.1)
            assert str(removed) not in listed, f"{account.user_id}'s later remove lost"


async def test_through_pubnub_the_tv_hears_the_command_with_the_real_sdk(
    spawn,
    isolated: Isolated,  # type: ignore[no-untyped-def]
) -> None:
    keys = PamKeys("pub-e2e", "sub-e2e", f"sec-e2e-{uuid.uuid4().hex}")
    async with LoopbackPubNub(keys) as server:
        env = {
            **isolated.env,
            **server.client_env(),
            "RATE_LIMIT_ENABLED": "false",
        }
        # In a thread: readiness probes the loopback PubNub, which runs on this event loop.
        await asyncio.to_thread(spawn, "worker", "sync", extra_env=env)
        gateway = await asyncio.to_thread(spawn, "gateway", extra_env=env)
        async with httpx.AsyncClient(base_url=gateway.url, timeout=10) as http:
            alice, bob = Account(http, isolated, "alice"), Account(http, isolated, "bob")
            info = (await http.get(alice.url("/realtime"), headers=alice.headers)).json()
            assert info["transport"] == "pubnub" and info["pubnub_subscribe_key"] == "sub-e2e"
            assert info["pubnub_token_url"] == alice.url("/realtime/token")
            assert (await http.get(alice.url("/stream"), headers=alice.headers)).status_code == 404
            await alice.register("phone-1", "phone")
            await alice.register("tv-1", "tv", remote_controllable=True)
            await bob.register("phone-1", "phone")
            await alice.wait_devices(2)
            await bob.wait_devices(1)
            tv_token = await alice.realtime_token("tv-1")
            assert tv_token["channels"] == info["channels"]
            tv = PubNubDevice(server.origin, "sub-e2e", "tv-1", token=tv_token["token"])
            tv.subscribe(info["channels"]["devices"])
            # Bob's phone, with Bob's own token, tries Alice's devices channel: refused.
            bobs = await bob.realtime_token("phone-1")
            snoop = PubNubDevice(server.origin, "sub-e2e", "phone-1", token=bobs["token"])
            snoop.subscribe(info["channels"]["devices"])
            try:
                await wait_for(lambda: server.refused_token(bobs["token"]), timeout=5)
                await wait_for(lambda: server.subscribes >= 3, timeout=5)
                sent = await alice.command(
                    "phone-1", "tv-1", {"type": "seek", "position_seconds": 60}
                )
                assert sent.status_code == 202

                def the_seek(h: Heard) -> bool:
                    return h.body.get("command_id") == sent.json()["command_id"]

                heard = await tv.inbox.wait_for(the_seek)
                assert heard.body["command"] == {"type": "seek", "position_seconds": 60.0}
                await wait_for(lambda: server.messages(info["channels"]["notifications"]), 5)
                results = server.messages(info["channels"]["notifications"])
                assert results[-1]["status"] == "delivered"
                assert snoop.inbox.heard == []

                # Alice removes her TV: the sync worker revokes its token, and PubNub refuses
                # the TV's subscription from then on.
                removed = await http.delete(alice.url("/devices/tv-1"), headers=alice.headers)
                assert removed.status_code == 202
                await wait_for(lambda: server.grants[tv_token["token"]].revoked, timeout=20)
                await wait_for(lambda: server.refused_token(tv_token["token"]), timeout=5)
                assert not server.grants[bobs["token"]].revoked
            finally:
                await tv.close()
                await snoop.close()
