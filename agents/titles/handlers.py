"""Handlers of the canonical titles: store submitted canonical records (group catalog)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from loguru import logger

from agents.framework.context import AgentContext
from agents.framework.runtime import AgentSpec, TimerSpec
from agents.framework.unit_of_work import unit_of_work
from agents.ingestion.availability import platform_diffs
from agents.ingestion.events import availability_event
from agents.ingestion.merge import changed_fields, content_changed, merge_submitted
from agents.titles.store import (
    Versioned,
    apply_availability_diffs,
    fed_platforms,
    fetch_contents,
    upsert_contents,
)
from agents.titles.versions import newest_per_key
from schemas.content import ContentIngested, ContentUpdated
from schemas.envelope import Envelope
from topics.registry import (
    CONTENT_AVAILABILITY_CHANGED,
    CONTENT_INGESTED,
    CONTENT_SUBMITTED,
    CONTENT_UPDATED,
)


async def store_submitted(ctx: AgentContext, batch: list[Envelope[Any]]) -> None:
    """Merge trusted canonical records into the stored titles (agents/ingestion/merge.py's
    merge_submitted: the feeds keep their offers and platform ids, empty fields keep what the
    feeds merged), write the offers that changed as platform_availability rows, the one place
    the expiry check reads them, and announce what was new or changed (nothing otherwise)."""
    now = datetime.now(UTC)
    by_id = newest_per_key(
        batch,
        key=lambda env: env.payload.content.canonical_id,
        clock=lambda env: env.payload.content.updated_at,
    )
    async with unit_of_work(ctx) as uow:
        before = await fetch_contents(uow.conn, by_id, lock=True)
        fed = await fed_platforms(uow.conn, before)
        after = {
            cid: merge_submitted(before.get(cid), env.payload.content, fed.get(cid, set()))
            for cid, env in by_id.items()
        }
        # Written when anything changed, its clock included (a later, older record must not
        # apply); announced only when more than the clock did.
        outcome = await upsert_contents(
            uow.conn,
            [
                Versioned(doc, by_id[cid].event_id)
                for cid, doc in after.items()
                if before.get(cid) != doc
            ],
        )
        for cid in outcome.inserted:
            uow.emit(
                CONTENT_INGESTED,
                ContentIngested(content=after[cid]),
                key=str(cid),
                cause=by_id[cid],
            )
        for cid in outcome.updated:
            old = before.get(cid)
            if content_changed(old, after[cid]):
                uow.emit(
                    CONTENT_UPDATED,
                    ContentUpdated(
                        content=after[cid], changed_fields=changed_fields(old, after[cid])
                    ),
                    key=str(cid),
                    cause=by_id[cid],
                )
        diffs = []
        for cid in [*outcome.inserted, *outcome.updated]:
            old_offers = before[cid].availability if cid in before else []
            for platform, diff in platform_diffs(old_offers, after[cid].availability).items():
                diffs.append((cid, diff))
                uow.emit(
                    CONTENT_AVAILABILITY_CHANGED,
                    availability_event(cid, platform, diff, now),
                    key=str(cid),
                    cause=by_id[cid],
                )
        await apply_availability_diffs(uow.conn, diffs, now)
    changed = set(outcome.inserted) | set(outcome.updated)
    for cid, env in by_id.items():
        log = logger.bind(correlation_id=env.correlation_id, event_id=str(env.event_id))
        if cid in changed:
            state = "new" if cid in outcome.inserted else "newer version"
            log.info("content {} stored ({})", cid, state)
        else:
            log.debug("content {} unchanged (same or newer version already stored)", cid)


AGENTS = [
    AgentSpec(
        name="content-store",
        group="catalog",
        topic=CONTENT_SUBMITTED,
        handler=store_submitted,
        description="merges submitted canonical records; emits content.ingested / updated / "
        "availability_changed",
    ),
]
TIMERS: list[TimerSpec] = []
