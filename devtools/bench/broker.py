"""`mgw bench broker`: what durability costs the embedded broker, both engines in one run.

For each engine, a broker of its own (in memory: the baseline; durable: on the object store, as
`mgw up --durable` runs it), one topic of 4 partitions, and aiokafka clients as our code uses
them (acks=all, no idempotence):

- publish, one at a time: each send awaited before the next (what a 202 waits for);
- publish, `--senders` concurrent awaited sends for `--seconds`: records per second;
- fetch: a consumer of a group with the workers' 10 ms fetch wait, one record at a time, from
  just before its send to its arrival (an agent's hop on this broker).
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from rich.table import Table

from cli.console import console_for, out
from devtools.bench.services import start_bench_broker

console = console_for(stderr=True)

ENGINES = ("memory", "durable")
PARTITIONS = 4
WARMUP = 20


@dataclass(frozen=True)
class EngineFigures:
    engine: str
    publish_ms: list[float]
    records_per_s: float
    fetch_ms: list[float]


def pct(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def _measure(
    engine: str, bootstrap: str, count: int, senders: int, seconds: float
) -> EngineFigures:
    topic = f"bench-broker-{uuid.uuid4().hex[:8]}"
    # The fetch run has a topic of its own, empty when the consumer joins: where "latest" is
    # needs no ListOffsets, which under-reports on the S3 engine after concurrent writes.
    fetched = f"{topic}-fetch"
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(t, PARTITIONS, 1) for t in (topic, fetched)])
    finally:
        await admin.close()
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", enable_idempotence=False, linger_ms=0
    )
    await producer.start()
    consumer = AIOKafkaConsumer(
        fetched,
        bootstrap_servers=bootstrap,
        group_id=f"{topic}-g",
        auto_offset_reset="earliest",
        fetch_max_wait_ms=10,
        session_timeout_ms=6000,
        rebalance_timeout_ms=6000,
    )
    try:
        publish: list[float] = []
        for n in range(count + WARMUP):
            began = time.perf_counter()
            await producer.send_and_wait(topic, b"x" * 200, key=str(n).encode())
            if n >= WARMUP:
                publish.append((time.perf_counter() - began) * 1000)

        sent = 0
        stop_at = time.perf_counter() + seconds

        async def sender(i: int) -> None:
            nonlocal sent
            while time.perf_counter() < stop_at:
                await producer.send_and_wait(topic, b"y" * 200, key=f"{i}-{sent}".encode())
                sent += 1

        began = time.perf_counter()
        await asyncio.gather(*(sender(i) for i in range(senders)))
        rate = sent / (time.perf_counter() - began)

        await consumer.start()
        # Joined once a record sent now comes back.
        await producer.send_and_wait(fetched, b"ping", key=b"k")
        await asyncio.wait_for(consumer.getone(), 30)
        fetch: list[float] = []
        for n in range(count + WARMUP):
            began = time.perf_counter()
            value = str(n).encode()
            await producer.send_and_wait(fetched, value, key=value)
            record = await asyncio.wait_for(consumer.getone(), 10)
            if record.value != value:
                raise RuntimeError(f"{engine}: fetched {record.value!r}, sent {value!r}")
            if n >= WARMUP:
                fetch.append((time.perf_counter() - began) * 1000)
        return EngineFigures(engine, publish, rate, fetch)
    finally:
        await consumer.stop()
        await producer.stop()


def bench_broker(count: int = 500, senders: int = 32, seconds: float = 5.0) -> int:
    figures: list[EngineFigures] = []
    with tempfile.TemporaryDirectory(prefix="mgw-bench-broker-") as tmp:
        for engine in ENGINES:
            workdir = Path(tmp) / engine
            workdir.mkdir()
            with console.status(f"{engine}: starting the broker..."):
                services = start_bench_broker(workdir, durable=engine == "durable")
            try:
                with console.status(f"{engine}: publishing and fetching..."):
                    figures.append(
                        asyncio.run(_measure(engine, services[-1].url, count, senders, seconds))
                    )
            finally:
                for service in reversed(services):
                    service.stop()
    out.print(results_table(figures, count, senders))
    return 0


def results_table(figures: list[EngineFigures], count: int, senders: int) -> Table:
    table = Table(
        title=f"Embedded broker by storage engine ({count} one at a time each; "
        f"{senders} concurrent senders; baseline: memory)"
    )
    columns = (
        "engine",
        "publish p50 ms",
        "publish p99 ms",
        f"records/s ({senders} senders)",
        "fetch p50 ms",
        "fetch p99 ms",
        "records/s vs memory",
    )
    for column in columns:
        table.add_column(column, justify="left" if column == "engine" else "right")
    base = figures[0]
    for f in figures:
        table.add_row(
            f.engine,
            f"{statistics.median(f.publish_ms):.2f}",
            f"{pct(f.publish_ms, 0.99):.2f}",
            f"{f.records_per_s:,.0f}",
            f"{statistics.median(f.fetch_ms):.2f}",
            f"{pct(f.fetch_ms, 0.99):.2f}",
            f"{f.records_per_s / base.records_per_s:.2f}x",
        )
    return table
