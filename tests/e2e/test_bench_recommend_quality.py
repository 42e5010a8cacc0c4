"""`mgw bench recommend-quality` end to end on a few users: the real films of those users go in
through ingestion and enrichment, their ratings through the topics, every method's row is
printed for both groups of users, and the verdicts agree with the figures and the exit code."""

from __future__ import annotations

import os
import re

import pytest

from tests.conftest import _base_database_url
from tests.helpers import run_cli

pytestmark = pytest.mark.slow

METHODS = (
    "SONA as configured",
    "SONA, adapter off (profile only)",
    "most popular",
    "item-to-item co-occurrence",
    "ALS (implicit)",
)


def _rows(out: str, method: str) -> list[list[float]]:
    found = re.findall(r"│ " + re.escape(method) + r"\s*│(.+)│\s*$", out, re.MULTILINE)
    return [[float(cell) for cell in row.split("│")] for row in found]


async def test_bench_recommend_quality_prints_every_method_and_its_verdicts() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KAFKA_", "REDIS_"))}
    # The adapter on (off by default), so the population layer is trained and used end to end.
    env.update(
        DATABASE_URL=_base_database_url(),
        COLUMNS="200",
        LOG_LEVEL="warning",
        SONA_ADAPTER_ENABLED="true",
    )
    args = ["bench", "recommend-quality", "--users", "12", "--seed", "3"]
    code, out, err = await run_cli(*args, env=env, limit_s=600)
    assert code in (0, 1), err[-3000:] + out[-3000:]
    for method in METHODS:
        rows = _rows(out, method)
        assert len(rows) == 2, (method, out)  # users with history, cold-start users
        for hr, ndcg, coverage, diversity in rows:
            assert 0 <= ndcg <= hr <= 1 or (hr == 0 and ndcg == 0), (method, rows)
            assert 0 <= coverage <= 1 and 0 <= diversity <= 1, (method, rows)
    # Every stage said how far it got.
    stages = ("films embedded", "events folded in", "population layer trained")
    for stage in (*stages, "recommendations asked (adapter off)"):
        assert stage in err, err[-2000:]
    verdicts = re.findall(r"│ (ok|MISSED)\s*│\s*$", out, re.MULTILINE)
    assert len(verdicts) == 3, out
    assert code == (1 if "MISSED" in verdicts else 0)
    sona_hr = _rows(out, METHODS[0])[0][0]
    popular_hr = _rows(out, "most popular")[0][0]
    ratio_ok = popular_hr == 0 or sona_hr / popular_hr >= 1.5
    assert verdicts[0] == ("ok" if ratio_ok else "MISSED"), out
    assert "seed 3" in out
