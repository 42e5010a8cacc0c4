"""Transactional outbox: an event is written in the same transaction as the change it reports.

Publishing after commit could lose the event if the process died in between (the redelivered
input would find nothing left to change and emit nothing). So handlers `stage()` envelopes in
the `outbox` table inside their transaction, and `flush()` publishes them after commit and
deletes what the broker acknowledged. `sweep()` (a periodic task) publishes rows left behind by
a crash; a row published twice carries the same event id both times, so subscribers can tell.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg
from loguru import logger

from core.publisher import Headers, Publisher, envelope_headers, headers_for
from schemas.envelope import Envelope, encode
from topics.registry import TopicSpec, by_name

# Rows younger than this belong to a handler that will flush them itself.
SWEEP_MIN_AGE_S = 10.0
_SWEEP_LOCK = 0x6D67770002


@dataclass(frozen=True)
class Staged:
    """A row staged in the outbox and the record that publishes it once its transaction
    committed (kept in memory so `flush` need not read back what it just wrote)."""

    id: int
    topic: TopicSpec
    key: bytes
    value: bytes
    headers: Headers
    event_id: str


async def stage(
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


async def flush(pool: asyncpg.Pool, publisher: Publisher, staged: Sequence[Staged]) -> int:
    """Publish the staged rows (after their transaction committed) and delete them."""
    records = [
        (publisher.topic_name(s.topic), s.key, s.value, s.headers, s.event_id) for s in staged
    ]
    return await _publish(pool, publisher, records, [s.id for s in staged])


async def sweep(pool: asyncpg.Pool, publisher: Publisher, limit: int = 5000) -> int:
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
