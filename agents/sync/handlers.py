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

from agents.adapters.delivery.pubnub_tokens import TokenRevoker
from agents.adapters.delivery.sink import REALTIME_SINK
from agents.framework.applied import first_seen, forget_before
from agents.framework.context import AgentContext
from agents.framework.resources import Resource
from agents.framework.runtime import TAKE_WHAT_IS_READY, AgentSpec, TimerSpec
from agents.framework.unit_of_work import unit_of_work
from agents.sync import batches, series_store, store
from agents.sync.clock import to_physical_us
from agents.sync.devices import DeviceRecord, removed_by, went_offline
from agents.sync.messages import expired_commands, message_id, realtime_event, to_deliver
from agents.sync.next_episode import latest_per_series, series_lines
from agents.sync.presence import ONLINE_TIMEOUT_S
from agents.sync.progress import is_complete
from agents.sync.records import is_empty
from agents.sync.views import (
    SeriesProgress,
    continue_watching_document,
    devices_document,
    watchlist_document,
)
from agents.sync.watchlist import UnknownTitles, adds_of_unknown_titles
from agreements.sync_documents import CONTINUE_WATCHING_MAX, ContinueWatchingDocument
from core.observability.metrics import BOUND_REFUSALS, TOMBSTONES_COMPACTED
from schemas.envelope import Envelope
from schemas.sync import DeviceRemoved, RealtimeEvent, SyncView, WatchlistOperation
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


def _report_refused(agent: str, bound: str, merged: batches.Merged, limit: int) -> None:
    """Operations dropped at a bound: they raced past the gateway's check (or came from a
    producer that does not check); the metric and the log line are their only trace."""
    for env in merged.refused:
        BOUND_REFUSALS.labels(bound=bound, where="agent").inc()
        logger.bind(agent=agent, correlation_id=env.correlation_id).warning(
            "{}: {} of {} refused: past the bound {} = {}",
            agent,
            type(env.payload).__name__,
            env.payload.user_id,
            bound,
            limit,
        )


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


def _retention_cutoff(ctx: AgentContext) -> datetime:
    return utcnow() - timedelta(seconds=ctx.settings.sync.tombstone_retention_s)


async def _save_titles(conn: asyncpg.Connection, rows: list[batches.TitleRow]) -> None:
    """Write the changed titles; a title compacted to nothing (not on the list, no tombstone,
    no clear) loses its row, so removes of titles never added leave no trace past retention."""
    empty = [r for r in rows if not r.visible and is_empty(r.state)]
    await store.save_titles(conn, [r for r in rows if r.visible or not is_empty(r.state)])
    await store.delete_titles(conn, [(r.user_id, r.content_id) for r in empty])


async def _refuse_unknown_titles(conn: asyncpg.Connection, batch: list[Envelope[Any]]) -> None:
    """Raise UnknownTitles (the unit of work rolls back) when an add names a title the catalog
    lacks: the gateway checks its adds, a producer writing sync.watchlist itself may not."""
    updates = [env.payload for env in batch]
    adds = {u.content_id for u in updates if u.operation is WatchlistOperation.add}
    unknown = adds_of_unknown_titles(updates, await store.catalog_titles(conn, adds))
    if unknown:
        named = ", ".join(sorted({str(u.content_id) for u in unknown}))
        raise UnknownTitles(
            f"watchlist add of a title the catalog does not have: {named}; "
            "replay it (mgw dlq replay sync.watchlist) once the title is ingested"
        )


async def merge_watchlist(ctx: AgentContext, batch: list[Envelope[Any]]) -> None:
    """OR-Set operations into each user's watchlist; one message per operation that changed it."""
    users = {env.payload.user_id for env in batch}
    compact_before_us = to_physical_us(_retention_cutoff(ctx))
    async with unit_of_work(ctx) as uow:
        await store.lock_users(uow.conn, users)
        # A retry (same Idempotency-Key) is stamped anew at the gateway: only its id repeats.
        batch = await first_seen(uow.conn, ctx.agent, batch)
        await _refuse_unknown_titles(uow.conn, batch)
        stored = await store.load_titles(
            uow.conn, [(env.payload.user_id, env.payload.content_id) for env in batch]
        )
        sizes = await store.visible_counts(uow.conn, users)
        limit = ctx.settings.sync.max_watchlist_size
        merged = batches.watchlist(stored, batch, sizes, limit, compact_before_us)
        await _save_titles(uow.conn, list(merged.rows.values()))
        documents = await _render_watchlists(uow.conn, users, merged.changed_users)
        uow.add(merged.events)
    await store.write_views(ctx.redis, ctx.prefix, SyncView.watchlist, documents)
    _report_refused(ctx.agent, "watchlist_size", merged, limit)
    TOMBSTONES_COMPACTED.inc(merged.compacted)
    _log_merge(ctx.agent, batch, merged)


# A client's stamp may lead the server's clock by a minute (gateway/sync_clock.py): rows left
# alone this much longer than the retention hold only expired stamps.
_CLIENT_LEAD = timedelta(minutes=2)


async def compact_tombstones(ctx: AgentContext) -> int:
    """Compact the titles nobody wrote to for longer than SYNC_TOMBSTONE_RETENTION_S (the
    merge compacts the titles it writes); how many tombstones and clears were dropped."""
    cutoff = _retention_cutoff(ctx)
    batch_size = ctx.settings.sync.tombstone_compaction_batch
    keys = await store.titles_to_compact(ctx.pool, cutoff - _CLIENT_LEAD, batch_size)
    if not keys:
        return 0
    async with unit_of_work(ctx) as uow:
        await store.lock_users(uow.conn, {user for user, _ in keys})
        stored = await store.load_titles(uow.conn, keys)
        merged = batches.watchlist(stored, [], compact_before_us=to_physical_us(cutoff))
        await _save_titles(uow.conn, list(merged.rows.values()))
    TOMBSTONES_COMPACTED.inc(merged.compacted)
    logger.info(
        "watchlist compaction: {} tombstone(s) and clear(s) dropped from {} title(s)",
        merged.compacted,
        len(merged.rows),
    )
    return merged.compacted


async def _render_progress(
    conn: asyncpg.Connection, users: Collection[str], changed: Collection[str]
) -> Documents:
    versions = await store.versions(conn, SyncView.progress, users, changed)
    out = {}
    for user in users:
        document = await _continue_watching(conn, user, versions[user])
        out[user] = (versions[user], document.model_dump_json().encode())
    return out


async def _continue_watching(
    conn: asyncpg.Connection, user: str, version: int
) -> ContinueWatchingDocument:
    """The user's continue watching, each series once (agents/sync/next_episode.py)."""
    positions = await store.open_positions(conn, user, CONTINUE_WATCHING_MAX)
    watched = await series_store.episode_positions(conn, user)
    if not watched:
        return continue_watching_document(user, version, positions)
    latest = latest_per_series(watched)
    ended = [series for series, (p, _) in latest.items() if is_complete(p)]
    episode_lists = await series_store.series_episodes(conn, ended)
    started = {p.content_id: p for p, _ in watched if not is_complete(p)}
    lines = series_lines(latest, episode_lists, started)
    runtimes = await series_store.runtimes_s(
        conn, [line.episode.content_id for line in lines if line.finished and line.position is None]
    )
    placed = frozenset(e.content_id for _, e in watched if e.in_order())
    return continue_watching_document(
        user, version, positions, SeriesProgress(lines, placed, runtimes)
    )


async def merge_progress(ctx: AgentContext, batch: list[Envelope[Any]]) -> None:
    """Playback positions into each (user, title) register; a message per winning update."""
    users = {env.payload.user_id for env in batch}
    async with unit_of_work(ctx) as uow:
        await store.lock_users(uow.conn, users)
        batch = await first_seen(uow.conn, ctx.agent, batch)
        stored = await store.load_positions(
            uow.conn, [(env.payload.user_id, env.payload.content_id) for env in batch]
        )
        finished = batches.finished_titles(batch)
        episode_lists = await series_store.episode_lists_of(uow.conn, finished)
        merged = batches.progress(stored, batch, episode_lists)
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


def _open_revoker(ctx: AgentContext) -> TokenRevoker:
    return TokenRevoker(ctx.settings.pubnub, ctx.redis, ctx.prefix)


async def _close_revoker(revoker: TokenRevoker) -> None:
    await revoker.close()


# Revokes removed devices' PubNub tokens (a no-op without PubNub Access Manager).
TOKEN_REVOKER: Resource[TokenRevoker] = Resource(
    "pubnub-token-revoker", open=_open_revoker, close=_close_revoker
)


async def _unmark_refused(ctx: AgentContext, refused: list[Envelope[Any]]) -> None:
    """The gateway marked each of these registrations in the device register when it accepted
    it; the agent refused them, so each is marked removed at its own stamp (on equal stamps a
    removal wins): the device is not the user's, for the ownership check and for the count."""
    for env in refused:
        event = env.payload
        marks = {event.user_id: {event.device.device_id: (event.timestamp, False)}}
        await store.mark_devices(ctx.redis, ctx.prefix, list(marks), marks, complete=False)


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
            limit = ctx.settings.sync.max_devices_per_user
            merged = batches.devices(stored, batch, now, limit)
            await store.save_devices(uow.conn, list(merged.rows.values()))
            for (user, device_id), record in merged.rows.items():
                devices.setdefault(user, {})[device_id] = record
            versions = await store.versions(uow.conn, SyncView.devices, users, merged.changed_users)
            uow.add(merged.events)
        documents = _device_documents(devices, versions, now)
        # The ownership check first: a device the document lists is never refused.
        await store.write_device_register(ctx.redis, ctx.prefix, users, devices)
        await store.write_views(ctx.redis, ctx.prefix, SyncView.devices, documents)
        await _unmark_refused(ctx, merged.refused)
        _report_refused(ctx.agent, "devices_per_user", merged, limit)
        # After the commit and the read model: the removal is durable and the token route no
        # longer sees the device, so no token is granted after the ones revoked here.
        removals = [env.payload for env in batch if isinstance(env.payload, DeviceRemoved)]
        if removals:
            await ctx.use(TOKEN_REVOKER).revoke_devices(removed_by(removals, devices))
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
            # Once committed, sent at once, while the outbox publishes the same messages on
            # `sync.realtime` (the change feed): one Kafka hop less to the device. The
            # realtime-deliver agent then finds their ids claimed, or sends what failed here.
            uow.then(lambda: _deliver_now(ctx, routed.messages, clock()))
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


async def _deliver_now(ctx: AgentContext, events: list[RealtimeEvent], now: datetime) -> None:
    """The command router's own delivery of what it just committed and staged, through the
    same sink and claims as the realtime-deliver agent. A failure is left to that agent, which
    gets the staged copies from the outbox: a claim is released (or never taken) when a
    message certainly was not sent, so it sends them once; a message whose fate is unknown
    keeps its claim and may be lost, never doubled (docs/SYNC.md, "At most once")."""
    if not events:
        return
    try:
        await ctx.use(REALTIME_SINK).deliver(to_deliver(events, now))
    except Exception as exc:
        logger.bind(agent=ctx.agent).warning(
            "direct delivery of {} command message(s) failed ({}: {}); realtime-deliver sends "
            "them from sync.realtime",
            len(events),
            type(exc).__name__,
            exc,
        )


def realtime_delivery(clock: Clock = utcnow) -> Callable[[AgentContext, list[Envelope[Any]]], Any]:
    async def deliver_realtime(ctx: AgentContext, batch: list[Envelope[Any]]) -> None:
        now = clock()
        staged = [env.payload for env in batch]
        # An expired command the router sent itself in time is no expired command: ask Redis
        # only when the batch holds expired ones (a lagging agent, an outbox sweep).
        late = expired_commands(staged, now)
        sent = await store.claimed_messages(ctx.redis, ctx.prefix, late) if late else set()
        events = to_deliver(staged, now, sent)
        if len(late) > len(sent):
            logger.warning(
                "{} command(s) expired before delivery; their senders hear `expired`",
                len(late) - len(sent),
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
            doc = await _continue_watching(conn, user_id, version)
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
    TimerSpec(name="tombstone-compaction", group="sync", interval_s=300.0, run=compact_tombstones),
]
