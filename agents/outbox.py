"""Transactional outbox: an event is written in the same transaction as the change it reports.

Publishing after commit could lose the event if the process died in between (the redelivered
input would find nothing left to change and emit nothing). So handlers `stage()` envelopes in
the `outbox` table inside their transaction, and `flush()` publishes them after commit and
deletes what the broker acknowledged. `sweep()` (a periodic task) publishes rows left behind by
a crash; a row published twice carries the same event id both times, so subscribers can tell.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import asyncpg
from loguru import logger

from core.publisher import Publisher, headers_for
from schemas.envelope import Envelope, encode
from topics.catalog import TopicSpec, by_name

# Rows younger than this belong to a handler that will flush them itself.
SWEEP_MIN_AGE_S = 10.0
_SWEEP_LOCK = 0x6D67770002


async def stage(
    conn: asyncpg.Connection, items: Sequence[tuple[TopicSpec, Envelope[Any]]]
) -> list[int]:
    """Insert envelopes into the outbox (call inside the handler's transaction)."""
    if not items:
        return []
    rows = await conn.fetch(
        """
        INSERT INTO outbox (topic, key, envelope, event_id, event_type, version, correlation_id)
        SELECT * FROM unnest(
            $1::text[], $2::text[], $3::bytea[], $4::uuid[], $5::text[], $6::int[], $7::text[]
        )
        RETURNING id
        """,
        [spec.name for spec, _ in items],
        [env.key for _, env in items],
        [encode(env) for _, env in items],
        [env.event_id for _, env in items],
        [env.event_type for _, env in items],
        [env.version for _, env in items],
        [env.correlation_id for _, env in items],
    )
    return [r["id"] for r in rows]


async def _publish_rows(
    pool: asyncpg.Pool, publisher: Publisher, rows: Sequence[asyncpg.Record]
) -> int:
    if not rows:
        return 0
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
    await publisher.send_raw(records)
    await pool.execute("DELETE FROM outbox WHERE id = ANY($1::bigint[])", [r["id"] for r in rows])
    return len(rows)


async def flush(pool: asyncpg.Pool, publisher: Publisher, ids: Sequence[int]) -> int:
    """Publish the staged rows `ids` (after their transaction committed) and delete them."""
    if not ids:
        return 0
    rows = await pool.fetch(
        "SELECT * FROM outbox WHERE id = ANY($1::bigint[]) ORDER BY id",
        list(ids),
    )
    return await _publish_rows(pool, publisher, rows)


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
