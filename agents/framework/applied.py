"""Operations applied once, by event id.

A client that retries a write after an ambiguous answer sends the same `Idempotency-Key`, and
the gateway gives the retry the same event id (gateway/idempotency.py); a redelivered record
has the same event id as well. An agent whose effect is not idempotent by its content alone
(a state stamped at the gateway, so a retry looks newer) calls `first_seen` on its unit of
work's connection: the ids are claimed in the same transaction as the effects, so a batch
that fails releases them with everything else, and a committed one keeps them for good.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Iterable, Sequence
from datetime import datetime
from typing import Any

import asyncpg

from schemas.envelope import Envelope

_CLAIM = """
INSERT INTO applied_operations (agent, event_id)
SELECT $1, unnest($2::uuid[])
ON CONFLICT DO NOTHING
RETURNING event_id
"""


async def claim(
    conn: asyncpg.Connection, agent: str, event_ids: Iterable[uuid.UUID]
) -> set[uuid.UUID]:
    """The ids of `event_ids` this agent has not applied before, now marked applied."""
    unique = list(dict.fromkeys(event_ids))
    if not unique:
        return set()
    return {row["event_id"] for row in await conn.fetch(_CLAIM, agent, unique)}


async def first_seen(
    conn: asyncpg.Connection, agent: str, batch: Sequence[Envelope[Any]]
) -> list[Envelope[Any]]:
    """The envelopes of `batch` this agent has not applied before, in batch order; a repeat
    within the batch counts once (its first occurrence)."""
    fresh = await claim(conn, agent, (env.event_id for env in batch))
    out = []
    for env in batch:
        if env.event_id in fresh:
            fresh.discard(env.event_id)
            out.append(env)
    return out


async def forget_before(
    pool: asyncpg.Pool | asyncpg.Connection, agents: Collection[str], cutoff: datetime
) -> int:
    """Drop these agents' claims older than `cutoff` (no record that old, on the topics they
    consume, can still be redelivered)."""
    status = await pool.execute(
        "DELETE FROM applied_operations WHERE agent = ANY($1::text[]) AND applied_at < $2",
        list(agents),
        cutoff,
    )
    return int(status.split()[-1])
