"""`mgw bench ingest` end to end on a small catalog: it runs both workers and prints figures."""

from __future__ import annotations

import os
import re

import pytest

from tests.conftest import _base_database_url
from tests.helpers import run_cli


def _figure(out: str, label: str) -> str:
    """The cell after `label` in the printed tables."""
    match = re.search(re.escape(label) + r"\s*│\s*([^│]+?)\s*│", out)
    assert match, f"no row {label!r} in:\n{out}"
    return match.group(1)


def _rate(cell: str) -> float:
    match = re.fullmatch(r"([\d,]+) events/s", cell)
    assert match, cell
    return float(match.group(1).replace(",", ""))


@pytest.mark.asyncio
async def test_bench_ingest_prints_rates_ratio_and_where_the_time_goes() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KAFKA_", "REDIS_"))}
    env.update(DATABASE_URL=_base_database_url(), COLUMNS="200", LOG_LEVEL="warning")
    code, out, err = await run_cli("bench", "ingest", "--events", "300", env=env, limit_s=240)
    assert code == 0, err[-3000:]
    bare = _rate(_figure(out, "bare Faust agent (consume + count)"))
    pipeline = _rate(_figure(out, "process batch -> PostgreSQL"))
    # 300 items are one or two batches: the rates mean little, but must be consistent.
    assert float(_figure(out, "ratio")) == pytest.approx(pipeline / bare, abs=0.006)
    # Every item ended in PostgreSQL: the figures are of work actually done.
    assert _figure(out, "items mapped in PostgreSQL") == "300"
    stages = [
        "decode + validate the envelopes",
        "resolve entities",
        "upsert content, availability, mappings (PostgreSQL)",
        "publish (acks=all) + delete from the outbox",
    ]
    for label in stages:
        assert int(_figure(out, label).replace(",", "")) > 0, label
    # The stages and Faust's share add up to the total (rounding aside).
    breakdown = out.split("process batch, per item")[1].split("enrichment of the stored titles")[0]
    rows = re.findall(r"│ (.+?)\s+│\s+([\d,]+)\s+│", breakdown)
    table = {label: int(value.replace(",", "")) for label, value in rows}
    parts = [v for k, v in table.items() if not k.startswith(("total", "bare", "what"))]
    assert abs(sum(parts) - table["total"]) <= len(parts)
    # Then the real enrichment worker, event path and sweep both live: each title once.
    titles = int(_figure(out, "titles").replace(",", ""))
    assert titles > 0
    assert _figure(out, "texts embedded") == f"{titles:,}"
    assert _figure(out, "embedding work per title") == "1.000"
