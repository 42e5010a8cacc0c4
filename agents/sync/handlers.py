"""Handlers of cross-device sync (group sync): merge watchlist, progress and device operations
into PostgreSQL and the Redis read models, route remote commands, deliver realtime messages,
answer read-model misses, and notice devices that went silent.

Each merge runs in one unit of work per batch: lock the batch's users, load the rows it
touches, merge with the rules of agents/sync, write back what changed and stage a realtime
event per change (agents/sync/batches.py). Read-model documents are written after the commit,
for every user of the batch (changed or not), so a batch retried after a Redis failure still
leaves Redis right.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Collection
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
from loguru import logger

from agents.adapters.delivery.base import RealtimeSink
from agents.framework.applied import first_seen, forget_before
from agents.framework.context import AgentContext
from agents.framework.resources import Resource
from agents.framework.runtime import TAKE_WHAT_IS_READY, AgentSpec, TimerSpec
from agents.framework.unit_of_work import unit_of_work
from agents.sync import batches, store
from agents.sync.devices import DeviceRecord, went_offline
from agents.sync.messages import message_id, realtime_event, to_deliver
from agents.sync.presence import ONLINE_TIMEOUT_S
from agents.sync.progress import is_complete
from agents.sync.views import continue_watching_document, devices_document, watchlist_document
from agreements.sync_documents import CONTINUE_WATCHING_MAX
from schemas.envelope import Envelope
from schemas.sync import SyncView
from topics.registry import (
    SYNC_COMMANDS,
    SYNC_DEVICE_HEARTBEATS,
    SYNC_DEVICE_REMOVALS,
    SYNC_DEVICES,
    SYNC_LOOKUP,
    SYNC_PROGRESS,
    SYNC_REALTIME,
    SYNC_WATCHLIST,
)

Clock = Callable[[], datetime]


def utcnow() -> datetime:
    return datetime.now(UTC)


def _log_merge(agent: str, batch: list[Envelope[Any]], merged: batches.Merged) -> None:
    logger.bind(agent=agent).debug(
        "{}: {} operation(s), {} change(s), {} message(s)",
        agent,
        len(batch),
        len(merged.rows),
        len(merged.events),
    )


# --- watchlist and progress ----------------------------------------------------------------------


Documents = dict[str, tuple[int, bytes]]


async def _render_watchlists(
    conn: asyncpg.Connection, users: Collection[str], changed: Collection[str]
) -> Documents:
    versions = await store.versions(conn, SyncView.watchlist, users, changed)
    out = {}
    for user in users:
        document = watchlist_document(user, versions[user], await store.visible_titles(conn, user))
        out[user] = (versions[user], document.model_dump_json().encode())
    return out


async def merge_watchlist(ctx: AgentContext, batch: list[Envelope[Any]]) -> None:
    """OR-Set operations into each user's watchlist; one message per operation that changed it."""
    users = {env.payload.user_id for env in batch}
    async with unit_of_work(ctx) as uow:
        await store.lock_users(uow.conn, users)
        # A retry (same Idempotency-Key) is stamped anew at the gateway: only its id repeats.
        batch = await first_seen(uow.conn, ctx.agent, batch)
        stored = await store.load_titles(
            uow.conn, [(env.payload.user_id, env.payload.content_id) for env in batch]
        )
        merged = batches.watchlist(stored, batch)
        await store.save_titles(uow.conn, list(merged.rows.values()))
        documents = await _render_watchlists(uow.conn, users, merged.changed_users)
        uow.add(merged.events)
    await store.write_views(ctx.redis, ctx.prefix, SyncView.watchlist, documents)
    _log_merge(ctx.agent, batch, merged)


async def _render_progress(
    conn: asyncpg.Connection, users: Collection[str], changed: Collection[str]
) -> Documents:
    versions = await store.versions(conn, SyncView.progress, users, changed)
    out = {}
    for user in users:
        positions = await store.open_positions(conn, user, CONTINUE_WATCHING_MAX)
        document = continue_watching_document(user, versions[user], positions)
        out[user] = (versions[user], document.model_dump_json().encode())
    return out


async def merge_progress(ctx: AgentContext, batch: list[Envelope[Any]]) -> None:
    """Playback positions into each (user, title) register; a message per winning update."""
    users = {env.payload.user_id for env in batch}
    async with unit_of_work(ctx) as uow:
        await store.lock_users(uow.conn, users)
        batch = await first_seen(uow.conn, ctx.agent, batch)
        stored = await store.load_positions(
            uow.conn, [(env.payload.user_id, env.payload.content_id) for env in batch]
        )
        merged = batches.progress(stored, batch)
        winners = list(merged.rows.values())
        await store.save_positions(uow.conn, winners, [is_complete(p) for p in winners])
        documents = await _render_progress(uow.conn, users, merged.changed_users)
        uow.add(merged.events)
    await store.write_views(ctx.redis, ctx.prefix, SyncView.progress, documents)
    _log_merge(ctx.agent, batch, merged)


# --- devices -------------------------------------------------------------------------------------


def _device_documents(
    devices: dict[str, dict[str, DeviceRecord]], versions: dict[str, int], now: datetime
) -> Documents:
    return {
        user: (
            versions[user],
            devices_document(user, versions[user], devices.get(user, {}).values(), now)
            .model_dump_json()
            .encode(),
        )
        for user in versions
    }


def device_handler(clock: Clock = utcnow) -> Callable[[AgentContext, list[Envelope[Any]]], Any]:
    """Registrations, heartbeats or removals (one topic each) into the device records."""

    async def merge_devices(ctx: AgentContext, batch: list[Envelope[Any]]) -> None:
        now = clock()
        users = {env.payload.user_id for env in batch}
        async with unit_of_work(ctx) as uow:
            await store.lock_users(uow.conn, users)
            devices = await store.load_devices(uow.conn, users)
            stored = {
                (user, device_id): record
                for user, records in devices.items()
                for device_id, record in records.items()
            }
            merged = batches.devices(stored, batch, now)
            await store.save_devices(uow.conn, list(merged.rows.values()))
            for (user, device_id), record in merged.rows.items():
                devices.setdefault(user, {})[device_id] = record
            versions = await store.versions(uow.conn, SyncView.devices, users, merged.changed_users)
            uow.add(merged.events)
        documents = _device_documents(devices, versions, now)
        # The ownership check first: a device the document lists is never refused.
        await store.write_device_register(ctx.redis, ctx.prefix, users, devices)
        await store.write_views(ctx.redis, ctx.prefix, SyncView.devices, documents)
        _log_merge(ctx.agent, batch, merged)

    return merge_devices


_PRESENCE = uuid.UUID(int=0)


def presence_sweep(clock: Clock = utcnow) -> Callable[[AgentContext], Any]:
    """Announce, on each user's devices channel, the devices silent for ONLINE_TIMEOUT_S."""

    async def sweep(ctx: AgentContext) -> int:
        now = clock()
        cutoff = now - timedelta(seconds=ONLINE_TIMEOUT_S)
        async with unit_of_work(ctx) as uow:
            silent = await store.silent_devices(uow.conn, cutoff, limit=1000)
            marked = await store.announce_offline(uow.conn, silent)
            for record in marked:
                # Named by the last heartbeat: one offline message per silence, however often
                # an interrupted sweep runs again.
                ident = message_id(
                    _PRESENCE, f"{record.user_id}:{record.device_id}:{record.last_seen.isoformat()}"
                )
                uow.add(realtime_event(record.user_id, went_offline(record), ident, now))
        for record in marked:
            logger.info(
                "device {} of {} offline: no heartbeat since {}",
                record.device_id,
                record.user_id,
                record.last_seen.isoformat(),
            )
        return len(marked)

    return sweep


# --- remote commands -----------------------------------------------------------------------------


def command_router(clock: Clock = utcnow) -> Callable[[AgentContext, list[Envelope[Any]]], Any]:
    """Validate each command against its user's devices (docs/RULES.md's order), deliver it to its
    target and its result to its sender; a command is decided once, whatever redelivers it."""

    async def route_commands(ctx: AgentContext, batch: list[Envelope[Any]]) -> None:
        users = {env.payload.user_id for env in batch}
        async with unit_of_work(ctx) as uow:
            await store.lock_users(uow.conn, users)
            decided = await store.decided_commands(
                uow.conn, [env.payload.command_id for env in batch]
            )
            devices = await store.load_devices(uow.conn, users)
            routed = batches.commands(batch, devices, decided, clock())
            await store.save_decisions(uow.conn, routed.decisions)
            uow.add(routed.events)
        for issued, result in routed.decisions:
            logger.bind(command_id=str(issued.command_id)).info(
                "command {} {} -> {}: {}{}",
                issued.command.type,
                issued.source_device_id,
                issued.target_device_id,
                result.status.value,
                f" ({result.error.value})" if result.error else "",
            )

    return route_commands


async def prune_commands(ctx: AgentContext) -> int:
    """Forget decisions older than the command topic keeps records (nothing can redeliver),
    and applied operations older than the watchlist and progress topics keep theirs."""
    horizon = SYNC_COMMANDS.retention_ms or 0
    cutoff = utcnow() - timedelta(milliseconds=horizon) - timedelta(hours=1)
    kept = max(SYNC_WATCHLIST.retention_ms or 0, SYNC_PROGRESS.retention_ms or 0)
    await forget_before(
        ctx.pool,
        ("sync-watchlist", "sync-progress"),
        utcnow() - timedelta(milliseconds=kept) - timedelta(hours=1),
    )
    return await store.prune_commands(ctx.pool, cutoff)


# --- realtime delivery ---------------------------------------------------------------------------


def _open_sink(ctx: AgentContext) -> RealtimeSink:
    """PubNub when PUBNUB_PUBLISH_KEY and PUBNUB_SUBSCRIBE_KEY are set, else the built-in
    fan-out over Redis (the embedded default, tests). Both use the same channel names and
    message bodies, so a client app works against either."""
    pubnub = ctx.settings.pubnub
    if pubnub.publish_key and pubnub.subscribe_key:
        from agents.adapters.delivery.pubnub import PubNubSink

        return PubNubSink(pubnub, ctx.redis, ctx.prefix)
    from agents.adapters.delivery.fanout import RedisFanout

    return RedisFanout(ctx.redis, ctx.prefix)


async def _close_sink(sink: RealtimeSink) -> None:
    await sink.close()


# The worker's one way to reach devices (agents/adapters/delivery/), chosen when it first
# delivers.
REALTIME_SINK: Resource[RealtimeSink] = Resource(
    "realtime-sink", open=_open_sink, close=_close_sink
)


def realtime_delivery(clock: Clock = utcnow) -> Callable[[AgentContext, list[Envelope[Any]]], Any]:
    async def deliver_realtime(ctx: AgentContext, batch: list[Envelope[Any]]) -> None:
        events = to_deliver([env.payload for env in batch], clock())
        if len(events) < len(batch):
            logger.warning(
                "{} command(s) expired before delivery; their senders hear `expired`",
                len(batch) - len(events),
            )
        await ctx.use(REALTIME_SINK).deliver(events)

    return deliver_realtime


# --- read-model misses ---------------------------------------------------------------------------


async def _load_view(ctx: AgentContext, view: SyncView, user_id: str) -> tuple[int, bytes]:
    """The user's document from PostgreSQL, its version read first in the same snapshot."""
    async with (
        ctx.pool.acquire() as conn,
        conn.transaction(isolation="repeatable_read", readonly=True),
    ):
        version = await store.current_version(conn, view, user_id)
        if view is SyncView.watchlist:
            doc = watchlist_document(user_id, version, await store.visible_titles(conn, user_id))
        elif view is SyncView.progress:
            positions = await store.open_positions(conn, user_id, CONTINUE_WATCHING_MAX)
            doc = continue_watching_document(user_id, version, positions)
        else:
            devices = await store.load_devices(conn, [user_id])
            doc = devices_document(user_id, version, devices.get(user_id, {}).values(), utcnow())
    if view is SyncView.devices:
        # Loaded for a miss: the gateway's ownership check gets the user's devices too.
        await store.write_device_register(ctx.redis, ctx.prefix, [user_id], devices)
    return version, doc.model_dump_json().encode()


async def answer_lookups(ctx: AgentContext, batch: list[Envelope[Any]]) -> None:
    """Load each asked-for view into Redis and answer on the request's reply channel."""
    for env in batch:
        request = env.payload
        version, body = await _load_view(ctx, request.view, request.user_id)
        held = await store.write_views(
            ctx.redis, ctx.prefix, request.view, {request.user_id: (version, body)}
        )
        await ctx.redis.publish(request.reply_channel, held[request.user_id])
        logger.bind(correlation_id=env.correlation_id).debug(
            "{} of {} loaded into the read model (version {})",
            request.view.value,
            request.user_id,
            version,
        )


AGENTS = [
    AgentSpec(
        name="sync-watchlist",
        group="sync",
        topic=SYNC_WATCHLIST,
        handler=merge_watchlist,
        batch_within_s=TAKE_WHAT_IS_READY,
        description="merges watchlist OR-Set operations; announces changes on user.{id}.sync",
    ),
    AgentSpec(
        name="sync-progress",
        group="sync",
        topic=SYNC_PROGRESS,
        handler=merge_progress,
        batch_within_s=TAKE_WHAT_IS_READY,
        description="merges playback positions (LWW per title); announces changes",
    ),
    *(
        AgentSpec(
            name=name,
            group="sync",
            topic=topic,
            handler=device_handler(),
            batch_within_s=TAKE_WHAT_IS_READY,
            description=description,
        )
        for name, topic, description in (
            ("sync-device-register", SYNC_DEVICES, "registers devices; announces them online"),
            ("sync-device-heartbeat", SYNC_DEVICE_HEARTBEATS, "keeps devices online"),
            ("sync-device-remove", SYNC_DEVICE_REMOVALS, "removes devices; announces it"),
        )
    ),
    AgentSpec(
        name="command-router",
        group="sync",
        topic=SYNC_COMMANDS,
        handler=command_router(),
        batch_within_s=TAKE_WHAT_IS_READY,
        description="validates remote commands, delivers each once to its target device",
    ),
    AgentSpec(
        name="realtime-deliver",
        group="sync",
        topic=SYNC_REALTIME,
        handler=realtime_delivery(),
        batch_within_s=TAKE_WHAT_IS_READY,
        description="sends each realtime message once, in order, through PubNub or the fan-out",
    ),
    AgentSpec(
        name="sync-lookup",
        group="sync",
        topic=SYNC_LOOKUP,
        handler=answer_lookups,
        batch_within_s=TAKE_WHAT_IS_READY,
        description="answers the gateway's sync read-model misses from PostgreSQL",
    ),
]

TIMERS = [
    TimerSpec(
        name="presence-sweep", group="sync", interval_s=5.0, run=presence_sweep(), at_start=True
    ),
    TimerSpec(name="command-prune", group="sync", interval_s=3600.0, run=prune_commands),
]
