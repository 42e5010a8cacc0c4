"""One unit of work per handler call: a transaction, the events it causes, publish after commit.

A handler opens `unit_of_work(ctx)`, writes through its store on `uow.conn`, and names each
event it causes with `uow.emit(...)` (or `uow.forward(...)` for an envelope passed on as it
is). Leaving the block wraps each event with the agent's name as its source, stages them in
the outbox inside the same transaction, commits, and then publishes them and deletes their
rows (agents/framework/outbox.py). An event thus exists if and only if its change is
committed, and keeps the correlation id of the record that caused it; a handler cannot forget
any of these steps. If the body raises, nothing is committed and nothing is published.

`uow.then(step)` names a step to take once committed, alongside the publish rather than after
it (the command router delivers its messages itself: agents/sync/handlers.py). A failing step
is logged and the events are published all the same; a step never replaces them.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import asyncpg
from loguru import logger

from agents.framework import outbox
from agents.framework.context import AgentContext
from agents.framework.outgoing import Outgoing
from core.observability.stages import observe, timed
from schemas.envelope import Envelope, Payload, wrap
from topics.registry import TopicSpec


@dataclass
class UnitOfWork:
    conn: asyncpg.Connection
    source: str
    events: list[tuple[TopicSpec, Envelope[Any]]] = field(default_factory=list)
    # How many events were published once the unit committed.
    published: int = 0
    # Taken once committed, alongside the publish (`then`).
    after_commit: list[Callable[[], Awaitable[None]]] = field(default_factory=list)

    def emit(
        self, topic: TopicSpec, payload: Payload, *, key: str, cause: Envelope[Any] | None = None
    ) -> None:
        """An event this unit causes; it keeps the correlation id of `cause`."""
        self.add(Outgoing(topic, payload, key, cause.correlation_id if cause else None))

    def add(self, *events: Outgoing | Iterable[Outgoing]) -> None:
        """Events planned by domain code (one, or an iterable of them)."""
        for item in events:
            for event in [item] if isinstance(item, Outgoing) else item:
                envelope = wrap(
                    event.payload,
                    key=event.key,
                    source=self.source,
                    correlation_id=event.correlation_id,
                )
                self.events.append((event.topic, envelope))

    def forward(self, topic: TopicSpec, envelope: Envelope[Any]) -> None:
        """An existing envelope passed on unchanged (same event id and correlation id)."""
        self.events.append((topic, envelope))

    def then(self, step: Callable[[], Awaitable[None]]) -> None:
        """A step to take once the unit committed, while its events are being published."""
        self.after_commit.append(step)


@asynccontextmanager
async def unit_of_work(ctx: AgentContext) -> AsyncIterator[UnitOfWork]:
    """Transaction + outbox + publish after commit, timed as the agent's `outbox`, `commit`
    and `publish` stages (mgw_agent_stage_duration_seconds)."""
    async with ctx.pool.acquire() as conn:
        uow = UnitOfWork(conn, ctx.agent)
        async with conn.transaction():
            yield uow
            with timed(ctx.agent, "outbox"):
                staged = await outbox.stage(conn, uow.events)
            committing = time.perf_counter()
        observe(ctx.agent, "commit", time.perf_counter() - committing)
    with timed(ctx.agent, "publish"):
        if not uow.after_commit:
            uow.published = await outbox.flush(ctx.pool, ctx.publisher, staged)
            return
        # The steps start first: the publish waits on the broker's acknowledgement (ms), which
        # a step such as a delivery to devices should not queue behind.
        *done, published = await asyncio.gather(
            *(step() for step in uow.after_commit),
            outbox.flush(ctx.pool, ctx.publisher, staged),
            return_exceptions=True,
        )
        for outcome in done:
            if isinstance(outcome, BaseException):
                logger.opt(exception=outcome).error("{}: a step after the commit failed", ctx.agent)
        if isinstance(published, BaseException):
            raise published
        uow.published = published
