"""Group-less readers: every worker of a group hears every record of a topic a slice declared
as a `BroadcastSpec` (agents/framework/runtime.py).

A consumer group would hand each record to one worker only, so this consumer has none: it is
assigned every partition and reads them from the log start (a fresh worker replays what the
topic keeps; handlers of such topics must be idempotent, which evictions by version are).
Offsets are never committed, and ListOffsets is never used (it under-reports on Tansu:
docs/BROKER.md). Idle, it fetches when our producers call or once a second, like the
agents' consumers (fetch_wait.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from loguru import logger

from agents.framework.kafka.fetch_wait import gate_fetches
from agents.framework.runtime import BroadcastSpec
from agents.framework.timers import timer_health
from schemas.envelope import Envelope, decode

# How long one read waits for records before the loop asks again.
POLL_MS = 1000
RETRY_S = 1.0


class BroadcastReader:
    """Reads one topic whole, without a consumer group; `read` returns what arrived since."""

    def __init__(self, bootstrap: str, spec: BroadcastSpec, topic_prefix: str) -> None:
        self.spec = spec
        self._bootstrap = bootstrap
        self._topic = spec.topic.full_name(topic_prefix)
        self._consumer: AIOKafkaConsumer | None = None

    async def _start(self) -> AIOKafkaConsumer | None:
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self._bootstrap,
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
        )
        await consumer.start()
        gate_fetches(consumer)
        partitions = consumer.partitions_for_topic(self._topic)
        if not partitions:
            await consumer._client.force_metadata_update()
            partitions = consumer.partitions_for_topic(self._topic)
        if not partitions:
            await consumer.stop()
            logger.warning("topic {} not found yet; {} waits", self._topic, self.spec.name)
            return None
        tps = [TopicPartition(self._topic, p) for p in sorted(partitions)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        return consumer

    async def read(self, timeout_ms: int = POLL_MS) -> list[Envelope[Any]]:
        """The decodable records that arrived since the last read, in partition order."""
        if self._consumer is None:
            self._consumer = await self._start()
            if self._consumer is None:
                return []
        payload = self.spec.topic.payload
        assert payload is not None, f"{self._topic} carries raw bytes and cannot be decoded"
        batches = await self._consumer.getmany(timeout_ms=timeout_ms, max_records=1000)
        out: list[Envelope[Any]] = []
        for records in batches.values():
            for record in records:
                try:
                    out.append(decode(record.value, payload, self.spec.topic.older_payloads))
                except ValueError as exc:  # pydantic.ValidationError included
                    logger.warning("{}: unreadable record skipped: {}", self.spec.name, exc)
        return out

    async def hear(self, ctx: Any, timeout_ms: int = POLL_MS) -> int:
        """Read once and hand what arrived to the slice's handler; how many records."""
        batch = await self.read(timeout_ms)
        if batch:
            await self.spec.handler(ctx, batch)
        return len(batch)

    async def close(self) -> None:
        if self._consumer is not None:
            consumer, self._consumer = self._consumer, None
            await consumer.stop()


def broadcast_task(
    reader: BroadcastReader, context: Callable[[], Awaitable[Any]]
) -> Callable[[], Awaitable[None]]:
    """The worker's task for one reader: hear until the worker stops. A failure is logged and
    shown in readiness like a failing timer's, then the reader tries again."""
    name = reader.spec.name

    async def run() -> None:
        try:
            while True:
                try:
                    await reader.hear(await context())
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    timer_health.failed(name, exc)
                    logger.exception("{} failed; retrying in {:.0f}s", name, RETRY_S)
                    await reader.close()
                    await asyncio.sleep(RETRY_S)
                else:
                    timer_health.succeeded(name)
        finally:
            await reader.close()

    run.__name__ = name.replace("-", "_")
    run.__qualname__ = run.__name__
    return run
