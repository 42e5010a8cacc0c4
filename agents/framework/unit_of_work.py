"""One unit of work per handler call: a transaction, the events it causes, staged in the outbox
and published after commit.

A handler opens `unit_of_work(ctx)`, writes through its store on `uow.conn`, and names each
event it causes with `uow.emit(...)` (or `uow.forward(...)` for an envelope passed on as it
is). Leaving the block wraps each event with the agent's name as its source, stages them in
the outbox inside the same transaction (`stage_events`), commits, and then publishes them and
deletes their rows (`publish_staged`). An event thus exists if and only if its change is
committed, and keeps the correlation id of the record that caused it; a handler cannot forget
any of these steps. If the body raises, nothing is committed and nothing is published.

Why an outbox: publishing after commit alone could lose the event if the process died in
between (the redelivered input would find nothing left to change and emit nothing).
`sweep_outbox` (a periodic task of every worker) publishes rows left behind by a crash; a row
published twice carries the same event id both times, so subscribers can tell.

`uow.then(step)` names a step to take once committed, alongside the publish rather than after
it (the command router delivers its messages itself: agents/sync/handlers.py). A failing step
is logged and the events are published all the same; a step never replaces them.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import asyncpg
from loguru import logger

from agents.framework.context import AgentContext
from agents.framework.outgoing import Outgoing
from core.observability.stages import observe, timed
from core.publisher import Headers, Publisher, envelope_headers, headers_for
from schemas.envelope import Envelope, Payload, encode, wrap
from topics.registry import TopicSpec, by_name


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
                staged = await stage_events(conn, uow.events)
            committing = time.perf_counter()
        observe(ctx.agent, "commit", time.perf_counter() - committing)
    with timed(ctx.agent, "publish"):
        if not uow.after_commit:
            uow.published = await publish_staged(ctx.pool, ctx.publisher, staged)
            return
        # The steps start first: the publish waits on the broker's acknowledgement (ms), which
        # a step such as a delivery to devices should not queue behind.
        *done, published = await asyncio.gather(
            *(step() for step in uow.after_commit),
            publish_staged(ctx.pool, ctx.publisher, staged),
            return_exceptions=True,
        )
        for outcome in done:
            if isinstance(outcome, BaseException):
                logger.opt(exception=outcome).error("{}: a step after the commit failed", ctx.agent)
        if isinstance(published, BaseException):
            raise published
        uow.published = published


# Rows younger than this belong to a handler that will flush them itself.
SWEEP_MIN_AGE_S = 10.0
_SWEEP_LOCK = 0x6D67770002


@dataclass(frozen=True)
class Staged:
    """A row staged in the outbox and the record that publishes it once its transaction
    committed (kept in memory so `publish_staged` need not read back what it just wrote)."""

    id: int
    topic: TopicSpec
    key: bytes
    value: bytes
    headers: Headers
    event_id: str


async def stage_events(
    conn: asyncpg.Connection, items: Sequence[tuple[TopicSpec, Envelope[Any]]]
) -> list[Staged]:
    """Insert envelopes into the outbox (call inside the handler's transaction)."""
    if not items:
        return []
    values = [encode(env) for _, env in items]
    rows = await conn.fetch(
        """
        INSERT INTO outbox (topic, key, envelope, event_id, event_type, version, correlation_id)
        SELECT * FROM unnest(
            $1::text[], $2::text[], $3::bytea[], $4::uuid[], $5::text[], $6::int[], $7::text[]
        )
        RETURNING id, event_id
        """,
        [spec.name for spec, _ in items],
        [env.key for _, env in items],
        values,
        [env.event_id for _, env in items],
        [env.event_type for _, env in items],
        [env.version for _, env in items],
        [env.correlation_id for _, env in items],
    )
    # Matched by event id: RETURNING promises no order.
    ids = {row["event_id"]: row["id"] for row in rows}
    return [
        Staged(
            ids[env.event_id],
            spec,
            env.key.encode(),
            value,
            envelope_headers(env),
            str(env.event_id),
        )
        for (spec, env), value in zip(items, values, strict=True)
    ]


async def _publish(
    pool: asyncpg.Pool,
    publisher: Publisher,
    records: Sequence[tuple[str, bytes, bytes, Headers, str]],
    ids: Sequence[int],
) -> int:
    if not ids:
        return 0
    await publisher.send_raw(records)
    await pool.execute("DELETE FROM outbox WHERE id = ANY($1::bigint[])", list(ids))
    return len(ids)


async def _publish_rows(
    pool: asyncpg.Pool, publisher: Publisher, rows: Sequence[asyncpg.Record]
) -> int:
    records = [
        (
            publisher.topic_name(by_name(row["topic"])),
            row["key"].encode(),
            bytes(row["envelope"]),
            headers_for(row["event_id"], row["event_type"], row["version"], row["correlation_id"]),
            str(row["event_id"]),
        )
        for row in rows
    ]
    return await _publish(pool, publisher, records, [r["id"] for r in rows])


async def publish_staged(pool: asyncpg.Pool, publisher: Publisher, staged: Sequence[Staged]) -> int:
    """Publish the staged rows (after their transaction committed) and delete them."""
    records = [
        (publisher.topic_name(s.topic), s.key, s.value, s.headers, s.event_id) for s in staged
    ]
    return await _publish(pool, publisher, records, [s.id for s in staged])


async def sweep_outbox(pool: asyncpg.Pool, publisher: Publisher, limit: int = 5000) -> int:
    """Publish rows a crashed handler left behind. One sweeper at a time across processes."""
    async with pool.acquire() as conn:
        if not await conn.fetchval("SELECT pg_try_advisory_lock($1)", _SWEEP_LOCK):
            return 0
        try:
            rows = await conn.fetch(
                "SELECT * FROM outbox "
                "WHERE created_at < now() - make_interval(secs => $1) ORDER BY id LIMIT $2",
                SWEEP_MIN_AGE_S,
                limit,
            )
            published = await _publish_rows(pool, publisher, rows)
        finally:
            await conn.execute("SELECT pg_advisory_unlock($1)", _SWEEP_LOCK)
    if published:
        logger.warning(
            "outbox sweep published {} event(s) left by an interrupted handler", published
        )
    return published
