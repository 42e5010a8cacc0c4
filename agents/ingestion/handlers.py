"""The ingestion pipeline's agents: process catalog items, sync availability, notice expiries.

Each runs in its own worker group so operators scale them separately.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import asyncpg
from loguru import logger

from agents import outbox
from agents.catalog.store import Versioned, changed_fields, fetch_contents, upsert_contents
from agents.context import AgentContext
from agents.ingestion import store
from agents.ingestion.availability import AvailabilityDiff, Slot, diff_availability, expiring
from agents.ingestion.normalize import availability_of, normalize_item
from agents.ingestion.pipeline import Plan, merge_batch, resolve_batch
from agents.ingestion.resolution import lookup_keys
from agents.runtime import AgentSpec, TimerSpec
from core.observability.stages import observe, timed
from schemas.content import (
    AvailabilityChanged,
    AvailabilityRow,
    CanonicalContent,
    ContentExpiring,
    ContentIngested,
    ContentUpdated,
)
from schemas.envelope import Envelope, decode, encode, wrap
from schemas.ingestion import AvailabilityReceived
from topics.catalog import (
    AVAILABILITY_RAW,
    CONTENT_AVAILABILITY_CHANGED,
    CONTENT_EXPIRING,
    CONTENT_INGESTED,
    CONTENT_RAW,
    CONTENT_UPDATED,
    TopicSpec,
)

Outgoing = tuple[TopicSpec, Envelope[Any]]
PROCESS_BATCH = "process-batch"
EXPIRY_WINDOWS_DAYS = (7, 3, 1)
_EXPIRY_LOCK = 0x6D67770003


def _row(slot: Slot, **update: Any) -> AvailabilityRow:
    # Read straight from the slot's attributes by pydantic-core (`asdict` deep-copies, slowly).
    row = AvailabilityRow.model_validate(slot, from_attributes=True)
    return row.model_copy(update=update) if update else row


def availability_event(
    cid: uuid.UUID, platform: str, diff: AvailabilityDiff, now: datetime
) -> AvailabilityChanged:
    return AvailabilityChanged(
        canonical_id=cid,
        platform=platform,
        appeared=[_row(s) for s in diff.appeared],
        changed=[_row(new) for _, new in diff.changed],
        # What left the feed expires now (DOMAIN: an empty region list expires the title there).
        expired=[_row(s, expires_at=now) for s in diff.expired],
    )


def plan_events(plan: Plan, causes: Sequence[Envelope[Any]], now: datetime) -> list[Outgoing]:
    """The lifecycle events of a plan, each carrying the correlation id of the item behind it."""

    def event(spec: TopicSpec, payload: Any, cid: uuid.UUID) -> Outgoing:
        cause = causes[plan.cause[cid]]
        return spec, wrap(
            payload, key=str(cid), source="process-batch", correlation_id=cause.correlation_id
        )

    out = [event(CONTENT_INGESTED, ContentIngested(content=c), cid) for cid, c in plan.new.items()]
    out += [
        event(
            CONTENT_UPDATED,
            ContentUpdated(content=after, changed_fields=changed_fields(before, after)),
            cid,
        )
        for cid, (before, after) in plan.changed.items()
    ]
    out += [
        event(CONTENT_AVAILABILITY_CHANGED, availability_event(cid, platform, diff, now), cid)
        for (cid, platform), diff in plan.availability.items()
    ]
    return out


async def process_raw(ctx: AgentContext, batch: list[Envelope[Any]]) -> None:
    """Normalize, resolve, map genres, merge and upsert a batch; announce what changed."""
    with timed(PROCESS_BATCH, "normalize"):
        items = [normalize_item(env.payload.item) for env in batch]
    now = datetime.now(UTC)
    async with ctx.pool.acquire() as conn:
        async with conn.transaction():
            with timed(PROCESS_BATCH, "load"):
                await store.guard_pending_availability(conn, exclusive=False)
                await store.lock_titles(conn, [i.normalized_title for i in items])
                mappings = await store.load_mappings(
                    conn, [(i.platform, i.platform_item_id) for i in items]
                )
                candidates = await store.load_candidates(
                    conn, lookup_keys(items), [m.canonical_id for m in mappings.values()]
                )
            with timed(PROCESS_BATCH, "resolve"):
                resolved = resolve_batch(items, mappings, candidates)
            with timed(PROCESS_BATCH, "load"):
                # Full records only of the stored titles the batch resolved to, not of every
                # candidate.
                known = {c.canonical_id for c in candidates}
                stored = await store.load_contents(conn, resolved.title_ids & known)
            with timed(PROCESS_BATCH, "merge"):
                plan = merge_batch(items, resolved, stored, mappings)
            with timed(PROCESS_BATCH, "write"):
                await _write_plan(conn, plan, batch, now)
                # Availability that arrived before its item: back to availability-sync.
                parked = await store.take_pending_availability(
                    conn, [(m.platform, m.platform_item_id) for m in plan.mappings]
                )
            with timed(PROCESS_BATCH, "events"):
                events = plan_events(plan, batch, now)
                events += [(AVAILABILITY_RAW, decode(raw, AvailabilityReceived)) for raw in parked]
            with timed(PROCESS_BATCH, "outbox"):
                staged = await outbox.stage(conn, events)
            committing = time.perf_counter()
        observe(PROCESS_BATCH, "commit", time.perf_counter() - committing)
    with timed(PROCESS_BATCH, "publish"):
        await outbox.flush(ctx.pool, ctx.publisher, staged)
    _log_plan(plan, batch)


def _log_plan(plan: Plan, batch: Sequence[Envelope[Any]]) -> None:
    # One line per batch: a catalog of thousands of titles would otherwise flood the log. The
    # line per title, with the correlation id of the request behind it, is at debug level.
    logger.info(
        "{} item(s): {} new title(s), {} updated, {} availability change(s), {} stale skipped",
        len(batch),
        len(plan.new),
        len(plan.changed),
        len(plan.availability),
        plan.skipped_stale,
    )
    # Keyword arguments land in the record's extra (loguru captures them), like bind() does,
    # without building a logger per line that debug level would then throw away.
    for cid, content in plan.new.items():
        correlation_id = batch[plan.cause[cid]].correlation_id
        logger.debug("title {} ingested: {!r}", cid, content.title, correlation_id=correlation_id)
    for cid in plan.changed:
        correlation_id = batch[plan.cause[cid]].correlation_id
        logger.debug("title {} updated", cid, correlation_id=correlation_id)


async def _write_plan(
    conn: asyncpg.Connection, plan: Plan, batch: Sequence[Envelope[Any]], now: datetime
) -> None:
    written = plan.written
    if written:
        await upsert_contents(
            conn,
            [Versioned(doc, batch[plan.cause[cid]].event_id) for cid, doc in written.items()],
            same_version_merges=True,
        )
    await store.apply_availability_diffs(
        conn, [(cid, diff) for (cid, _), diff in plan.availability.items()], now
    )
    await store.upsert_mappings(conn, plan.mappings)


def _with_platform_availability(
    content: CanonicalContent, platform: str, availability: Sequence[Any]
) -> CanonicalContent:
    others = [a for a in content.availability if a.platform != platform]
    return content.model_copy(update={"availability": [*others, *availability]})


async def sync_availability(ctx: AgentContext, batch: list[Envelope[Any]]) -> None:
    """Apply availability-only updates: diff against Postgres, write, announce the diff."""
    now = datetime.now(UTC)
    newest: dict[tuple[str, str], Envelope[Any]] = {}
    for env in batch:
        key = (env.payload.platform, env.payload.platform_item_id)
        held = newest.get(key)
        if held is None or env.payload.source_updated_at >= held.payload.source_updated_at:
            newest[key] = env
    async with ctx.pool.acquire() as conn, conn.transaction():
        mappings = await store.load_mappings(conn, newest)
        unknown = [k for k in newest if k not in mappings]
        docs = await fetch_contents(conn, {m.canonical_id for m in mappings.values()}, lock=True)
        events: list[Outgoing] = []
        for key, env in newest.items():
            mapping = mappings.get(key)
            if mapping is None or mapping.canonical_id not in docs:
                continue
            update = env.payload
            if update.source_updated_at <= mapping.availability_as_of:
                continue  # replayed, or older than the offers applied (by either topic)
            before = docs[mapping.canonical_id]
            offered = availability_of(update.platform, update.platform_item_id, update.availability)
            after = _with_platform_availability(before, update.platform, offered)
            diff = diff_availability(before.availability, after.availability, update.platform)
            await store.mark_availability_applied(conn, key, update.source_updated_at)
            if diff.empty:
                continue
            docs[mapping.canonical_id] = after
            await upsert_contents(conn, [Versioned(after, env.event_id)], same_version_merges=True)
            await store.apply_availability(conn, mapping.canonical_id, diff, now)
            payload = availability_event(mapping.canonical_id, update.platform, diff, now)
            events.append(
                (
                    CONTENT_AVAILABILITY_CHANGED,
                    wrap(
                        payload,
                        key=str(mapping.canonical_id),
                        source="availability-sync",
                        correlation_id=env.correlation_id,
                    ),
                )
            )
        staged = await outbox.stage(conn, events)
    await outbox.flush(ctx.pool, ctx.publisher, staged)
    if unknown:
        await _park(ctx, {key: newest[key] for key in unknown})


async def _park(ctx: AgentContext, updates: dict[store.ItemKey, Envelope[Any]]) -> None:
    """Availability for items the catalog has not ingested yet: kept until process-batch maps
    the item and hands it back. An item mapped while this waited for the guard is handed back
    at once."""
    async with ctx.pool.acquire() as conn, conn.transaction():
        await store.guard_pending_availability(conn, exclusive=True)
        mapped = await store.load_mappings(conn, updates)
        parked = [
            (key, env.payload.source_updated_at, encode(env))
            for key, env in updates.items()
            if key not in mapped
        ]
        await store.park_availability(conn, parked)
        staged = await outbox.stage(
            conn, [(AVAILABILITY_RAW, env) for key, env in updates.items() if key in mapped]
        )
    await outbox.flush(ctx.pool, ctx.publisher, staged)
    if parked:
        logger.info(
            "availability for {} item(s) not ingested yet parked until their catalog item "
            "arrives, e.g. {}",
            len(parked),
            parked[0][0],
        )


async def check_expiring(ctx: AgentContext) -> int:
    """Emit one notice per offer and window (7/3/1 days); runs in one process at a time."""
    now = datetime.now(UTC)
    async with ctx.pool.acquire() as conn, conn.transaction():
        if not await conn.fetchval("SELECT pg_try_advisory_xact_lock($1)", _EXPIRY_LOCK):
            return 0
        rows = await store.rows_expiring_within(conn, now, max(EXPIRY_WINDOWS_DAYS))
        notices = expiring(rows, now, EXPIRY_WINDOWS_DAYS)
        if not notices:
            return 0
        fresh = await conn.fetch(
            """
            INSERT INTO expiration_notifications
                (canonical_id, platform, region, window_days, expires_at)
            SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::int[], $5::timestamptz[])
            ON CONFLICT DO NOTHING
            RETURNING canonical_id, platform, region, window_days, expires_at
            """,
            [n.content_id for n in notices],
            [n.platform for n in notices],
            [n.region for n in notices],
            [n.window_days for n in notices],
            [n.expires_at for n in notices],
        )
        events: list[Outgoing] = [
            (
                CONTENT_EXPIRING,
                wrap(
                    ContentExpiring(
                        canonical_id=r["canonical_id"],
                        platform=r["platform"],
                        region=r["region"],
                        expires_at=r["expires_at"],
                        window_days=r["window_days"],
                    ),
                    key=str(r["canonical_id"]),
                    source="expiry-check",
                ),
            )
            for r in fresh
        ]
        staged = await outbox.stage(conn, events)
    await outbox.flush(ctx.pool, ctx.publisher, staged)
    if staged:
        logger.info("{} expiry notice(s) emitted", len(staged))
    return len(staged)


AGENTS = [
    AgentSpec(
        name=PROCESS_BATCH,
        group="ingestion",
        topic=CONTENT_RAW,
        handler=process_raw,
        # Large batches: every batch locks and indexes its candidate titles (often much of the
        # catalog), a cost per batch rather than per item.
        batch_size=2000,
        batch_within_s=0.05,
        description="normalize, resolve, map genres, upsert; emit ingested/updated/availability",
    ),
    AgentSpec(
        name="availability-sync",
        group="availability",
        topic=AVAILABILITY_RAW,
        handler=sync_availability,
        description="diff and apply availability-only updates; emit availability_changed",
    ),
]

TIMERS = [
    TimerSpec(
        name="expiry-check",
        group="availability",
        # DOMAIN: every 15 minutes; notices are deduplicated, so a shorter period is harmless.
        interval_s=15 * 60.0,
        run=check_expiring,
    )
]
