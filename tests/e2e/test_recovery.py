"""A worker killed mid-pipeline: its successor loses no item and applies none twice."""

from __future__ import annotations

import signal
from pathlib import Path

import orjson
import pytest

from devtools.sample_catalog import generate_sample
from tests.conftest import Isolated
from tests.helpers import read_topic, run_cli, wait_for

pytestmark = pytest.mark.slow


async def test_sigkill_mid_batch_loses_nothing_and_duplicates_no_effect(
    spawn, isolated: Isolated, tmp_path: Path
) -> None:
    pool, settings = isolated.pool, isolated.settings
    sample = generate_sample(1500, seed=23)
    path = tmp_path / "catalog.jsonl"
    path.write_bytes(b"".join(orjson.dumps(item) + b"\n" for item in sample.items))
    titles = len(set(sample.truth.values()))

    first = spawn("worker", "ingestion", extra_env=isolated.env)
    code, _, err = await run_cli("ingest", str(path), env=first.env)
    assert code == 0, err

    async def some_progress() -> bool:
        done = await pool.fetchval("SELECT count(*) FROM entity_mappings")
        return 0 < done < len(sample.items)

    await wait_for(some_progress, timeout=30, interval=0.01)
    first.popen.send_signal(signal.SIGKILL)
    first.popen.wait(10)

    spawn("worker", "ingestion", extra_env=isolated.env)

    async def all_mapped() -> bool:
        done = await pool.fetchval("SELECT count(*) FROM entity_mappings")
        return done == len(sample.items)

    await wait_for(all_mapped, timeout=90)
    ours = await pool.fetchval("SELECT count(DISTINCT canonical_id) FROM entity_mappings")
    assert ours == titles

    # Every title announced: events staged before the kill are swept out of the outbox; a
    # record published twice carries the same event id, so subscribers can drop the copy.
    topic = f"{settings.kafka.topic_prefix}.content.ingested"

    async def announced() -> set[str] | None:
        records = await read_topic(settings.kafka.bootstrap, topic, settle_s=0.5)
        event_ids = {dict(r.headers)["event_id"].decode() for r in records}
        keys = {r.key for r in records}
        pending = await pool.fetchval("SELECT count(*) FROM outbox")
        return event_ids if len(keys) >= titles and pending == 0 else None

    event_ids = await wait_for(announced, timeout=60, interval=1)
    records = await read_topic(settings.kafka.bootstrap, topic)
    assert len({r.key for r in records}) == len(event_ids) == titles
