"""Realtime delivery on both paths: the built-in fan-out in the real Redis, and PubNub through
the real `pubnub` SDK against a loopback server speaking PubNub's HTTP protocol (which pings the
alerts a profile of the account may not see)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from pubnub.callbacks import SubscribeCallback
from pubnub.pnconfiguration import PNConfiguration
from pubnub.pubnub_asyncio import PubNubAsyncio

from agents.adapters.delivery.base import RealtimeUnavailable
from agents.adapters.delivery.fanout import RedisFanout
from agents.adapters.delivery.pubnub import PubNubSink
from agents.framework.context import AgentContext, ContextHolder
from agents.sync.handlers import REALTIME_SINK, realtime_delivery
from agreements.profiles_read_model import profiles_key, render_profiles
from agreements.pubnub_access import PubNubAccess
from agreements.sync_realtime import epoch_key
from core.config import PubNubSettings, Settings
from devtools.bench.sync_pubnub import LoopbackPubNub, PamKeys
from gateway.realtime.events import position, replay
from gateway.realtime.hub import RealtimeHub
from gateway.realtime.sse import EventStream, StreamRequest
from schemas.accounts import Profile, ProfileKind, ProfileLimits
from schemas.content import MaturityRating
from schemas.envelope import wrap
from schemas.notifications import AlertKind, Notification
from schemas.sync import (
    HLC,
    CommandMessage,
    NotificationMessage,
    ProgressMessage,
    RealtimeEvent,
    devices_channel,
    notifications_channel,
    sync_channel,
)

NOW = datetime.now(UTC)


@pytest.fixture
async def ctx(settings: Settings, topics_created: None) -> AsyncIterator[AgentContext]:
    holder = ContextHolder(settings, source="test")
    yield (await holder.get()).for_agent("realtime-test")
    await holder.close()


def user() -> str:
    return f"rt-{uuid.uuid4().hex[:10]}"


def progress_event(user_id: str, n: int) -> RealtimeEvent:
    message = ProgressMessage(
        content_id=uuid.UUID(int=n),
        position_seconds=float(n),
        duration_seconds=100.0,
        state="playing",
        timestamp=HLC(physical_us=n + 1),
        device_id="tv-1",
    )
    return RealtimeEvent(user_id=user_id, message_id=uuid.uuid4(), message=message, occurred_at=NOW)


def command_event(user_id: str, target: str, expires_at: datetime) -> RealtimeEvent:
    message = CommandMessage(
        command_id=uuid.uuid4(),
        source_device_id="phone-1",
        target_device_id=target,
        command={"type": "play"},
        expires_at=expires_at,
    )
    return RealtimeEvent(
        user_id=user_id, message_id=message.command_id, message=message, occurred_at=NOW
    )


# --- the built-in fan-out ------------------------------------------------------------------------


async def test_the_fan_out_delivers_each_message_once_and_replays_what_a_device_missed(
    ctx: AgentContext,
) -> None:
    alice, bob = user(), user()
    sink = ctx.use(REALTIME_SINK)
    assert isinstance(sink, RedisFanout)
    start = await position(ctx.redis, ctx.prefix, alice)
    events = [progress_event(alice, n) for n in range(3)]
    assert await sink.deliver([*events, progress_event(bob, 9)]) == 4
    # Delivered again (a redelivered batch, an outbox sweep): nothing is sent twice.
    assert await sink.deliver(events) == 0

    missed = await replay(ctx.redis, ctx.prefix, alice, start)
    assert missed.complete
    assert [orjson.loads(m.body)["position_seconds"] for m in missed.messages] == [0, 1, 2]
    assert {m.channel for m in missed.messages} == {sync_channel(alice)}
    # From the second message on: only the third.
    later = await replay(ctx.redis, ctx.prefix, alice, missed.messages[1].event_id)
    assert [m.event_id for m in later.messages] == [missed.messages[2].event_id]

    # Redis lost the stream (a restart): an old id cannot be caught up; the device must resync.
    await ctx.redis.delete(epoch_key(ctx.prefix, alice))
    await sink.deliver([progress_event(alice, 4)])
    assert not (await replay(ctx.redis, ctx.prefix, alice, start)).complete


async def test_an_id_ahead_of_the_stream_cannot_be_caught_up(ctx: AgentContext) -> None:
    alice = user()
    empty = await position(ctx.redis, ctx.prefix, alice)
    epoch = empty.split(":")[0]
    # No message yet: an id at or past Redis's time is ahead of every message to come.
    assert not (await replay(ctx.redis, ctx.prefix, alice, f"{epoch}:9999999999999-0")).complete
    assert (await replay(ctx.redis, ctx.prefix, alice, empty)).complete

    await ctx.use(REALTIME_SINK).deliver([progress_event(alice, 1)])
    newest = await position(ctx.redis, ctx.prefix, alice)
    ms, seq = (int(n) for n in newest.split(":")[1].split("-"))
    assert (await replay(ctx.redis, ctx.prefix, alice, newest)).complete
    for ahead in (f"{ms}-{seq + 1}", f"{ms + 1}-0", f"{2**64 - 1}-{2**64 - 1}"):
        missed = await replay(ctx.redis, ctx.prefix, alice, f"{epoch}:{ahead}")
        assert missed.gap is not None and "ahead" in missed.gap, ahead


async def test_a_stream_resumed_from_an_id_ahead_resyncs_then_hears_what_follows(
    ctx: AgentContext,
) -> None:
    alice = user()
    sink = ctx.use(REALTIME_SINK)
    await sink.deliver([progress_event(alice, 1)])
    epoch = (await position(ctx.redis, ctx.prefix, alice)).split(":")[0]
    hub = RealtimeHub(ctx.settings.redis.require_url(), ctx.prefix)
    request = StreamRequest(
        alice, None, frozenset({sync_channel(alice)}), f"{epoch}:9999999999999-0"
    )
    chunks = EventStream(hub, ctx.redis, ctx.prefix, request).__aiter__()
    try:
        assert (await anext(chunks)).startswith(b"retry:")
        resync, ready = await anext(chunks), await anext(chunks)
        assert b"event: resync\n" in resync and b"ahead" in resync
        assert b"event: ready\n" in ready
        await sink.deliver([progress_event(alice, 2)])
        live = await asyncio.wait_for(anext(chunks), 5)
        assert f"event: {sync_channel(alice)}".encode() in live
        assert orjson.loads(live.split(b"data: ")[1])["position_seconds"] == 2
    finally:
        await chunks.aclose()
        await hub.close()


async def test_expired_commands_are_not_delivered(ctx: AgentContext) -> None:
    alice = user()
    start = await position(ctx.redis, ctx.prefix, alice)
    now = NOW + timedelta(seconds=30)
    fresh = command_event(alice, "tv-1", now + timedelta(seconds=3))
    stale = command_event(alice, "tv-1", now - timedelta(seconds=1))
    deliver = realtime_delivery(lambda: now)
    await deliver(ctx, [wrap(e, key=alice, source="test") for e in (stale, fresh)])
    missed = await replay(ctx.redis, ctx.prefix, alice, start)
    bodies = [orjson.loads(m.body) for m in missed.messages]
    assert [b["command_id"] for b in bodies] == [str(fresh.message.command_id)]
    assert missed.messages[0].addressed_to == "tv-1"
    assert missed.messages[0].channel == devices_channel(alice)


# --- PubNub --------------------------------------------------------------------------------------


class Listener(SubscribeCallback):
    def __init__(self) -> None:
        self.messages: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()

    def status(self, pubnub: Any, status: Any) -> None:
        pass

    def presence(self, pubnub: Any, presence: Any) -> None:
        pass

    def message(self, pubnub: Any, message: Any) -> None:
        self.messages.put_nowait((message.channel, message.message))


def subscriber(server: LoopbackPubNub, device: str, token: str) -> tuple[PubNubAsyncio, Listener]:
    config = PNConfiguration()
    config.subscribe_key = "sub-test"
    config.user_id = device
    config.origin = server.origin
    config.ssl = False
    config.disable_config_locking = False
    client = PubNubAsyncio(config)
    client.set_token(token)
    listener = Listener()
    client.add_listener(listener)
    return client, listener


async def drain(listener: Listener, count: int, wait_s: float = 5.0) -> list[tuple[str, Any]]:
    got = []
    for _ in range(count):
        got.append(await asyncio.wait_for(listener.messages.get(), wait_s))
    return got


async def test_pubnub_delivers_through_the_real_sdk_in_order_and_only_to_the_users_channels(
    settings: Settings, topics_created: None
) -> None:
    # Access Manager on: the sink's publishes are signed with the secret key, and Alice's TV
    # subscribes with a token granting read on her channels (the grant is the gateway's job,
    # tests/integration/test_realtime_tokens.py; here the secret key grants it directly).
    keys = PamKeys("pub-test", "sub-test", f"sec-{uuid.uuid4().hex}")
    async with LoopbackPubNub(keys) as server:
        pubnub = server.client_settings()
        holder = ContextHolder(replace_settings(settings, pubnub), source="test")
        ctx = (await holder.get()).for_agent("realtime-pubnub-test")
        alice, bob = user(), user()
        access = PubNubAccess(pubnub, "test")
        token = await access.grant_read(
            [sync_channel(alice), devices_channel(alice)], 5, {"device": "alice-tv"}
        )
        await access.close()
        tv, listener = subscriber(server, "alice-tv", token)
        try:
            tv.subscribe().channels([sync_channel(alice), devices_channel(alice)]).execute()
            await wait_subscribed(server)
            sink = ctx.use(REALTIME_SINK)
            assert isinstance(sink, PubNubSink)

            first = [progress_event(alice, n) for n in range(3)]
            await sink.deliver([*first, progress_event(bob, 7)])
            got = await drain(listener, 3)
            assert [m["position_seconds"] for _, m in got] == [0, 1, 2]
            assert {c for c, _ in got} == {sync_channel(alice)}
            # The body is the message exactly as the fan-out's streams carry it.
            assert got[0][1] == orjson.loads(first[0].message.model_dump_json())

            # PubNub fails the second publish: the third must not overtake it.
            second = [progress_event(alice, n) for n in range(10, 13)]
            server.fail_next(503)
            with pytest.raises(RealtimeUnavailable):
                await sink.deliver(second)
            # The retry (the agent loop retries the batch) sends what was not sent, in order.
            await sink.deliver(second)
            got = await drain(listener, 3)
            assert [m["position_seconds"] for _, m in got] == [10, 11, 12]
            # Bob's message never reached Alice's subscriber; nothing else is pending.
            await asyncio.sleep(0.3)
            assert listener.messages.empty()
            assert len(server.messages(sync_channel(alice))) == 6
            assert len(server.messages(sync_channel(bob))) == 1
            # Every publish was signed and every subscribe carried a granting token.
            assert server.refusals == []
        finally:
            await tv.stop()
            await holder.close()


def replace_settings(settings: Settings, pubnub: PubNubSettings) -> Settings:
    return settings.model_copy(update={"pubnub": pubnub})


async def wait_subscribed(server: LoopbackPubNub) -> None:
    # The handshake (tt=0) and the first long-poll: the subscriber now hears every publish.
    for _ in range(100):
        if server.subscribes >= 2:
            return
        await asyncio.sleep(0.02)
    raise TimeoutError("the subscriber never long-polled")


def alert_event(user_id: str, rating: MaturityRating) -> RealtimeEvent:
    note = Notification(
        notification_id=uuid.uuid4(),
        kind=AlertKind.arrived,
        content_id=uuid.uuid4(),
        title=f"Rated {rating.value}",
        content_rating=rating,
        genres=["drama"],
        platform="netflix",
        region="US",
        offer_types=["subscription"],
        created_at=NOW,
    )
    message = NotificationMessage(notification=note)
    return RealtimeEvent(
        user_id=user_id, message_id=note.notification_id, message=message, occurred_at=NOW
    )


async def test_pubnub_pings_alerts_a_profile_of_the_account_may_not_see(
    settings: Settings, topics_created: None
) -> None:
    # The sink reads each account's profiles from the read model the accounts agents write:
    # Alice has a kids profile, Bob none, Carol one this code cannot read.
    keys = PamKeys("pub-test", "sub-test", f"sec-{uuid.uuid4().hex}")
    async with LoopbackPubNub(keys) as server:
        holder = ContextHolder(replace_settings(settings, server.client_settings()), source="test")
        ctx = (await holder.get()).for_agent("realtime-pubnub-kids-test")
        alice, bob, carol = user(), user(), user()
        kids = ProfileLimits(content_rating_limit=MaturityRating.PG)
        kid = Profile(profile_id="kid", kind=ProfileKind.kids, limits=kids)
        await render_profiles(ctx.redis, ctx.prefix, {alice: [kid]})
        await ctx.redis.hset(profiles_key(ctx.prefix, carol), "kid", b'{"profile_id": 7}')
        try:
            sink = ctx.use(REALTIME_SINK)
            assert isinstance(sink, PubNubSink)
            sent = {
                who: [alert_event(who, MaturityRating.R), alert_event(who, MaturityRating.G)]
                for who in (alice, bob, carol)
            }
            assert await sink.deliver([e for events in sent.values() for e in events]) == 6

            def ping(event: RealtimeEvent) -> dict[str, Any]:
                return {
                    "kind": "notification_ping",
                    "notifications": [
                        {"notification_id": str(event.message_id), "kind": "arrived"}
                    ],
                }

            def whole(event: RealtimeEvent) -> Any:
                return orjson.loads(event.message.model_dump_json())

            r_rated, rated_g = sent[alice]
            assert server.messages(notifications_channel(alice)) == [ping(r_rated), whole(rated_g)]
            assert server.messages(notifications_channel(bob)) == [whole(e) for e in sent[bob]]
            assert server.messages(notifications_channel(carol)) == [ping(e) for e in sent[carol]]
        finally:
            await holder.close()
