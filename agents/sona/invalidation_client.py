"""Every worker process hears every `sona.adapter_trained` event, and evicts that user's
adapter from its own cache.

A consumer group would hand each event to one worker only, so this consumer has none: it is
assigned every partition and reads them from the start (the topic keeps a day; replaying old
announcements into a fresh cache only records versions, and evicts nothing it holds newer).
Offsets are never committed, and ListOffsets is never used (unreliable on Tansu, docs/BROKER.md).
"""

from __future__ import annotations

from aiokafka import AIOKafkaConsumer, TopicPartition
from loguru import logger

from agents.framework.fetch_wait import gate_fetches
from agents.sona.adapter_cache import AdapterCache
from schemas.envelope import decode
from schemas.sona import AdapterTrained


class InvalidationListener:
    def __init__(self, bootstrap: str, topic: str, cache: AdapterCache) -> None:
        self.bootstrap = bootstrap
        self.topic = topic
        self.cache = cache
        self._consumer: AIOKafkaConsumer | None = None
        self.heard = 0

    async def _start(self) -> AIOKafkaConsumer | None:
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap,
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
        )
        await consumer.start()
        # Idle, it fetches when our producers call or once a second, like the agents' consumer.
        gate_fetches(consumer)
        partitions = consumer.partitions_for_topic(self.topic)
        if not partitions:
            await consumer._client.force_metadata_update()
            partitions = consumer.partitions_for_topic(self.topic)
        if not partitions:
            await consumer.stop()
            logger.warning("topic {} not found yet; adapter invalidations wait", self.topic)
            return None
        tps = [TopicPartition(self.topic, p) for p in sorted(partitions)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        return consumer

    async def poll(self, timeout_ms: int = 200) -> int:
        """Apply what arrived since the last poll; how many announcements were heard."""
        if self._consumer is None:
            self._consumer = await self._start()
            if self._consumer is None:
                return 0
        batches = await self._consumer.getmany(timeout_ms=timeout_ms, max_records=1000)
        heard = 0
        for records in batches.values():
            for record in records:
                try:
                    event = decode(record.value, AdapterTrained).payload
                except ValueError as exc:  # pydantic.ValidationError included
                    logger.warning("unreadable adapter announcement skipped: {}", exc)
                    continue
                self.cache.announce(event.user_id, event.adapter_version)
                heard += 1
        self.heard += heard
        return heard

    async def close(self) -> None:
        if self._consumer is not None:
            consumer, self._consumer = self._consumer, None
            await consumer.stop()
