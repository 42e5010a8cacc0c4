"""`mgw bench relevance` end to end on a small sample: it runs the real search engine over
ggplot2movies (a change of the engine's construction broke it once, unnoticed), and prints each
query kind's figures beside the rapidfuzz baseline, with verdicts that agree with the exit code."""

from __future__ import annotations

import os
import re

import pytest
import redis

from tests.conftest import _base_database_url
from tests.helpers import run_cli

pytestmark = pytest.mark.slow

KINDS = ("exact title", "one typo", "prefix")


def _bench_keys(redis_url: str) -> int:
    client = redis.Redis.from_url(redis_url)
    try:
        return sum(1 for _ in client.scan_iter(match="mgw-bench-relevance-*", count=10_000))
    finally:
        client.close()


async def test_bench_relevance_prints_each_kind_beside_its_baseline(redis_url: str) -> None:
    # The bench writes its result cache into the Redis of REDIS_URL: the tests' own.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KAFKA_", "REDIS_"))}
    env["REDIS_URL"] = redis_url
    before = _bench_keys(env["REDIS_URL"])
    env.update(DATABASE_URL=_base_database_url(), COLUMNS="200", LOG_LEVEL="warning")
    args = ["bench", "relevance", "--titles", "300", "--queries", "10", "--seed", "3"]
    code, out, err = await run_cli(*args, env=env, limit_s=600)
    assert code in (0, 1), err[-3000:] + out[-3000:]
    for kind in KINDS:
        row = re.search(rf"│ {re.escape(kind)}\s*│\s*(\d+)\s*│ first result right\s*│(.+)│", out)
        assert row, f"no row for {kind!r} in:\n{out}"
        cells = [c.strip() for c in row.group(2).split("│")]
        project, baseline = float(cells[0]), float(cells[1])
        assert 0.0 <= project <= 1.0 and 0.0 <= baseline <= 1.0, cells
    missed = "MISSED" in out
    assert code == (1 if missed else 0), out[-3000:]
    # It leaves nothing in a Redis it may share.
    assert _bench_keys(env["REDIS_URL"]) == before
