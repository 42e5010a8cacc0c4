"""PostgreSQL lost mid-stream: the worker waits it out and afterwards nothing is lost or doubled.

A drill on a throw-away PostgreSQL of the test's own (never the machine's server): the
ingestion worker is half-way through a catalog when the server goes away, either crashed
(SIGKILL of its whole process group) or shut down (the fast shutdown of SIGINT, whose
backends answer "terminating connection due to administrator command"). While it is down the
worker must stay alive, drop out of readiness, and commit no offset: offsets are committed
only after effects are durable (agents/framework/runtime.py). Once the server is back on the
same data dir and port, every item is mapped exactly once.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import httpx
import orjson
import pytest
from aiokafka import TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from agents.framework.kafka.app import consumer_group
from core.config import Settings, settings_with
from core.embedded import ServiceProcess, start_postgres
from devtools.sample_catalog import generate_sample
from tests.conftest import Proc
from tests.helpers import read_topic, run_cli, wait_for
from topics.registry import CONTENT_RAW

pytestmark = pytest.mark.slow

CRASH, SHUTDOWN = "crash", "shutdown"
# Long enough for a batch acked just before the outage to be committed (Faust commits acked
# offsets every KAFKA_COMMIT_INTERVAL_S, 1 s by default) before the first reading.
SETTLE_S = 2.5
# Between the two readings of committed offsets during the outage: several commit intervals.
OUTAGE_READINGS_APART_S = 4.0


@dataclass
class Drill:
    """A throw-away PostgreSQL (restartable on its data dir and port) and the env of a worker
    that uses it, with its own topic prefix, Redis prefix and vector store."""

    data_dir: Path
    port: int
    server: ServiceProcess
    env: dict[str, str]
    settings: Settings

    @property
    def url(self) -> str:
        return self.server.url

    async def connect(self) -> asyncpg.Connection:
        return await asyncpg.connect(self.url)

    async def crash(self) -> None:
        # start_new_session made the postmaster its group's leader: this kills its backends
        # too, as a machine or container loss would, with no shutdown message to clients.
        pid = self.server.pid
        assert pid is not None
        os.killpg(pid, signal.SIGKILL)
        await asyncio.to_thread(self.server.stop)

    async def shut_down(self) -> None:
        await asyncio.to_thread(self.server.stop)

    async def restart(self) -> None:
        self.server = await asyncio.to_thread(start_postgres, self.data_dir, self.port)


@pytest.fixture
async def drill(service_env: dict[str, str], tmp_path: Path) -> AsyncIterator[Drill]:
    from agents.framework.migrate import migrate_url
    from topics.admin import create_topics

    data_dir = tmp_path / "pg"
    server = await asyncio.to_thread(start_postgres, data_dir)
    state: Drill | None = None
    try:
        assert server.port is not None
        await migrate_url(server.url)
        tag = uuid.uuid4().hex[:6]
        env = {
            **service_env,
            "DATABASE_URL": server.url,
            "KAFKA_TOPIC_PREFIX": f"{service_env['KAFKA_TOPIC_PREFIX']}-pg{tag}",
            "REDIS_KEY_PREFIX": f"{service_env['REDIS_KEY_PREFIX']}-pg{tag}",
            "QDRANT_PATH": str(tmp_path / "qdrant"),
        }
        settings = settings_with(env)
        await create_topics(settings.kafka.bootstrap, settings.kafka.topic_prefix)
        state = Drill(data_dir, server.port, server, env, settings)
        yield state
    finally:
        # The drill restarts the server: stop whichever instance is current.
        await asyncio.to_thread((state.server if state is not None else server).stop)


async def committed_offsets(settings: Settings, group: str) -> dict[int, int]:
    """The group's committed offset per content.raw partition (-1: none yet)."""
    topic = CONTENT_RAW.full_name(settings.kafka.topic_prefix)
    partitions = [TopicPartition(topic, p) for p in range(CONTENT_RAW.partitions)]
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka.bootstrap)
    await admin.start()
    try:
        # Without `partitions=` the answer fails to decode on Tansu (docs/BROKER.md).
        offsets = await admin.list_consumer_group_offsets(group, partitions=partitions)
    finally:
        await admin.close()
    return {tp.partition: meta.offset for tp, meta in offsets.items()}


async def wait_ready_status(url: str, status: int, within_s: float) -> float:
    """Poll readiness until it answers `status`; the seconds that took."""
    began = time.monotonic()
    async with httpx.AsyncClient(timeout=2) as client:

        async def answered() -> bool:
            try:
                return (await client.get(url)).status_code == status
            except httpx.HTTPError:
                return False

        await wait_for(answered, timeout=within_s, interval=0.05)
    return time.monotonic() - began


@pytest.mark.parametrize("outage", [CRASH, SHUTDOWN])
async def test_postgres_outage_mid_stream_waits_loses_nothing_and_doubles_nothing(
    outage: str, drill: Drill, spawn: Callable[..., Proc], tmp_path: Path
) -> None:
    settings = drill.settings
    sample = generate_sample(1500, seed=29)
    path = tmp_path / "catalog.jsonl"
    path.write_bytes(b"".join(orjson.dumps(item) + b"\n" for item in sample.items))
    titles = len(set(sample.truth.values()))
    group = consumer_group(settings, ["ingestion"])

    worker = spawn("worker", "ingestion", extra_env=drill.env)
    ready_url = f"{worker.url}/health/ready"
    code, _, err = await run_cli("ingest", str(path), env=worker.env)
    assert code == 0, err

    conn = await drill.connect()
    try:

        async def some_progress() -> bool:
            done = await conn.fetchval("SELECT count(*) FROM entity_mappings")
            return 0 < done < len(sample.items)

        await wait_for(some_progress, timeout=30, interval=0.01)
    finally:
        await conn.close()

    # ---- the outage
    went_down = time.monotonic()
    await (drill.crash() if outage == CRASH else drill.shut_down())
    to_503 = await wait_ready_status(ready_url, 503, within_s=15)
    assert worker.popen.poll() is None, "the worker exited when PostgreSQL went away"

    await asyncio.sleep(SETTLE_S)
    first = await committed_offsets(settings, group)
    await asyncio.sleep(OUTAGE_READINGS_APART_S)
    second = await committed_offsets(settings, group)
    assert worker.popen.poll() is None, "the worker exited while PostgreSQL was down"
    assert first == second, f"offsets committed while PostgreSQL was down: {first} -> {second}"
    async with httpx.AsyncClient(timeout=2) as client:
        assert (await client.get(ready_url)).status_code == 503
    # Items were left, so a batch met the outage: it was retried, not given up on.
    retried = [line for line in worker.log_lines() if "process-batch: transient failure" in line]
    assert retried, "no batch was retried during the outage:\n" + "\n".join(
        worker.log_lines()[-20:]
    )

    # What the group committed must already be durable: every record below a committed
    # offset has its item mapped. Read on the same data dir through another port, which the
    # worker does not know, so it cannot resume before the check.
    peek = await asyncio.to_thread(start_postgres, drill.data_dir)
    try:
        conn = await asyncpg.connect(peek.url)
        try:
            rows = await conn.fetch("SELECT platform, platform_item_id FROM entity_mappings")
        finally:
            await conn.close()
    finally:
        await asyncio.to_thread(peek.stop)
    durable = {f"{r['platform']}:{r['platform_item_id']}" for r in rows}
    assert 0 < len(durable) < len(sample.items)
    raw = await read_topic(
        settings.kafka.bootstrap, CONTENT_RAW.full_name(settings.kafka.topic_prefix)
    )
    assert len(raw) == len(sample.items)
    acked_not_durable = [
        (r.partition, r.offset)
        for r in raw
        if r.offset < second.get(r.partition, -1) and r.key.decode() not in durable
    ]
    assert not acked_not_durable, f"committed before their effects: {acked_not_durable[:10]}"

    # ---- back on the same data dir and port
    outage_s = time.monotonic() - went_down
    came_back = time.monotonic()
    await drill.restart()
    to_200 = await wait_ready_status(ready_url, 200, within_s=30)

    conn = await drill.connect()
    try:

        async def resumed() -> bool:
            return await conn.fetchval("SELECT count(*) FROM entity_mappings") > len(durable)

        await wait_for(resumed, timeout=30, interval=0.05)
        to_resumed = time.monotonic() - came_back

        async def all_mapped() -> bool:
            done = await conn.fetchval("SELECT count(*) FROM entity_mappings")
            return done == len(sample.items)

        await wait_for(all_mapped, timeout=60, interval=0.1)
        to_all_mapped = time.monotonic() - came_back
        assert worker.popen.poll() is None
        mapped = await conn.fetch("SELECT platform, platform_item_id FROM entity_mappings")
        assert {f"{r['platform']}:{r['platform_item_id']}" for r in mapped} == set(sample.truth)
        ours = await conn.fetchval("SELECT count(DISTINCT canonical_id) FROM entity_mappings")
        assert ours == titles
        # One canonical row per title: none written twice by a redelivered batch, none orphaned.
        assert await conn.fetchval("SELECT count(*) FROM content") == titles
        assert not await conn.fetchval(
            "SELECT count(*) FROM entity_mappings m "
            "WHERE NOT EXISTS (SELECT 1 FROM content c WHERE c.canonical_id = m.canonical_id)"
        )
    finally:
        await conn.close()

    # A lost connection is a reason to wait, never to dead-letter a record.
    assert CONTENT_RAW.dead_letter is not None
    dlq = CONTENT_RAW.dead_letter.full_name(settings.kafka.topic_prefix)
    dead = await read_topic(settings.kafka.bootstrap, dlq, settle_s=0.5)
    assert not dead, [dict(r.headers).get("dlq.error") for r in dead[:5]]

    print(
        f"\n[{outage}] ready 503 after {to_503:.2f} s; outage {outage_s:.1f} s; "
        f"{len(durable)} items durable and {sum(max(0, o) for o in second.values())} "
        f"records committed during it; after restart: ready 200 in {to_200:.2f} s, "
        f"processing resumed in {to_resumed:.1f} s, all {len(sample.items)} items mapped "
        f"in {to_all_mapped:.1f} s"
    )
