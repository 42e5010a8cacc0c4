"""Poison never blocks: rows a sweep or batch cannot process are set aside with the reason.

A periodic sweep that takes "the next 100 due rows" and fails on one of them fails on it at
every run, and the rows behind it are never reached. So a sweep processes what it can, isolates
the rows that fail deterministically (`isolate` splits the work until each failure is alone),
and records them in the `quarantine` table with the reason; its queries skip quarantined rows
of the version that failed, and a newer version of the row is tried again. Transient failures
(a dependency down) are not the row's fault: they propagate, and the whole run is retried.

Operators see quarantined rows in readiness (`quarantine` component), in
`mgw_quarantined_rows` and in the table itself; deleting a row retries it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import asyncpg
from loguru import logger

from agents.framework.runtime import MAX_ERROR_CHARS, TRANSIENT_ERRORS
from core.observability.metrics import QUARANTINED_ROWS, ROWS_QUARANTINED
from core.observability.probes import CheckFailed

T = TypeVar("T")


@dataclass(frozen=True)
class Poison:
    entity_id: str
    version: str  # of the row that failed: a newer version is tried again
    reason: str  # short code, e.g. invalid_document
    error: str


def poison_of(entity_id: object, version: object, reason: str, exc: BaseException) -> Poison:
    return Poison(str(entity_id), str(version), reason, f"{type(exc).__name__}: {exc}")


async def isolate(
    items: Sequence[T],
    run: Callable[[Sequence[T]], Awaitable[Any]],
    transient: tuple[type[BaseException], ...] = TRANSIENT_ERRORS,
) -> list[tuple[T, Exception]]:
    """Run `run` over `items`; when it fails deterministically, over halves, down to single
    items. Returns the items that fail alone, with their errors. Transient errors propagate,
    and so does a failure of every one of several items: that is the dependency failing, not
    the items. (A clean run costs one call; k poison items about 2k log2(n) calls.)"""
    failures = await _bisect(items, run, transient)
    if len(items) > 1 and len(failures) == len(items):
        raise failures[0][1]
    return failures


async def _bisect(
    items: Sequence[T],
    run: Callable[[Sequence[T]], Awaitable[Any]],
    transient: tuple[type[BaseException], ...],
) -> list[tuple[T, Exception]]:
    if not items:
        return []
    try:
        await run(items)
        return []
    except transient:
        raise
    except Exception as exc:
        if len(items) == 1:
            return [(items[0], exc)]
    middle = len(items) // 2
    return [
        *await _bisect(items[:middle], run, transient),
        *await _bisect(items[middle:], run, transient),
    ]


_UPSERT = """
INSERT INTO quarantine AS q (agent, entity_id, version, reason, error)
SELECT $1, * FROM unnest($2::text[], $3::text[], $4::text[], $5::text[])
ON CONFLICT (agent, entity_id) DO UPDATE SET
    attempts = CASE WHEN q.version = EXCLUDED.version THEN q.attempts + 1 ELSE 1 END,
    version = EXCLUDED.version, reason = EXCLUDED.reason, error = EXCLUDED.error,
    last_failed_at = now()
"""


async def quarantine(
    conn: asyncpg.Connection | asyncpg.Pool, agent: str, poisons: Sequence[Poison]
) -> None:
    """Set these rows aside for `agent`, the worker group whose work they block (upsert: a row
    failing again counts an attempt)."""
    if not poisons:
        return
    await conn.execute(
        _UPSERT,
        agent,
        [p.entity_id for p in poisons],
        [p.version for p in poisons],
        [p.reason for p in poisons],
        [p.error[:MAX_ERROR_CHARS] for p in poisons],
    )
    for p in poisons:
        ROWS_QUARANTINED.labels(agent, p.reason).inc()
        logger.bind(agent=agent, entity_id=p.entity_id, reason=p.reason).warning(
            "{}: {} (version {}) quarantined, the rest goes on: {}",
            agent,
            p.entity_id,
            p.version,
            p.error[:300],
        )


async def release(
    conn: asyncpg.Connection | asyncpg.Pool, agent: str, entity_ids: Sequence[object]
) -> None:
    """Forget quarantined versions of rows that have now been processed."""
    if entity_ids:
        await conn.execute(
            "DELETE FROM quarantine WHERE agent = $1 AND entity_id = ANY($2::text[])",
            agent,
            [str(e) for e in entity_ids],
        )


@dataclass(frozen=True)
class QuarantineSummary:
    agent: str
    rows: int
    reason: str  # of the latest failure
    error: str
    entity_id: str


async def summary(conn: asyncpg.Connection | asyncpg.Pool) -> list[QuarantineSummary]:
    """Per agent: how many rows are quarantined, and the latest of them."""
    rows = await conn.fetch(
        """
        SELECT DISTINCT ON (agent) agent, count(*) OVER (PARTITION BY agent) AS n,
               reason, error, entity_id
        FROM quarantine ORDER BY agent, last_failed_at DESC
        """
    )
    out = [
        QuarantineSummary(r["agent"], r["n"], r["reason"], r["error"], r["entity_id"]) for r in rows
    ]
    for agent in _GAUGED - {s.agent for s in out}:
        QUARANTINED_ROWS.labels(agent).set(0)
    for item in out:
        QUARANTINED_ROWS.labels(item.agent).set(item.rows)
        _GAUGED.add(item.agent)
    return out


_GAUGED: set[str] = set()


def quarantine_check(
    url: str, timeout_s: float, groups: Collection[str]
) -> Callable[[], Awaitable[dict[str, Any]]]:
    """Readiness: fails while a row of one of `groups` is quarantined (quarantine entries are
    kept under the worker group's name). An optional component: the process is degraded, not
    down. On a connection of its own, like the PostgreSQL probe."""

    async def check() -> dict[str, Any]:
        conn = await asyncpg.connect(url, timeout=timeout_s)
        try:
            found = [s for s in await summary(conn) if s.agent in groups]
        finally:
            await conn.close(timeout=timeout_s)
        if not found:
            return {"rows": 0}
        # The reason code, not the error's text (`mgw` quarantine commands show it).
        parts = [f"{s.agent}: {s.rows} row(s), latest {s.entity_id} ({s.reason})" for s in found]
        raise CheckFailed("quarantined rows need an operator: " + "; ".join(parts))

    return check
