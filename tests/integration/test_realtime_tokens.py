"""PubNub Access Manager end to end in one process: the gateway's token route (real Redis, the
real device read model written by the sync device agent), the real `pubnub` SDK on every side
(grant with the secret key, devices subscribing with their tokens, the delivery agent
publishing signed), and the loopback PubNub server enforcing grants as PubNub does."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from loguru import logger
from pubnub.pnconfiguration import PNConfiguration
from pubnub.pubnub_asyncio import PubNubAsyncio

from agents.adapters.delivery.pubnub import PubNubSink
from agents.framework.context import AgentContext, ContextHolder
from agents.sync.handlers import REALTIME_SINK, TOKEN_REVOKER, device_handler
from agreements import realtime_tokens
from core.config import ConfigError, PubNubSettings, Settings, settings_with
from devtools.bench.sync_clients import PubNubDevice
from devtools.bench.sync_pubnub import LoopbackPubNub, PamKeys
from schemas.envelope import wrap
from schemas.sync import (
    HLC,
    DeviceInfo,
    DeviceRegistered,
    DeviceRemoved,
    ProgressMessage,
    RealtimeEvent,
    devices_channel,
    notifications_channel,
    sync_channel,
)
from tests.auth.helpers import bearer, running_gateway, user_token
from tests.helpers import wait_for

SCOPES = ["devices:read", "devices:write", "watchlist:read"]
NOW = datetime.now(UTC)


@dataclass
class Realtime:
    server: LoopbackPubNub
    keys: PamKeys
    ctx: AgentContext
    http: httpx.AsyncClient
    settings: Settings


def pam_settings(settings: Settings, server: LoopbackPubNub, keys: PamKeys) -> Settings:
    return settings.model_copy(update={"pubnub": server.client_settings(tokens_per_device=3)})


@pytest.fixture
async def rt(settings: Settings, topics_created: None) -> AsyncIterator[Realtime]:
    keys = PamKeys("pub-pam", "sub-pam", f"sec-{uuid.uuid4().hex}")
    async with LoopbackPubNub(keys) as server:
        ours = pam_settings(settings, server, keys)
        holder = ContextHolder(ours, source="test")
        ctx = (await holder.get()).for_agent("pam-test")
        try:
            async with running_gateway(ours) as (_, http):
                yield Realtime(server, keys, ctx, http, ours)
        finally:
            await holder.close()


def user() -> str:
    return f"pam-{uuid.uuid4().hex[:10]}"


def info(device_id: str) -> DeviceInfo:
    return DeviceInfo.model_validate(
        {
            "device_id": device_id,
            "device_type": "tv" if device_id.startswith("tv") else "phone",
            "platform": "tizen" if device_id.startswith("tv") else "ios",
            "capabilities": {"remote_controllable": True},
            "app_version": "1.0",
            "device_name": device_id,
        }
    )


def hlc() -> HLC:
    return HLC(physical_us=time.time_ns() // 1000)


async def register(ctx: AgentContext, user_id: str, device_id: str) -> None:
    event = DeviceRegistered(user_id=user_id, device=info(device_id), timestamp=hlc())
    await device_handler()(ctx, [wrap(event, key=user_id, source="test")])


async def remove(ctx: AgentContext, user_id: str, device_id: str) -> None:
    event = DeviceRemoved(user_id=user_id, device_id=device_id, timestamp=hlc())
    await device_handler()(ctx, [wrap(event, key=user_id, source="test")])


async def ask_token(
    rt: Realtime, user_id: str, device_id: str | None, *, as_user: str | None = None, **kw: Any
) -> httpx.Response:
    token = user_token(
        rt.settings, subject=as_user or user_id, scopes=kw.pop("scopes", SCOPES), **kw
    )
    headers = bearer(token) | ({"X-Device-ID": device_id} if device_id else {})
    return await rt.http.post(f"/api/v1/users/{user_id}/realtime/token", headers=headers)


async def device_token(rt: Realtime, user_id: str, device_id: str) -> dict[str, Any]:
    resp = await ask_token(rt, user_id, device_id)
    assert resp.status_code == 200, resp.text
    body: dict[str, Any] = resp.json()
    return body


def progress(user_id: str, n: int) -> RealtimeEvent:
    message = ProgressMessage(
        content_id=uuid.UUID(int=n),
        position_seconds=float(n),
        duration_seconds=100.0,
        state="playing",
        timestamp=HLC(physical_us=n + 1),
        device_id="tv-1",
    )
    return RealtimeEvent(user_id=user_id, message_id=uuid.uuid4(), message=message, occurred_at=NOW)


def publisher_config(rt: Realtime, name: str) -> PNConfiguration:
    config = PNConfiguration()
    config.publish_key = rt.keys.publish_key
    config.subscribe_key = rt.keys.subscribe_key
    config.user_id = name
    config.origin = rt.server.origin
    config.ssl = False
    config.disable_config_locking = False
    return config


def device(rt: Realtime, name: str, token: str) -> PubNubDevice:
    return PubNubDevice(rt.server.origin, rt.keys.subscribe_key, name, token=token)


async def denied(rt: Realtime, token: str, reason: str = "", wait_s: float = 5.0) -> None:
    """Wait until the server refused a subscribe made with `token` (the SDK retries quietly, so
    the refusal is seen where PubNub would log it)."""

    def refused() -> bool:
        return any(reason in r.reason for r in rt.server.refused_token(token))

    await wait_for(refused, timeout=wait_s, interval=0.02)


def their_channels(user_id: str) -> dict[str, str]:
    return {
        "sync": sync_channel(user_id),
        "devices": devices_channel(user_id),
        "notifications": notifications_channel(user_id),
    }


# --- what a token grants -------------------------------------------------------------------------


async def test_alices_token_reads_her_channels_and_bobs_cannot(rt: Realtime) -> None:
    alice, bob = user(), user()
    await register(rt.ctx, alice, "tv-1")
    await register(rt.ctx, bob, "phone-1")
    granted = await device_token(rt, alice, "tv-1")
    assert granted["channels"] == their_channels(alice)
    assert granted["subscribe_key"] == rt.keys.subscribe_key
    assert granted["origin"] == rt.server.origin
    # As PubNub's SDK reads it: read on exactly her three channels, write on none.
    grant = rt.server.grant_of(granted["token"])
    assert grant is not None and grant.resources["chan"] == dict.fromkeys(
        their_channels(alice).values(), 1
    )
    parsed = PubNubDevice(rt.server.origin, "x", "y").client.parse_token(granted["token"])
    assert {c: p["write"] for c, p in parsed["resources"]["channels"].items()} == dict.fromkeys(
        their_channels(alice).values(), False
    )
    bobs = await device_token(rt, bob, "phone-1")

    tv, snoop = device(rt, "alice-tv", granted["token"]), device(rt, "bob-phone", bobs["token"])
    try:
        snoop.subscribe(sync_channel(alice), devices_channel(alice))
        await denied(rt, bobs["token"], "does not grant read")
        tv.subscribe(*their_channels(alice).values())
        await wait_for(lambda: rt.server.subscribes >= 3, timeout=5, interval=0.02)
        await asyncio.sleep(0.2)
        # The delivery agent publishes with the secret key: signed, so Access Manager lets it.
        sink = rt.ctx.use(REALTIME_SINK)
        assert isinstance(sink, PubNubSink)
        p1, p2 = progress(alice, 1), progress(alice, 2)
        assert await sink.deliver([p1, p2]) == 2
        got = [await tv.inbox.wait_for(lambda h: True, wait_s=5) for _ in range(2)]
        assert [h.body["position_seconds"] for h in got] == [1, 2]
        assert snoop.inbox.heard == []
        assert rt.server.refused_token(granted["token"]) == []
        # A device's token writes nowhere, not even on its own user's channels (even for a
        # client that learned the publish key, which devices are never given).
        writer = PubNubAsyncio(publisher_config(rt, "alice-tv"))
        writer.set_token(granted["token"])
        try:
            sent = await writer.publish().channel(sync_channel(alice)).message({"x": 1}).future()
        finally:
            await writer.stop()
        assert sent.is_error() and sent.status.status_code == 403
        assert rt.server.messages(sync_channel(alice)) == [
            m.message.model_dump(mode="json") for m in (p1, p2)
        ]
    finally:
        await tv.close()
        await snoop.close()


async def test_a_token_lives_no_longer_than_the_credential_and_is_refused_past_its_ttl(
    rt: Realtime,
) -> None:
    alice = user()
    await register(rt.ctx, alice, "tv-1")
    short = await ask_token(rt, alice, "tv-1", ttl_s=10 * 60 + 30)
    assert short.status_code == 200, short.text
    assert short.json()["ttl"] == 10
    expires = datetime.fromisoformat(short.json()["expires_at"])
    assert timedelta(minutes=9) < expires - datetime.now(UTC) <= timedelta(minutes=10)
    # A credential good for two days still gets at most 24 h.
    long = await ask_token(rt, alice, "tv-1", ttl_s=2 * 86400)
    assert long.json()["ttl"] == 1440
    # A credential ending within the minute: too soon to hand on.
    ending = await ask_token(rt, alice, "tv-1", ttl_s=45)
    assert ending.status_code == 401 and "refresh" in ending.json()["detail"]

    tv = device(rt, "alice-tv", short.json()["token"])
    try:
        tv.subscribe(sync_channel(alice))
        await wait_for(lambda: rt.server.subscribes >= 2, timeout=5, interval=0.02)
        assert rt.server.refused_token(short.json()["token"]) == []
        # Eleven minutes on (the server's clock): the held long-poll ends refused.
        await rt.server.advance(11 * 60)
        await denied(rt, short.json()["token"], "expired")
    finally:
        await tv.close()


async def test_removing_a_device_revokes_its_tokens_once_and_its_subscription_is_refused(
    rt: Realtime,
) -> None:
    alice = user()
    await register(rt.ctx, alice, "tv-1")
    await register(rt.ctx, alice, "phone-1")
    first, second = await device_token(rt, alice, "tv-1"), await device_token(rt, alice, "tv-1")
    phone = await device_token(rt, alice, "phone-1")
    tv = device(rt, "alice-tv", second["token"])
    try:
        tv.subscribe(devices_channel(alice))
        await wait_for(lambda: rt.server.subscribes >= 2, timeout=5, interval=0.02)
        await remove(rt.ctx, alice, "tv-1")
        # Revoked by the device agent once the removal was committed: the held poll ends 403.
        await denied(rt, second["token"], "revoked")
        for token in (first["token"], second["token"]):
            grant = rt.server.grant_of(token)
            assert grant is not None and grant.revoked
        prefix = rt.settings.redis.key_prefix
        assert await realtime_tokens.live(rt.ctx.redis, prefix, alice, "tv-1", time.time()) == []
        # The phone keeps its token; a redelivered removal revokes nothing more.
        assert not rt.server.grants[phone["token"]].revoked
        assert await rt.ctx.use(TOKEN_REVOKER).revoke_devices([(alice, "tv-1")]) == 0
        await remove(rt.ctx, alice, "tv-1")
        assert not rt.server.grants[phone["token"]].revoked
        # And the removed device gets no new token.
        again = await ask_token(rt, alice, "tv-1")
        assert again.status_code == 403 and again.json()["error"] == "unknown_device"
    finally:
        await tv.close()


# --- who may ask ---------------------------------------------------------------------------------


async def test_the_token_route_refuses_unregistered_devices_other_users_and_floods(
    rt: Realtime,
) -> None:
    alice, bob = user(), user()
    await register(rt.ctx, alice, "tv-1")
    await register(rt.ctx, bob, "phone-1")
    unknown = await ask_token(rt, alice, "tv-9")
    assert unknown.status_code == 403 and unknown.json()["error"] == "unknown_device"
    assert [f["field"] for f in unknown.json()["fields"]] == ["header.X-Device-ID"]
    # Bob's own device, named on Alice's path, with Bob's credential: not his user.
    other = await ask_token(rt, alice, "phone-1", as_user=bob)
    assert other.status_code == 403 and other.json()["error"] == "forbidden"
    # Bob's device on Alice's path with Alice's credential: not her device.
    foreign = await ask_token(rt, alice, "phone-1")
    assert foreign.status_code == 403 and foreign.json()["error"] == "unknown_device"
    missing = await ask_token(rt, alice, None)
    assert missing.status_code == 422
    assert missing.json()["fields"][0]["field"] == "header.X-Device-ID"
    scopeless = await ask_token(rt, alice, "tv-1", scopes=["watchlist:read"])
    assert scopeless.status_code == 403
    assert rt.server.grants == {}
    # Without watchlist:read the sync channel is not granted.
    narrow = await ask_token(rt, alice, "tv-1", scopes=["devices:read"])
    assert set(narrow.json()["channels"]) == {"devices", "notifications"}
    # PUBNUB_TOKENS_PER_DEVICE (3 here): the fourth live token is refused.
    for _ in range(2):
        assert (await ask_token(rt, alice, "tv-1")).status_code == 200
    flood = await ask_token(rt, alice, "tv-1")
    assert flood.status_code == 429 and flood.json()["error"] == "too_many_tokens"
    assert len(rt.server.grants) == 3


async def test_realtime_info_names_the_token_route(rt: Realtime) -> None:
    alice = user()
    token = user_token(rt.settings, subject=alice, scopes=SCOPES)
    resp = await rt.http.get(f"/api/v1/users/{alice}/realtime", headers=bearer(token))
    assert resp.json()["transport"] == "pubnub"
    assert resp.json()["pubnub_token_url"] == f"/api/v1/users/{alice}/realtime/token"


async def test_without_access_manager_the_route_is_not_found(
    settings: Settings, topics_created: None
) -> None:
    alice = user()
    token = user_token(settings, subject=alice, scopes=SCOPES)
    async with running_gateway(settings) as (_, http):
        resp = await http.post(
            f"/api/v1/users/{alice}/realtime/token",
            headers=bearer(token) | {"X-Device-ID": "tv-1"},
        )
    assert resp.status_code == 404 and "realtime" in resp.json()["detail"]


# --- starting without a secret key ---------------------------------------------------------------

PUBNUB_MODE = {"PUBNUB_PUBLISH_KEY": "pub-x", "PUBNUB_SUBSCRIBE_KEY": "sub-x"}


def test_pubnub_mode_without_a_secret_key_refuses_to_load_unless_open_channels_are_allowed(
    service_env: dict[str, str],
) -> None:
    env = {**service_env, **PUBNUB_MODE, "PUBNUB_SECRET_KEY": ""}
    with pytest.raises(ConfigError) as refused:
        settings_with({k: v for k, v in env.items() if k != "PUBNUB_SECRET_KEY"})
    assert "PUBNUB_SECRET_KEY" in str(refused.value)
    assert "PUBNUB_ALLOW_OPEN_CHANNELS" in str(refused.value)
    opened = settings_with({**service_env, **PUBNUB_MODE, "PUBNUB_ALLOW_OPEN_CHANNELS": "true"})
    assert opened.pubnub.enabled and not opened.pubnub.access_manager
    secured = settings_with({**service_env, **PUBNUB_MODE, "PUBNUB_SECRET_KEY": "sec-x"})
    assert secured.pubnub.access_manager
    assert "sec-x" not in repr(secured.pubnub)


async def test_open_channels_start_with_a_warning_and_grant_no_tokens(
    settings: Settings, topics_created: None
) -> None:
    opened = settings.model_copy(
        update={
            "pubnub": PubNubSettings(
                publish_key="pub-x", subscribe_key="sub-x", allow_open_channels=True
            )
        }
    )
    logged: list[str] = []
    sink = logger.add(lambda m: logged.append(str(m)), level="WARNING")
    try:
        async with running_gateway(opened) as (_, http):
            alice = user()
            headers = bearer(user_token(opened, subject=alice, scopes=SCOPES))
            info = (await http.get(f"/api/v1/users/{alice}/realtime", headers=headers)).json()
            token = await http.post(
                f"/api/v1/users/{alice}/realtime/token", headers=headers | {"X-Device-ID": "tv-1"}
            )
    finally:
        logger.remove(sink)
    assert any("channels are OPEN" in line for line in logged)
    assert info["transport"] == "pubnub" and info["pubnub_token_url"] is None
    assert token.status_code == 404


def test_the_gateway_process_refuses_to_start_without_a_secret_key(
    service_env: dict[str, str],
) -> None:
    env = {**os.environ, **service_env, **PUBNUB_MODE, "GATEWAY_PORT": "0"}
    env.pop("PUBNUB_SECRET_KEY", None)
    env.pop("PUBNUB_ALLOW_OPEN_CHANNELS", None)
    mgw = [sys.executable, "-m", "cli.main", "gateway"]
    done = subprocess.run(mgw, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode != 0
    assert "PUBNUB_SECRET_KEY" in done.stdout + done.stderr
