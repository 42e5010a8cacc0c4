"""`mgw bench sona` end to end on tiny sizes: every row is printed, and the figures agree with
each other, with the targets' verdicts and with the exit code."""

from __future__ import annotations

import os
import re

import pytest

from tests.conftest import _base_database_url
from tests.helpers import run_cli

pytestmark = pytest.mark.slow

REQUESTS = 30
# (row label, samples, target quantile and limit in ms or None)
ROWS: list[tuple[str, int, tuple[int, float] | None]] = [
    ("baseline: SELECT 1 on the same pool", 500, None),
    ("adapter from PostgreSQL (LRU bypassed)", 500, (99, 2.0)),
    ("adapter from the in-process LRU", 500, None),
    ("score 1,000 candidates with the adapter", 500, (99, 1.0)),
    ("baseline: Redis GET", REQUESTS, None),
    ("baseline: gateway GET /health/live", REQUESTS, None),
    ("recommendations, cache hit (gateway)", REQUESTS, None),
    ("recommendations, miss (gateway -> Kafka -> agent -> reply)", REQUESTS, (95, 100.0)),
]


def _row(out: str, label: str) -> list[str]:
    match = re.search(r"│ " + re.escape(label) + r"\s*│(.+)│\s*$", out, re.MULTILINE)
    assert match, f"no row {label!r} in:\n{out}"
    return [cell.strip() for cell in match.group(1).split("│")]


def _number(cell: str) -> float:
    return float(cell.replace(",", ""))


async def test_bench_sona_prints_every_figure_consistently() -> None:
    # Its own broker and Redis; the machine's PostgreSQL (a scratch database, dropped after).
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KAFKA_", "REDIS_"))}
    env.update(DATABASE_URL=_base_database_url(), COLUMNS="200", LOG_LEVEL="warning")
    args = ["bench", "sona", "--users", "20", "--requests", str(REQUESTS), "--titles", "1000"]
    code, out, err = await run_cli(*args, env=env, limit_s=120)
    assert code in (0, 1), err[-3000:] + out[-3000:]

    missed = False
    for label, samples, goal in ROWS:
        p50, p95, p99, n, target, verdict = _row(out, label)
        assert 0 < _number(p50) <= _number(p95) <= _number(p99), (label, p50, p95, p99)
        assert _number(n) == samples, (label, n)
        if goal is None:
            assert (target, verdict) == ("", ""), label
            continue
        q, limit = goal
        assert target == f"p{q} < {limit:g} ms", label
        value = _number({95: p95, 99: p99}[q])
        if abs(value - limit) > 0.01:  # the printed figure is rounded
            assert verdict == ("ok" if value < limit else "MISSED"), (label, value)
        missed |= verdict == "MISSED"
    # The exit code says whether a target was missed, as the verdicts do.
    assert code == (1 if missed else 0)
    # Every miss came from the agent and every repeat from the cache; every user had an adapter.
    assert "Misses not answered as misses: 0;" in out
    assert "repeats not answered from the cache: 0;" in out
    assert "cold-start answers: 0." in out
    # A cached answer is cheaper than computing one, whatever the machine's noise.
    hit = _number(_row(out, ROWS[6][0])[0])
    miss = _number(_row(out, ROWS[7][0])[0])
    assert hit < miss
