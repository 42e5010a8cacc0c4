"""Committed offsets past the end of their log (a broker that lost its data, a topic created
again) are a detected fault: the worker reads such a partition again from its log start, says
so with the numbers, counts it, and the backlog reports it instead of hiding it as 0."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import orjson
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.structs import OffsetAndMetadata
from prometheus_client.parser import text_string_to_metric_families

from cli.backlog import Backlog, BacklogProbe, describe
from cli.records import known_ends, partitions_of
from devtools.sample_catalog import generate_sample
from tests.conftest import Isolated
from tests.helpers import run_cli, wait_for
from topics.registry import CONTENT_RAW

pytestmark = pytest.mark.slow

# Far beyond anything the test writes: what a group keeps after its broker lost the records.
STALE_BY = 150


async def log_ends(bootstrap: str, topic: str) -> dict[TopicPartition, int]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        tps = await partitions_of(consumer, topic)
        consumer.assign(tps)
        return await known_ends(consumer, tps)
    finally:
        await consumer.stop()


async def commit(bootstrap: str, group: str, offsets: dict[TopicPartition, int]) -> None:
    """Commit offsets for `group` from outside it, as its members before the loss did."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False
    )
    await consumer.start()
    try:
        consumer.assign(list(offsets))
        await consumer.commit({tp: OffsetAndMetadata(n, "") for tp, n in offsets.items()})
    finally:
        await consumer.stop()


async def committed(bootstrap: str, group: str, tps: list[TopicPartition]) -> dict[int, int]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        found = await admin.list_consumer_group_offsets(group, partitions=tps)
    finally:
        await admin.close()
    return {tp.partition: meta.offset for tp, meta in found.items()}


def resets(metrics_url: str) -> dict[str, float]:
    """mgw_consumer_offset_resets_total per partition of content.raw."""
    text = httpx.get(metrics_url, timeout=5).text
    found: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if (
                sample.name == "mgw_consumer_offset_resets_total"
                and sample.labels["topic"] == CONTENT_RAW.name
            ):
                found[sample.labels["partition"]] = sample.value
    return found


async def test_a_committed_offset_past_the_log_end_is_reset_to_the_start_and_reported(
    spawn, isolated: Isolated, tmp_path: Path
) -> None:
    settings, pool = isolated.settings, isolated.pool
    bootstrap, prefix = settings.kafka.bootstrap, settings.kafka.topic_prefix
    topic = CONTENT_RAW.full_name(prefix)
    group = f"{prefix}-ingestion"
    sample = generate_sample(40, seed=3, invalid_fraction=0)
    path = tmp_path / "catalog.jsonl"
    path.write_bytes(b"".join(orjson.dumps(item) + b"\n" for item in sample.items))
    code, _, err = await run_cli("ingest", str(path), env=isolated.env)
    assert code == 0, err

    ends = await log_ends(bootstrap, topic)
    assert sum(ends.values()) == len(sample.items)
    stale = {tp: end + STALE_BY for tp, end in ends.items()}
    await commit(bootstrap, group, stale)

    # The backlog shows the fault with its numbers, not a lag of 0.
    def measure() -> Backlog:
        # `mgw up` measures from sync code; the probe runs a loop of its own.
        probe = BacklogProbe(bootstrap, prefix, group, None, index={CONTENT_RAW.name: ()})
        try:
            return probe.measure()
        finally:
            probe.close()

    backlog = await asyncio.to_thread(measure)
    assert {(p.partition, p.committed, p.end) for p in backlog.past_end} == {
        (tp.partition, stale[tp], ends[tp]) for tp in ends
    }
    assert not backlog.drained
    assert "past the log end" in describe(backlog)

    worker = spawn("worker", "ingestion", extra_env=isolated.env)

    async def all_mapped() -> bool:
        done = await pool.fetchval("SELECT count(*) FROM entity_mappings")
        return done == len(sample.items)

    await wait_for(all_mapped, timeout=60, interval=0.2)
    # Every partition reset once, logged with its numbers, and committed back inside its log.
    assert resets(f"{worker.url}/metrics") == {str(tp.partition): 1.0 for tp in ends}
    errors = [line for line in worker.log_lines() if "past the end of its log" in line]
    assert len(errors) == len(ends), "\n".join(worker.log_lines()[-40:])
    first = min(ends, key=lambda tp: tp.partition)
    assert any(
        f"{CONTENT_RAW.name}[{first.partition}]" in line
        and f"offset {stale[first]}" in line
        and f"log end {ends[first]}" in line
        for line in errors
    ), errors

    async def repaired() -> bool:
        now = await committed(bootstrap, group, list(ends))
        return all(0 <= now[tp.partition] <= ends[tp] for tp in ends)

    await wait_for(repaired, timeout=20, interval=0.2)
