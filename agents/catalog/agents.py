"""Agents of the catalog: keep the canonical content table true."""

from __future__ import annotations

from typing import Any

from loguru import logger

from agents.catalog.store import Versioned, upsert_contents
from agents.context import AgentContext
from agents.runtime import AgentSpec
from schemas.content import ContentIngested
from schemas.envelope import Envelope
from topics.catalog import CONTENT_INGESTED


async def store_ingested(ctx: AgentContext, batch: list[Envelope[Any]]) -> None:
    items = [
        Versioned(content=env.payload.content, event_id=env.event_id)
        for env in batch
        if isinstance(env.payload, ContentIngested)
    ]
    outcome = await upsert_contents(ctx.pool, items)
    changed = set(outcome.inserted) | set(outcome.updated)
    for env in batch:
        cid = env.payload.content.canonical_id
        log = logger.bind(correlation_id=env.correlation_id, event_id=str(env.event_id))
        if cid in changed:
            log.info(
                "content {} stored ({})", cid, "new" if cid in outcome.inserted else "newer version"
            )
        else:
            log.debug("content {} unchanged (same or newer version already stored)", cid)


AGENTS = [
    AgentSpec(
        name="content-store",
        group="ingestion",
        topic=CONTENT_INGESTED,
        handler=store_ingested,
        description="upserts content.ingested records into the content table",
    )
]
