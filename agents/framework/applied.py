"""Operations applied once, by event id.

A client that retries a write after an ambiguous answer sends the same `Idempotency-Key`, and
the gateway gives the retry the same event id (gateway/idempotency.py); a redelivered record
has the same event id as well. An agent whose effect is not idempotent by its content alone
(a state stamped at the gateway, so a retry looks newer) calls `first_seen` on its unit of
work's connection: the ids are claimed in the same transaction as the effects, so a batch
that fails releases them with everything else, and a committed one keeps them for good.
"""

from __future__ import annotations

from collections.abc import Sequence
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


async def first_seen(
    conn: asyncpg.Connection, agent: str, batch: Sequence[Envelope[Any]]
) -> list[Envelope[Any]]:
    """The envelopes of `batch` this agent has not applied before, in batch order; a repeat
    within the batch counts once (its first occurrence)."""
    unique = list(dict.fromkeys(env.event_id for env in batch))
    fresh = {row["event_id"] for row in await conn.fetch(_CLAIM, agent, unique)}
    out = []
    for env in batch:
        if env.event_id in fresh:
            fresh.discard(env.event_id)
            out.append(env)
    return out


async def forget_before(pool: asyncpg.Pool | asyncpg.Connection, cutoff: datetime) -> int:
    """Drop claims older than `cutoff` (no record that old can still be redelivered)."""
    status = await pool.execute("DELETE FROM applied_operations WHERE applied_at < $1", cutoff)
    return int(status.split()[-1])
