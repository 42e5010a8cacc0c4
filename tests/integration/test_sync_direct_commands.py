"""The command router sends a command and its result itself right after its commit, and still
stages both on `sync.realtime`; the realtime-deliver agent then finds them claimed. Against the
real PostgreSQL, Redis, broker and (for PubNub) the real SDK on a loopback server: the command
reaches its target once whichever path runs, and when the direct delivery fails, or the worker
stops between the commit and the delivery, the staged copies deliver it exactly once."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any

import orjson
import pytest
import redis.asyncio as aioredis

from agents.adapters.delivery.fanout import RedisFanout
from agents.framework.context import AgentContext, ContextHolder
from agents.framework.unit_of_work import sweep_outbox, unit_of_work
from agents.sync.commands import decide
from agents.sync.handlers import REALTIME_SINK, command_router, realtime_delivery
from agreements.sync_realtime import live_channel
from core.config import Settings
from core.publisher import BrokerUnavailable, Publisher
from devtools.bench.sync_pubnub import LoopbackPubNub, PamKeys
from gateway.realtime.events import position, replay
from schemas.envelope import wrap
from schemas.sync import devices_channel, notifications_channel
from tests.integration.test_sync_agents import T0, env, info, issue, realtime, register
from topics.registry import SYNC_COMMAND_RESULTS

NOW = T0 + timedelta(seconds=2)


@pytest.fixture
async def ctx(settings: Settings, topics_created: None) -> AsyncIterator[AgentContext]:
    holder = ContextHolder(settings, source="test")
    yield (await holder.get()).for_agent("command-router")
    await holder.close()


@pytest.fixture
def user() -> str:
    return f"direct-{uuid.uuid4().hex[:10]}"


async def phone_and_tv(ctx: AgentContext, user: str) -> None:
    await register(ctx, user, info("phone-1", remote_controllable=True), 0)
    await register(ctx, user, info("tv-1", remote_controllable=True), 0)


async def stream(ctx: AgentContext, user: str, start: str) -> list[tuple[str, dict[str, Any]]]:
    """What the user's devices were sent since `start`: (kind, body) in delivery order."""
    got = await replay(ctx.redis, ctx.prefix, user, start)
    bodies = [orjson.loads(m.body) for m in got.messages]
    return [(b["kind"], b) for b in bodies if b["kind"] in ("command", "command_result")]


async def deliver_staged(ctx: AgentContext, user: str, at: datetime) -> None:
    """The realtime-deliver agent on what the router staged on `sync.realtime` for the user."""
    staged = [e for e in await realtime(ctx, user) if e.message.kind.startswith("command")]
    await realtime_delivery(lambda: at)(ctx, [wrap(e, key=user, source="test") for e in staged])


async def test_the_router_delivers_at_once_and_the_staged_copies_are_not_sent_again(
    ctx: AgentContext, user: str
) -> None:
    await phone_and_tv(ctx, user)
    start = await position(ctx.redis, ctx.prefix, user)
    live = ctx.redis.pubsub()
    await live.subscribe(live_channel(ctx.prefix, user))
    command = issue(user, {"type": "play"}, "tv-1", NOW)

    await command_router(lambda: NOW)(ctx, [env(command, user)])
    # Sent before any deliver agent ran: the command first, then the result to its sender.
    sent = await stream(ctx, user, start)
    assert [(kind, b["command_id"]) for kind, b in sent] == [
        ("command", str(command.command_id)),
        ("command_result", str(command.command_id)),
    ]
    assert sent[1][1]["status"] == "delivered"

    # The change feed still carries both, and the deliver agent skips them (twice: a
    # redelivered batch too); even long after expiry it does not turn `delivered` into
    # `expired`, because the command was sent in time.
    for at in (NOW, NOW + timedelta(seconds=30)):
        await deliver_staged(ctx, user, at)
    assert await stream(ctx, user, start) == sent
    heard = []
    # The subscription's confirmation also reads as None: listen for a while, not until None.
    deadline = asyncio.get_running_loop().time() + 0.5
    while (left := deadline - asyncio.get_running_loop().time()) > 0:
        message = await live.get_message(ignore_subscribe_messages=True, timeout=left)
        if message is not None:
            heard.append(message)
    await live.aclose()
    # Live subscribers (the gateways) heard each message once too.
    assert len(heard) == 2


async def test_a_failed_direct_delivery_is_made_by_the_deliver_agent_once(
    ctx: AgentContext, user: str
) -> None:
    await phone_and_tv(ctx, user)
    start = await position(ctx.redis, ctx.prefix, user)
    # The router's Redis is unreachable when it delivers (a real client, a closed port); the
    # commit and the staging went through PostgreSQL and Kafka.
    unreachable = aioredis.from_url("redis://127.0.0.1:1", socket_connect_timeout=0.5)
    router = AgentContext(ctx.settings, ctx.pool, ctx.publisher, unreachable, "command-router")
    command = issue(user, {"type": "play"}, "tv-1", NOW)
    try:
        await command_router(lambda: NOW)(router, [env(command, user)])
        assert isinstance(router.use(REALTIME_SINK), RedisFanout)
    finally:
        await unreachable.aclose()
    assert await stream(ctx, user, start) == []

    await deliver_staged(ctx, user, NOW + timedelta(seconds=1))
    await deliver_staged(ctx, user, NOW + timedelta(seconds=1))
    sent = await stream(ctx, user, start)
    assert [(kind, b["command_id"]) for kind, b in sent] == [
        ("command", str(command.command_id)),
        ("command_result", str(command.command_id)),
    ]


async def test_what_was_neither_published_nor_delivered_after_the_commit_the_sweep_delivers(
    ctx: AgentContext, user: str
) -> None:
    await phone_and_tv(ctx, user)
    start = await position(ctx.redis, ctx.prefix, user)
    lost, direct = (issue(user, {"type": "play"}, "tv-1", NOW) for _ in range(2))
    # The worker is going away: the decisions commit, the publish is refused, so the handler
    # fails (the loop will retry the batch) and the outbox rows stay.
    stopping = Publisher(ctx.settings.kafka, source="test")
    stopping.refuse_from_now("the worker is stopping")
    unreachable = aioredis.from_url("redis://127.0.0.1:1", socket_connect_timeout=0.5)
    # `lost`: Redis is cut off too, so nothing follows the commit (as when the process dies
    # right after it). `direct`: the direct delivery still goes out.
    crashed = AgentContext(ctx.settings, ctx.pool, stopping, unreachable, "command-router")
    try:
        with pytest.raises(BrokerUnavailable):
            await command_router(lambda: NOW)(crashed, [env(lost, user)])
    finally:
        await unreachable.aclose()
    with pytest.raises(BrokerUnavailable):
        await command_router(lambda: NOW)(
            dataclasses.replace(ctx, publisher=stopping), [env(direct, user)]
        )
    assert [(k, b["command_id"]) for k, b in await stream(ctx, user, start)] == [
        ("command", str(direct.command_id)),
        ("command_result", str(direct.command_id)),
    ]
    decided = "SELECT count(*) FROM sync_commands WHERE command_id = ANY($1::uuid[])"
    assert await ctx.pool.fetchval(decided, [lost.command_id, direct.command_id]) == 2
    # The batches are retried: decided before, so neither decided nor sent again.
    await command_router(lambda: NOW)(ctx, [env(lost, user), env(direct, user)])
    assert len(await stream(ctx, user, start)) == 2

    # The outbox sweep publishes rows older than SWEEP_MIN_AGE_S (aged here, not waited for).
    await ctx.pool.execute(
        "UPDATE outbox SET created_at = created_at - interval '1 minute' WHERE key = $1", user
    )
    assert await sweep_outbox(ctx.pool, ctx.publisher) >= 6
    await deliver_staged(ctx, user, NOW + timedelta(seconds=1))
    await deliver_staged(ctx, user, NOW + timedelta(seconds=1))
    sent = await stream(ctx, user, start)
    assert [(kind, b["command_id"], b.get("status")) for kind, b in sent] == [
        ("command", str(direct.command_id), None),
        ("command_result", str(direct.command_id), "delivered"),
        ("command", str(lost.command_id), None),
        ("command_result", str(lost.command_id), "delivered"),
    ]


async def test_on_pubnub_a_refused_direct_publish_is_sent_once_by_the_deliver_agent(
    settings: Settings, topics_created: None, user: str
) -> None:
    keys = PamKeys("pub-test", "sub-test", f"sec-{uuid.uuid4().hex}")
    async with LoopbackPubNub(keys) as server:
        pubnub = server.client_settings()
        holder = ContextHolder(settings.model_copy(update={"pubnub": pubnub}), source="test")
        ctx = (await holder.get()).for_agent("command-router")
        try:
            await phone_and_tv(ctx, user)
            refused, direct = (issue(user, {"type": "play"}, "tv-1", NOW) for _ in range(2))
            # PubNub answers the router's first publish 503: the claim is released, the
            # command's result is not tried (it must not overtake its command).
            server.fail_next(503)
            await command_router(lambda: NOW)(ctx, [env(refused, user)])
            assert server.messages(devices_channel(user)) == []
            assert server.messages(notifications_channel(user)) == []
            # The next command goes straight through.
            await command_router(lambda: NOW)(ctx, [env(direct, user)])
            assert [m["command_id"] for m in server.messages(devices_channel(user))] == [
                str(direct.command_id)
            ]

            await deliver_staged(ctx, user, NOW + timedelta(seconds=1))
            await deliver_staged(ctx, user, NOW + timedelta(seconds=1))
            await asyncio.sleep(0.1)
            commands = [m["command_id"] for m in server.messages(devices_channel(user))]
            results = [m["command_id"] for m in server.messages(notifications_channel(user))]
            assert sorted(commands) == sorted(str(c.command_id) for c in (refused, direct))
            assert sorted(results) == sorted(commands)
            assert server.refusals == []
        finally:
            await holder.close()


async def test_a_failing_step_after_the_commit_does_not_keep_the_events_from_the_topic(
    ctx: AgentContext, user: str
) -> None:
    # The framework's side of it (agents/framework/unit_of_work.py): a step failing outside its
    # own handling is logged, the unit's events are published all the same.
    ran: list[str] = []

    async def fails() -> None:
        raise ConnectionError("the devices cannot be reached")

    async def succeeds() -> None:
        ran.append("step")

    command = issue(user, {"type": "play"}, "tv-1", NOW)
    result = decide(command, {}, NOW)
    async with unit_of_work(ctx) as uow:
        uow.emit(SYNC_COMMAND_RESULTS, result, key=user)
        uow.then(fails)
        uow.then(succeeds)
    assert uow.published == 1 and ran == ["step"]
    assert await ctx.pool.fetchval("SELECT count(*) FROM outbox WHERE key = $1", user) == 0


async def test_on_pubnub_the_agent_sends_no_result_while_the_router_publishes_its_command(
    settings: Settings, topics_created: None, user: str
) -> None:
    keys = PamKeys("pub-test", "sub-test", f"sec-{uuid.uuid4().hex}")
    async with LoopbackPubNub(keys) as server:
        pubnub = server.client_settings()
        holder = ContextHolder(settings.model_copy(update={"pubnub": pubnub}), source="test")
        ctx = (await holder.get()).for_agent("command-router")
        try:
            await phone_and_tv(ctx, user)
            command = issue(user, {"type": "play"}, "tv-1", NOW)
            # PubNub is slow: the router's publish of the command waits.
            server.hold()
            routing = asyncio.create_task(command_router(lambda: NOW)(ctx, [env(command, user)]))
            outbox_rows = "SELECT count(*) FROM outbox WHERE key = $1"
            for _ in range(200):
                if server.publishes_waiting and not await ctx.pool.fetchval(outbox_rows, user):
                    break
                await asyncio.sleep(0.02)
            # The staged copies reach the agent meanwhile: the router holds both claims (the
            # result's too), so the agent sends neither, and does not wait on PubNub.
            await asyncio.wait_for(deliver_staged(ctx, user, NOW + timedelta(seconds=1)), 5)
            server.let_go()
            await asyncio.wait_for(routing, 10)
            ours = [p for p in server.published if p.channel.startswith(f"user.{user}.")]
            assert [(p.channel, p.payload["kind"]) for p in ours] == [
                (devices_channel(user), "command"),
                (notifications_channel(user), "command_result"),
            ]
        finally:
            server.let_go()
            await holder.close()
