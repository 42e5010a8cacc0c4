"""Reading topics back in tests, without trusting ListOffsets (wrong on Tansu, docs/BROKER.md)."""

from __future__ import annotations

import asyncio
import inspect
import subprocess
import sys
import time
import uuid
from pathlib import Path

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition

from core.config import Settings
from devtools.placeholder_titles import place_titles

ROOT = Path(__file__).resolve().parent.parent


async def read_topic(bootstrap: str, topic: str, settle_s: float = 1.5) -> list[ConsumerRecord]:
    """Every record currently on the topic, read from the beginning of each partition.

    Reads until each partition's position reached the high watermark reported by fetches,
    or until nothing new arrived for `settle_s`.
    """
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, auto_offset_reset="earliest"
    )
    await consumer.start()
    try:
        partitions = consumer.partitions_for_topic(topic)
        if not partitions:
            await consumer._client.force_metadata_update()
            partitions = consumer.partitions_for_topic(topic) or set()
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        if not tps:
            return []
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        records: list[ConsumerRecord] = []
        quiet_since = time.monotonic()
        while time.monotonic() - quiet_since < settle_s:
            batch = await consumer.getmany(timeout_ms=200)
            got = [r for rs in batch.values() for r in rs]
            if got:
                records.extend(got)
                quiet_since = time.monotonic()
            done = True
            for tp in tps:
                highwater = consumer.highwater(tp)
                if highwater is None or await consumer.position(tp) < highwater:
                    done = False
            if done and not got:
                break
        return records
    finally:
        await consumer.stop()


async def wait_for(predicate, timeout: float = 10.0, interval: float = 0.05):  # type: ignore[no-untyped-def]  # noqa: ASYNC109
    """Poll a predicate (sync or async) until it returns something truthy; return that or raise."""
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return result
        if time.monotonic() > deadline:
            raise TimeoutError(f"condition not met within {timeout}s")
        await asyncio.sleep(interval)


async def run_cli(*args: str, env: dict[str, str], limit_s: float = 120) -> tuple[int, str, str]:
    """Run `mgw ARGS` as a subprocess; (exit code, stdout, stderr)."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "cli.main",
        *args,
        cwd=ROOT,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), limit_s)
    return proc.returncode or 0, out.decode(), err.decode()


def wait_for_up_banner(proc: subprocess.Popen[bytes], log_path: Path, timeout: float) -> str:
    """The output of `mgw up` once its banner says it is up; fails if it exits or is late."""
    deadline = time.monotonic() + timeout
    text = ""
    while "Press Ctrl-C" not in text:
        assert proc.poll() is None, f"mgw up exited early:\n{text[-3000:]}"
        assert time.monotonic() < deadline, f"mgw up not up in time:\n{text[-3000:]}"
        time.sleep(0.3)
        text = log_path.read_text()
    return text


async def in_catalog(settings: Settings, ids: list[uuid.UUID]) -> None:
    """Make these ids titles the catalog has (devtools/placeholder_titles.py): in the Redis
    read model of `settings`, what the gateway checks, and in its PostgreSQL, what the sync
    agent checks before it merges an add."""
    assert settings.redis.url is not None
    await place_titles(
        settings.redis.url,
        settings.redis.key_prefix,
        ids,
        "Test title",
        database_url=settings.postgres.url,
    )


async def catalog_titles(settings: Settings, count: int = 1) -> list[uuid.UUID]:
    """Fresh ids of titles the catalog's read model has (in_catalog)."""
    ids = [uuid.uuid4() for _ in range(count)]
    await in_catalog(settings, ids)
    return ids


async def catalog_title(settings: Settings) -> uuid.UUID:
    return (await catalog_titles(settings))[0]
