"""Handlers of the canonical titles: store submitted canonical records (group catalog)."""

from __future__ import annotations

from typing import Any

from loguru import logger

from agents.framework.context import AgentContext
from agents.framework.runtime import AgentSpec, TimerSpec
from agents.framework.unit_of_work import unit_of_work
from agents.titles.changes import changed_fields
from agents.titles.store import Versioned, fetch_contents, upsert_contents
from schemas.content import ContentIngested, ContentUpdated
from schemas.envelope import Envelope
from topics.registry import CONTENT_INGESTED, CONTENT_SUBMITTED, CONTENT_UPDATED


async def store_submitted(ctx: AgentContext, batch: list[Envelope[Any]]) -> None:
    """Upsert canonical records, then announce what was new or changed (nothing otherwise)."""
    by_id = {env.payload.content.canonical_id: env for env in batch}
    items = [Versioned(env.payload.content, env.event_id) for env in batch]
    async with unit_of_work(ctx) as uow:
        before = await fetch_contents(uow.conn, by_id, lock=True)
        outcome = await upsert_contents(uow.conn, items)
        for cid in outcome.inserted:
            env = by_id[cid]
            uow.emit(
                CONTENT_INGESTED,
                ContentIngested(content=env.payload.content),
                key=str(cid),
                cause=env,
            )
        for cid in outcome.updated:
            env = by_id[cid]
            fields = changed_fields(before.get(cid), env.payload.content)
            uow.emit(
                CONTENT_UPDATED,
                ContentUpdated(content=env.payload.content, changed_fields=fields),
                key=str(cid),
                cause=env,
            )
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
        description="upserts submitted canonical records; emits content.ingested / updated",
    ),
]
TIMERS: list[TimerSpec] = []
