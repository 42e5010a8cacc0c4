"""A messy multi-platform catalog through `mgw ingest`, the pipeline agents and every sink."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from pathlib import Path

import httpx
import orjson
import pytest
import redis.asyncio as aioredis
from prometheus_client.parser import text_string_to_metric_families

from agreements.read_model import document_key
from core.config import Settings
from devtools.sample_catalog import generate_sample
from tests.conftest import Isolated, Proc
from tests.helpers import read_topic, run_cli, wait_for

pytestmark = pytest.mark.slow

# "A catalog file of a few thousand titles" (issue 3): 3,300 listings of 2,000 titles.
TITLES = 2000


def consumed(proc: Proc, agent: str) -> float:
    text = httpx.get(f"{proc.url}/metrics", timeout=5).text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "mgw_events_consumed_total" and sample.labels.get("agent") == agent:
                return sample.value
    return 0.0


async def run_ingest(path: Path, env: dict[str, str]) -> str:
    code, _, err = await run_cli("ingest", str(path), env=env)
    assert code == 0, err
    return err


async def topic_counts(settings: Settings) -> Counter[str]:
    counts: Counter[str] = Counter()
    for name in (
        "content.ingested",
        "content.updated",
        "content.availability_changed",
        "content.metadata_enriched",
    ):
        topic = f"{settings.kafka.topic_prefix}.{name}"
        counts[name] = len(await read_topic(settings.kafka.bootstrap, topic))
    return counts


async def test_catalog_file_ends_in_every_sink_and_replays_to_nothing(
    spawn, isolated: Isolated, tmp_path: Path
) -> None:
    pool, settings = isolated.pool, isolated.settings
    sample = generate_sample(TITLES, seed=11, invalid_fraction=0.01)
    path = tmp_path / "catalog.jsonl"
    path.write_bytes(b"".join(orjson.dumps(item) + b"\n" for item in sample.items))
    expected_titles = len({sample.truth[k] for k in sample.truth if k not in sample.invalid})
    accepted_items = len(sample.items) - len(sample.invalid)

    worker = spawn("worker", "ingestion", "enrichment", "readmodel", extra_env=isolated.env)
    env = {**worker.env}
    summary = await run_ingest(path, env)
    assert f"{accepted_items} accepted" in summary, summary
    assert f"{len(sample.invalid)} rejected" in summary, summary

    async def all_mapped() -> bool:
        return await pool.fetchval("SELECT count(*) FROM entity_mappings") >= accepted_items

    await wait_for(all_mapped, timeout=60)
    # One canonical row per real-world title, whatever platforms and spellings it came with.
    titles = await pool.fetchval("SELECT count(*) FROM content")
    assert titles == expected_titles
    wrong = await pool.fetch("SELECT platform, platform_item_id, canonical_id FROM entity_mappings")
    by_title: dict[int, set[uuid.UUID]] = {}
    for row in wrong:
        by_title.setdefault(
            sample.truth[f"{row['platform']}:{row['platform_item_id']}"], set()
        ).add(row["canonical_id"])
    assert all(len(ids) == 1 for ids in by_title.values())

    # Availability rows for every offered region; each title enriched with a quality score.
    offers = await pool.fetchval("SELECT count(*) FROM platform_availability")
    assert offers > titles

    async def all_enriched() -> bool:
        return (
            await pool.fetchval(
                "SELECT count(*) FROM content WHERE enriched_version = updated_at "
                "AND data_quality_score > 0"
            )
            == titles
        )

    try:
        await wait_for(all_enriched, timeout=240)
    except TimeoutError:
        due = await pool.fetch(
            "SELECT canonical_id, enriched_version, updated_at, data_quality_score, enriched_at "
            "FROM content WHERE enriched_version IS DISTINCT FROM updated_at "
            "OR data_quality_score IS NULL OR data_quality_score <= 0 LIMIT 5"
        )
        raise AssertionError(f"not enriched: {due}") from None

    counts = await settled_counts(settings)
    assert counts["content.metadata_enriched"] >= titles
    assert counts["content.ingested"] == titles
    assert counts["content.availability_changed"] > 0

    # The read model: every title's document in Redis, served by the gateway.
    client = aioredis.from_url(settings.redis.require_url())
    try:
        some = await pool.fetch("SELECT canonical_id, title FROM content LIMIT 20")
        for row in some:
            raw = await wait_for(
                lambda r=row: client.get(
                    document_key(settings.redis.key_prefix, r["canonical_id"])
                ),
                timeout=30,
            )
            assert orjson.loads(raw)["title"] == row["title"]
    finally:
        await client.aclose()
    gateway = spawn("gateway", extra_env=isolated.env)
    first = some[0]
    async with httpx.AsyncClient(base_url=gateway.url) as http:
        got = await http.get(f"/api/v1/content/{first['canonical_id']}")
        assert got.status_code == 200 and got.json()["title"] == first["title"]
        assert (await http.get(f"/api/v1/content/{uuid.uuid4()}")).status_code == 404

    # The same file again: published again, processed again, and nothing changes.
    before_rows = await pool.fetch("SELECT canonical_id, updated_at FROM content ORDER BY 1")
    consumed_before = consumed(worker, "process-batch")
    summary = await run_ingest(path, env)
    assert f"{accepted_items} accepted" in summary
    await wait_for(
        lambda: consumed(worker, "process-batch") >= consumed_before + accepted_items, timeout=60
    )
    after_counts = await settled_counts(settings)
    assert after_counts == counts
    after_rows = await pool.fetch("SELECT canonical_id, updated_at FROM content ORDER BY 1")
    assert after_rows == before_rows

    # Vectors: one per title in the vector store (opened once the worker let go of it).
    worker.stop()
    from agents.adapters.vectors.factory import create_vector_store

    store = create_vector_store(settings)
    try:
        assert await store.count() == titles
        ids = [r["canonical_id"] for r in some]
        stored = await store.get(ids)
        assert set(stored) == set(ids)
    finally:
        await store.close()


async def settled_counts(settings: Settings, quiet_reads: int = 3) -> Counter[str]:
    """Topic counts once they stop moving (enrichment of updated titles trails ingestion)."""
    last: Counter[str] | None = None
    same = 0
    for _ in range(120):
        counts = await topic_counts(settings)
        same = same + 1 if counts == last else 0
        if same >= quiet_reads:
            return counts
        last = counts
        await asyncio.sleep(1)
    raise TimeoutError(f"topic counts still moving: {last}")
