"""The ingestion pipeline's agents: process catalog items, sync availability, notice expiries.

Each runs in its own worker group so operators scale them separately.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from loguru import logger

from agents.framework.context import AgentContext
from agents.framework.resources import Resource
from agents.framework.runtime import AgentSpec, TimerSpec
from agents.framework.unit_of_work import unit_of_work
from agents.ingestion import series_store, store
from agents.ingestion.availability import diff_availability, expiring
from agents.ingestion.events import availability_event, plan_events, with_platform_availability
from agents.ingestion.normalize import availability_of, normalize_item
from agents.ingestion.pipeline import Plan, Resolved, merge_batch, resolve_batch
from agents.ingestion.resolution import lookup_keys
from agents.ingestion.series import is_child, series_probe
from agents.ingestion.series_plan import (
    parent_keys,
    probes,
    refold_items,
    season_listing_mappings,
    settle_refolds,
)
from agents.titles.store import Versioned, apply_availability, fetch_contents, upsert_contents
from agents.titles.versions import newest_per_key, supersedes
from agreements.catalog_warnings import count_by_kind, offer_warnings
from core.observability.metrics import INGEST_WARNINGS, SERIES_ITEMS
from core.observability.stages import timed
from schemas.content import ContentType
from schemas.envelope import Envelope, decode, encode
from schemas.ingestion import AvailabilityReceived, CatalogItemReceived, RawAvailability
from topics.registry import (
    AVAILABILITY_RAW,
    CONTENT_AVAILABILITY_CHANGED,
    CONTENT_EXPIRING,
    CONTENT_RAW,
)

PROCESS_BATCH = "process-batch"
# Known titles as parsed before, by id with their row version (store.load_known_titles).
KNOWN_TITLES: Resource[store.KnownTitleCache] = Resource(
    "ingestion-known-titles", open=lambda ctx: store.KnownTitleCache()
)
EXPIRY_WINDOWS_DAYS = (7, 3, 1)
TELEVISION = frozenset({ContentType.series, ContentType.episode})


async def process_raw(ctx: AgentContext, batch: list[Envelope[Any]]) -> None:
    """Normalize, resolve, map genres, merge and upsert a batch; announce what changed."""
    with timed(ctx.agent, "normalize"):
        items = [normalize_item(env.payload.item) for env in batch]
        # Episodes and season listings that name a series are resolved inside it.
        children = {i for i, item in enumerate(items) if is_child(item) and series_probe(item)}
        has_tv = any(item.content_type in TELEVISION for item in items)
    now = datetime.now(UTC)
    async with unit_of_work(ctx) as uow:
        conn = uow.conn
        with timed(ctx.agent, "load"):
            await store.guard_pending_availability(conn, exclusive=False)
            if has_tv:
                await series_store.guard_pending_episodes(conn)
            await store.lock_titles(conn, [i.normalized_title for i in items])
            mappings = await store.load_mappings(
                conn,
                [(i.platform, i.platform_item_id) for i in items]
                + parent_keys(items[i] for i in children),
            )
            plain = [item for i, item in enumerate(items) if i not in children]
            candidates = await store.load_known_titles(
                conn,
                lookup_keys([*plain, *probes(items[i] for i in children)]),
                [m.canonical_id for m in mappings.values()],
                ctx.use(KNOWN_TITLES),
            )
        with timed(ctx.agent, "resolve"):
            resolved = resolve_batch(items, mappings, candidates, children)
            tv = await series_store.plan_television(conn, items, resolved, mappings)
            resolved = Resolved(resolved.assignments + tv.plan.assignments, resolved.skipped_stale)
            items = [tv.plan.items.get(i, item) for i, item in enumerate(items)]
        with timed(ctx.agent, "load"):
            # Full records only of the stored titles the batch resolved to, not of every
            # candidate.
            known = {c.canonical_id for c in candidates} | tv.known_episodes
            stored = await store.load_contents(
                conn, (resolved.title_ids | tv.plan.refold_ids) & known
            )
        with timed(ctx.agent, "merge"):
            # Listings placed before their season's map was learnt move to the episode it names.
            items, resolved = refold_items(items, resolved, tv.plan, stored)
            plan = merge_batch(items, resolved, stored, mappings)
            refolded = settle_refolds(plan, tv.plan, len(batch))
            plan.mappings += season_listing_mappings(items, tv.plan)
        with timed(ctx.agent, "write"):
            await store.write_plan(conn, plan, [env.event_id for env in batch], now)
            handed_back = await series_store.write_television(
                conn, items, batch, tv.plan, {**stored, **plan.written}, mappings, refolded
            )
            # Availability that arrived before its item: back to availability-sync.
            parked = await store.take_pending_availability(
                conn, [(m.platform, m.platform_item_id) for m in plan.mappings]
            )
        with timed(ctx.agent, "events"):
            uow.add(plan_events(plan, batch, now))
            for raw in parked:
                uow.forward(AVAILABILITY_RAW, decode(raw, AvailabilityReceived))
            # Episodes that waited for a series this batch wrote: back to process-batch.
            for raw in handed_back:
                uow.forward(CONTENT_RAW, decode(raw, CatalogItemReceived))
    _log_plan(plan, batch)
    SERIES_ITEMS.labels("episode").inc(len(tv.plan.episodes))
    SERIES_ITEMS.labels("season_listing").inc(len(tv.plan.season_listings))
    if tv.plan.parked:
        SERIES_ITEMS.labels("parked").inc(len(tv.plan.parked))
        logger.info(
            "{} episode(s) or season(s) of series not known yet parked until the series "
            "arrives, e.g. {}",
            len(tv.plan.parked),
            items[tv.plan.parked[0]].record_key,
        )


def _log_plan(plan: Plan, batch: Sequence[Envelope[Any]]) -> None:
    # One line per batch: a catalog of thousands of titles would otherwise flood the log. The
    # line per title, with the correlation id of the request behind it, is at debug level.
    warned = count_by_kind(w for row in plan.mappings for w in row.warnings)
    for kind, n in warned.items():
        INGEST_WARNINGS.labels(kind).inc(n)
    logger.info(
        "{} item(s): {} new title(s), {} updated, {} availability change(s), {} stale skipped{}",
        len(batch),
        len(plan.new),
        len(plan.changed),
        len(plan.availability),
        plan.skipped_stale,
        # What normalization dropped is listed per item by `mgw ingest-report`.
        "; warnings: " + ", ".join(f"{n} {k}" for k, n in sorted(warned.items())) if warned else "",
    )
    # Keyword arguments land in the record's extra (loguru captures them), like bind() does,
    # without building a logger per line that debug level would then throw away.
    for cid, content in plan.new.items():
        correlation_id = batch[plan.cause[cid]].correlation_id
        logger.debug("title {} ingested: {!r}", cid, content.title, correlation_id=correlation_id)
    for cid in plan.changed:
        correlation_id = batch[plan.cause[cid]].correlation_id
        logger.debug("title {} updated", cid, correlation_id=correlation_id)


async def sync_availability(ctx: AgentContext, batch: list[Envelope[Any]]) -> None:
    """Apply availability-only updates: diff against Postgres, write, announce the diff."""
    now = datetime.now(UTC)
    newest = newest_per_key(
        batch,
        key=lambda env: (env.payload.platform, env.payload.platform_item_id),
        clock=lambda env: env.payload.source_updated_at,
    )
    async with unit_of_work(ctx) as uow:
        conn = uow.conn
        mappings = await store.load_mappings(conn, newest)
        unknown = [k for k in newest if k not in mappings]
        seasons = await series_store.season_listings_of(conn, mappings)
        docs = await fetch_contents(conn, {m.canonical_id for m in mappings.values()}, lock=True)
        for key, env in newest.items():
            mapping = mappings.get(key)
            if mapping is None or mapping.canonical_id not in docs:
                continue
            update = env.payload
            if not supersedes(update.source_updated_at, mapping.offers_as_of):
                continue  # replayed, or not newer than the offers applied (by either topic)
            if key in seasons:
                # A season listing's offers are the season's, not the series' (docs/INGESTION.md).
                series_id, season = seasons[key]
                await series_store.replace_season_offers(
                    conn,
                    series_id,
                    season,
                    update.platform,
                    availability_of(update.platform, update.platform_item_id, update.availability),
                )
                await store.mark_availability_applied(conn, key, update.source_updated_at)
                continue
            before = docs[mapping.canonical_id]
            _count_dropped(update.availability, env)
            offered = availability_of(update.platform, update.platform_item_id, update.availability)
            after = with_platform_availability(before, update.platform, offered)
            diff = diff_availability(before.availability, after.availability, update.platform)
            await store.mark_availability_applied(conn, key, update.source_updated_at)
            if diff.empty:
                continue
            docs[mapping.canonical_id] = after
            await upsert_contents(conn, [Versioned(after, env.event_id)], same_version_merges=True)
            await apply_availability(conn, mapping.canonical_id, diff, now)
            uow.emit(
                CONTENT_AVAILABILITY_CHANGED,
                availability_event(mapping.canonical_id, update.platform, diff, now),
                key=str(mapping.canonical_id),
                cause=env,
            )
    if unknown:
        await _park(ctx, {key: newest[key] for key in unknown})


def _count_dropped(offers: Sequence[RawAvailability], env: Envelope[Any]) -> None:
    """Availability-only updates have no mapping row to keep warnings with: counted and logged."""
    warnings = offer_warnings(offers)
    for warning in warnings:
        INGEST_WARNINGS.labels(warning.kind).inc()
    if warnings:
        logger.bind(correlation_id=env.correlation_id).info(
            "availability of {}: {}", env.payload.record_key, "; ".join(w.message for w in warnings)
        )


async def _park(ctx: AgentContext, updates: dict[store.ItemKey, Envelope[Any]]) -> None:
    """Availability for items the catalog has not ingested yet: kept until process-batch maps
    the item and hands it back. An item mapped while this waited for the guard is handed back
    at once."""
    async with unit_of_work(ctx) as uow:
        await store.guard_pending_availability(uow.conn, exclusive=True)
        mapped = await store.load_mappings(uow.conn, updates)
        parked = [
            (key, env.payload.source_updated_at, encode(env))
            for key, env in updates.items()
            if key not in mapped
        ]
        await store.park_availability(uow.conn, parked)
        for key, env in updates.items():
            if key in mapped:
                uow.forward(AVAILABILITY_RAW, env)
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
    async with unit_of_work(ctx) as uow:
        if not await store.try_expiry_lock(uow.conn):
            return 0
        rows = await store.rows_expiring_within(uow.conn, now, max(EXPIRY_WINDOWS_DAYS))
        notices = expiring(rows, now, EXPIRY_WINDOWS_DAYS)
        for notice in await store.record_expiry_notices(uow.conn, notices):
            uow.emit(CONTENT_EXPIRING, notice, key=str(notice.canonical_id))
    if uow.published:
        logger.info("{} expiry notice(s) emitted", uow.published)
    return uow.published


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
        # docs/RULES.md: every 15 minutes; notices are deduplicated, so a shorter one is harmless.
        interval_s=15 * 60.0,
        run=check_expiring,
    )
]
