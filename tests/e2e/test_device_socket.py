"""The device WebSocket end to end (docs/DEVICE_PROTOCOL.md): a sync worker and a gateway as
processes on the test's broker, Redis and PostgreSQL; devices on real WebSockets (the
`websockets` client), writes through the socket and the HTTP API."""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import AsyncIterator

import httpx
import pytest

from devtools.bench.sync_clients import Heard, SocketDevice
from schemas.sync import devices_channel, notifications_channel, sync_channel
from tests.conftest import Isolated
from tests.e2e.test_sync import Account, Stack, is_kind
from tests.helpers import catalog_titles

pytestmark = pytest.mark.slow

BURST = 15
USER_CAP = 3


@pytest.fixture
async def stack(spawn, isolated: Isolated) -> AsyncIterator[Stack]:  # type: ignore[no-untyped-def]
    spawn("worker", "sync", extra_env=isolated.env)
    gateway = spawn(
        "gateway",
        extra_env={
            **isolated.env,
            "RATE_LIMIT_ENABLED": "false",
            "GATEWAY_SOCKET_BURST": str(BURST),
            "GATEWAY_SOCKET_FRAMES_PER_S": "5",
            "REALTIME_STREAMS_PER_USER": str(USER_CAP),
        },
    )
    async with httpx.AsyncClient(base_url=gateway.url, timeout=10) as http:
        yield Stack(http, gateway.url)


def answer_to(ref: str):  # type: ignore[no-untyped-def]
    return lambda h: h.event_id == ref


def metric(text: str, name: str, **labels: str) -> float:
    """One sample of the gateway's /metrics (0 when absent)."""
    wanted = ",".join(f'{k}="{v}"' for k, v in labels.items())
    pattern = rf"^{re.escape(name)}{{{re.escape(wanted)}}} (\S+)$" if labels else rf"^{name} (\S+)$"
    found = re.search(pattern, text, re.MULTILINE)
    return float(found.group(1)) if found else 0.0


async def test_a_phones_command_frame_reaches_the_tvs_socket(
    stack: Stack, isolated: Isolated
) -> None:
    base, http = stack.url, stack.http
    alice = Account(http, isolated, "alice")
    await alice.register("phone-1", "phone", remote_controllable=True)
    await alice.register("tv-1", "tv", remote_controllable=True)
    await alice.wait_devices(2)
    tv = await SocketDevice(base, alice.user_id, alice.token, "tv-1").start()
    phone = await SocketDevice(base, alice.user_id, alice.token, "phone-1").start()
    try:
        # The protocol's name is the accepted subprotocol: the token is never echoed.
        assert tv.subprotocol == "mgw.v1"
        await phone.command("tv-1", {"type": "seek", "position_seconds": 60}, ref="c1")
        accepted = await phone.answers.wait_for(answer_to("c1"))
        assert accepted.channel == "accepted" and accepted.body["op"] == "command"
        command_id = accepted.body["data"]["command_id"]
        assert accepted.body["data"]["topic"].endswith("sync.commands")
        heard = await tv.inbox.wait_for(is_kind("command"))
        assert heard.channel == devices_channel(alice.user_id)
        assert heard.body["command_id"] == command_id
        assert heard.body["command"] == {"type": "seek", "position_seconds": 60.0}
        assert heard.body["source_device_id"] == "phone-1"
        result = await phone.inbox.wait_for(is_kind("command_result"))
        assert result.channel == notifications_channel(alice.user_id)
        assert (result.body["command_id"], result.body["status"]) == (command_id, "delivered")

        # Heartbeat and progress frames go the HTTP routes' way: progress reaches the TV.
        await phone.send({"type": "heartbeat", "ref": "h1"})
        assert (await phone.answers.wait_for(answer_to("h1"))).channel == "accepted"
        title = str(uuid.uuid4())
        body = {"position_seconds": 30, "duration_seconds": 600, "state": "playing"}
        await phone.send({"type": "progress", "ref": "p1", "content_id": title, "body": body})
        progress = await phone.answers.wait_for(answer_to("p1"))
        assert progress.channel == "accepted", progress.body
        assert "physical_us" in progress.body["data"]["timestamp"]
        moved = await tv.inbox.wait_for(is_kind("progress"))
        assert moved.channel == sync_channel(alice.user_id)
        assert moved.body["content_id"] == title and moved.body["device_id"] == "phone-1"
        # The TV's socket carries what its SSE stream would: nothing addressed to the phone.
        assert tv.inbox.messages("command_result") == []

        # Sockets count against the user's cap with streams: the third is the last one.
        await alice.register("tablet-1", "tablet")
        third = await SocketDevice(base, alice.user_id, alice.token, "tablet-1").start()
        over = await SocketDevice(base, alice.user_id, alice.token, "tablet-1").start()
        assert third.status == 101
        assert over.status == 429 and over.refusal["error"] == "too_many_streams"
        await third.close()
        text = (await http.get("/metrics")).text
        assert metric(text, "device_socket_closes_total", code="http_429") >= 1
    finally:
        await tv.close()
        await phone.close()


async def test_a_socket_resumes_with_exactly_what_it_missed(
    stack: Stack, isolated: Isolated
) -> None:
    base, http = stack.url, stack.http
    alice = Account(http, isolated, "alice")
    headers = {**alice.headers, "X-Device-ID": "phone-1"}
    for device_id, kind in (("phone-1", "phone"), ("tv-1", "tv"), ("tablet-1", "tablet")):
        await alice.register(device_id, kind)
    await alice.wait_devices(3)  # and so the sync worker is consuming
    tv = await SocketDevice(base, alice.user_id, alice.token, "tv-1", channels="sync").start()
    first, second, third, fourth = map(str, await catalog_titles(isolated.settings, 4))
    await http.put(alice.url(f"/watchlist/{first}"), headers=headers)
    seen = await tv.inbox.wait_for(is_kind("watchlist"))
    assert seen.body["content_id"] == first
    await tv.close()

    await http.put(alice.url(f"/watchlist/{second}"), headers=headers)
    await http.put(alice.url(f"/watchlist/{third}"), headers=headers)
    # Both are in the user's stream once a device on it heard them.
    observer = await SocketDevice(
        base, alice.user_id, alice.token, "tablet-1", channels="sync", last_event_id=seen.event_id
    ).start()
    await observer.inbox.wait_for(
        lambda h: is_kind("watchlist")(h) and h.body["content_id"] == third
    )
    await observer.close()

    back = await SocketDevice(
        base, alice.user_id, alice.token, "tv-1", channels="sync", last_event_id=seen.event_id
    ).start()
    try:
        replayed = [h for h in back.inbox.heard if h.channel == sync_channel(alice.user_id)]
        assert [h.body["content_id"] for h in replayed] == [second, third]
        assert [h.channel for h in back.inbox.heard][-1] == "ready"
        # `ack`: the TV confirms the second; a socket opened without an id resumes after it.
        await back.send({"type": "ack", "ref": "a1", "id": replayed[0].event_id})
        await back.send({"type": "ack", "ref": "a2", "id": "zz:1-0"})
        bad = await back.answers.wait_for(answer_to("a2"))
        assert bad.channel == "error" and bad.body["data"]["fields"][0]["field"] == "id"
        await asyncio.sleep(0.3)  # the ack has no answer of its own; give Redis the write
    finally:
        await back.close()
    await http.put(alice.url(f"/watchlist/{fourth}"), headers=headers)
    again = await SocketDevice(base, alice.user_id, alice.token, "tv-1", channels="sync").start()
    try:
        await again.inbox.wait_for(
            lambda h: is_kind("watchlist")(h) and h.body["content_id"] == fourth
        )
        resumed = [
            h.body["content_id"]
            for h in again.inbox.heard
            if h.channel == sync_channel(alice.user_id)
        ]
        assert resumed == [third, fourth]
    finally:
        await again.close()


async def test_bad_frames_oversized_frames_and_floods_get_their_codes(
    stack: Stack, isolated: Isolated
) -> None:
    base, http = stack.url, stack.http
    alice, bob = Account(http, isolated, "alice"), Account(http, isolated, "bob")
    await alice.register("phone-1", "phone")
    await alice.register("tv-1", "tv", remote_controllable=True)
    await alice.wait_devices(2)

    # Refused before the handshake, with the HTTP problem any route gives.
    spy = await SocketDevice(base, alice.user_id, bob.token, "tv-1").start()
    assert spy.status == 403 and spy.refusal["error"] == "forbidden"
    nobody = await SocketDevice(base, alice.user_id, "not-a-token", "tv-1").start()
    assert nobody.status == 401 and nobody.refusal["error"] == "unauthorized"
    stranger = await SocketDevice(base, alice.user_id, alice.token, "tv-9").start()
    assert stranger.status == 403 and stranger.refusal["error"] == "unknown_device"
    assert stranger.refusal["fields"][0]["field"] == "path.device_id"

    phone = await SocketDevice(base, alice.user_id, alice.token, "phone-1").start()
    try:
        cases: list[tuple[str | dict[str, object], str, str]] = [
            ("{not json", "(frame)", "not JSON"),
            ({"type": "dance", "ref": "r2"}, "type", "must be one of"),
            (
                {
                    "type": "progress",
                    "ref": "r3",
                    "content_id": str(uuid.uuid4()),
                    "body": {"position_seconds": 700, "duration_seconds": 600, "state": "paused"},
                },
                "body",
                "past the end of the title",
            ),
            (
                {
                    "type": "command",
                    "ref": "r4",
                    "target_device_id": "phone-1",
                    "body": {"command": {"type": "play"}},
                },
                "target_device_id",
                "does not send commands to itself",
            ),
            (
                {
                    "type": "command",
                    "ref": "r4b",
                    "target_device_id": "tv-1",
                    "body": {"command": {"type": "seek", "position_seconds": -5}},
                },
                "body.command.position_seconds",
                "is negative; positions start at 0",
            ),
            (
                {"type": "heartbeat", "ref": "r5", "body": {"now_playing": 5}},
                "body.now_playing",
                "",
            ),
        ]
        for frame, field, reason in cases:
            await phone.send(frame)
            error: Heard = await phone.answers.wait_for(lambda h: h.channel == "error")
            problem = error.body["data"]
            assert problem["status"] == 422 and problem["error"] == "validation_failed", problem
            assert problem["fields"][0]["field"] == field, problem
            assert reason in problem["fields"][0]["reason"], problem
            if isinstance(frame, dict):
                assert error.event_id == frame["ref"]
        await phone.command("tv-9", {"type": "play"}, ref="u1")
        unknown = await phone.answers.wait_for(answer_to("u1"))
        assert unknown.channel == "error" and unknown.body["data"]["error"] == "unknown_device"
        assert unknown.body["data"]["fields"][0]["field"] == "target_device_id"
        # Still open and working after every refusal.
        await phone.send({"type": "heartbeat", "ref": "ok"})
        assert (await phone.answers.wait_for(answer_to("ok"))).channel == "accepted"

        # Over 64 KiB: closed with 1009.
        await phone.send({"type": "heartbeat", "ref": "x" * 10, "pad": "x" * 70_000})
        assert await phone.wait_closed() == 1009
    finally:
        await phone.close()

    tv = await SocketDevice(base, alice.user_id, alice.token, "tv-1").start()
    try:
        for n in range(BURST * 3):
            try:
                await tv.send({"type": "heartbeat", "ref": f"f{n}"})
            except Exception:
                break
        assert await tv.wait_closed() == 1008
        assert "frames/s" in tv.close_reason
    finally:
        await tv.close()

    text = (await http.get("/metrics")).text
    assert metric(text, "device_socket_closes_total", code="1008") >= 1
    assert metric(text, "device_socket_closes_total", code="1009") >= 1
    assert metric(text, "device_socket_closes_total", code="http_403") >= 1
    assert metric(text, "device_socket_errors_total", code="validation_failed") >= 5
    assert metric(text, "device_socket_frames_total", direction="in", type="invalid") >= 2


async def test_a_ticket_opens_its_devices_socket_once_and_removal_revokes_it(
    stack: Stack, isolated: Isolated
) -> None:
    base, http = stack.url, stack.http
    alice = Account(http, isolated, "alice")
    await alice.register("web-1", "web")
    await alice.register("tv-1", "tv")
    await alice.wait_devices(2)

    async def ticket(device_id: str) -> str:
        issued = await http.post(
            alice.url("/stream/ticket"), headers={**alice.headers, "X-Device-ID": device_id}
        )
        assert issued.status_code == 200, issued.text
        return str(issued.json()["ticket"])

    first = await ticket("web-1")
    web = await SocketDevice(base, alice.user_id, None, "web-1", ticket=first).start()
    try:
        assert web.status == 101 and web.subprotocol == "mgw.v1"
        again = await SocketDevice(base, alice.user_id, None, "web-1", ticket=first).start()
        assert again.status == 401 and again.refusal["error"] == "invalid_ticket"
        elsewhere = await SocketDevice(
            base, alice.user_id, None, "tv-1", ticket=await ticket("web-1")
        ).start()
        assert elsewhere.status == 422
        assert elsewhere.refusal["fields"][0]["field"] == "path.device_id"

        # Removing the device ends its socket: a `revoked` frame, then 4003.
        removed = await http.delete(alice.url("/devices/web-1"), headers=alice.headers)
        assert removed.status_code == 202
        end = await web.inbox.wait_for(lambda h: h.channel == "revoked", wait_s=15)
        assert end.body == {"reason": "device_removed", "device_id": "web-1"}
        assert await web.wait_closed() == 4003
    finally:
        await web.close()
    gone = await SocketDevice(base, alice.user_id, alice.token, "web-1").start()
    assert gone.status == 403 and gone.refusal["error"] == "unknown_device"
