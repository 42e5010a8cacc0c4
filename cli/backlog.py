"""How many accepted events `mgw up`'s worker has not processed yet: its consumer group's lag
on every consumed topic, plus work kept in PostgreSQL and not done yet: events staged in the
outbox and not published, and titles due for enrichment (an event is acknowledged once
another path, the sweep, claimed its title, so the lag alone would say "done" too early).

Lag is the group's committed offset against the partition's end. The end comes from the fetch
high watermark of a group-less consumer that follows every partition's end, not ListOffsets,
which under-reports on Tansu (docs/GUARANTEES.md); committed offsets come from the admin
client, with the partitions named (Tansu needs them).

A committed offset beyond the end is not a lag of 0 but a fault: the broker lost records the
group had read (agents/framework/kafka/offset_guard.py). It is reported as such, and a backlog with
one is not drained.

What is left is counted per topic: under `mgw up` every agent shares one consumer group, whose
committed offset on a topic is where the slowest of the topic's agents is, so a count per
agent or per worker group would charge every agent of the topic with the slowest one's work.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from loguru import logger

from cli.records import UnknownTopic, known_ends, partitions_of
from core.kafka import KafkaAdmin, KafkaConsumer, TopicPartition, new_admin, new_reader
from topics.consumers import Consumer, load_index

OUTBOX = "outbox"
ENRICHMENT_DUE = "enrichment_due"


def up_consumer_group(prefix: str, worker_groups: Sequence[str]) -> str:
    """The consumer group of a worker running `worker_groups` (agents/framework/kafka/app.py
    consumer_group(), which imports Faust; a unit test keeps the two equal)."""
    return f"{prefix}-{'+'.join(sorted(worker_groups))}"


@dataclass(frozen=True)
class OffsetPastEnd:
    """A partition whose committed offset is beyond the end of its log."""

    topic: str  # without prefix
    partition: int
    committed: int
    end: int


@dataclass(frozen=True)
class Backlog:
    by_topic: Mapping[str, int]  # topic name without prefix -> records not committed
    outbox: int = 0  # events staged in PostgreSQL, not yet published
    # Titles due for enrichment (agents/enrichment/store.py): their events may be gone already.
    enrichment_due: int = 0
    past_end: tuple[OffsetPastEnd, ...] = ()

    @property
    def total(self) -> int:
        """Events accepted and not processed (those of partitions past their end unknown)."""
        return sum(self.by_topic.values()) + self.outbox

    @property
    def drained(self) -> bool:
        return self.total == 0 and self.enrichment_due == 0 and not self.past_end


def left_by_topic(backlog: Backlog) -> dict[str, int]:
    """Events left per topic, then the outbox, then the titles due for enrichment; what has
    nothing left is omitted."""
    left = {topic: n for topic, n in sorted(backlog.by_topic.items()) if n > 0}
    for name, n in ((OUTBOX, backlog.outbox), (ENRICHMENT_DUE, backlog.enrichment_due)):
        if n:
            left[name] = n
    return left


def describe(backlog: Backlog) -> str:
    events = {k: n for k, n in left_by_topic(backlog).items() if k != ENRICHMENT_DUE}
    total = f"{backlog.total:,} event{'' if backlog.total == 1 else 's'} left"
    if events:
        total += ": " + ", ".join(f"{topic} {n:,}" for topic, n in events.items())
    if backlog.enrichment_due:
        total += f"; {backlog.enrichment_due:,} title(s) due for enrichment"
    if backlog.past_end:
        total += (
            "; committed offsets past the log end (the broker lost records; the worker reads "
            "these partitions again from their start): "
            + ", ".join(
                f"{p.topic}[{p.partition}] {p.committed:,} > {p.end:,}" for p in backlog.past_end
            )
        )
    return total


class BacklogProbe:
    """Measures the backlog from sync code (`mgw up`'s main thread) on a loop of its own."""

    def __init__(
        self,
        bootstrap: str,
        prefix: str,
        consumer_group: str,
        database_url: str | None,
        index: Mapping[str, Sequence[Consumer]] | None = None,
    ) -> None:
        self.index = load_index() if index is None else index
        self._bootstrap = bootstrap
        self._prefix = prefix
        self._group = consumer_group
        self._database_url = database_url
        self._loop = asyncio.new_event_loop()
        self._consumer: KafkaConsumer | None = None
        self._admin: KafkaAdmin | None = None
        self._tps: list[TopicPartition] = []

    def measure(self) -> Backlog:
        return self._loop.run_until_complete(self._measure())

    def close(self) -> None:
        self._loop.run_until_complete(self._close())
        self._loop.close()

    def _short(self, topic: str) -> str:
        return topic.removeprefix(f"{self._prefix}.") if self._prefix else topic

    async def _open(self) -> None:
        consumer = new_reader(
            self._bootstrap,
            "mgw-up-drain",
            # Only the high watermark matters: fetch as little as a fetch can.
            max_partition_fetch_bytes=1024,
            fetch_max_wait_ms=200,
        )
        await consumer.start()
        admin = new_admin(self._bootstrap, "mgw-up-drain")
        try:
            await admin.start()
            tps: list[TopicPartition] = []
            for topic in sorted(self.index):
                full = f"{self._prefix}.{topic}" if self._prefix else topic
                try:
                    tps.extend(await partitions_of(consumer, full))
                except UnknownTopic:
                    # A topic the broker does not have holds no accepted event: a catalog
                    # newer than the running stack (code updated under it) must not keep
                    # the drain retrying for ever.
                    logger.warning("drain: the broker has no topic {}; nothing to wait for", full)
            consumer.assign(tps)
            await known_ends(consumer, tps)
        except BaseException:
            await consumer.stop()
            await admin.close()
            raise
        self._consumer, self._admin, self._tps = consumer, admin, tps

    async def _ends(self) -> dict[TopicPartition, int]:
        assert self._consumer is not None
        consumer = self._consumer
        # Drop what was fetched and move to each end, so that the next fetches are empty
        # answers carrying the current high watermark.
        await consumer.getmany(timeout_ms=300)
        ends: dict[TopicPartition, int] = {}
        for tp in self._tps:
            end = consumer.highwater(tp) or 0
            ends[tp] = end
            if await consumer.position(tp) < end:
                consumer.seek(tp, end)
        return ends

    async def _measure(self) -> Backlog:
        if self._consumer is None:
            await self._open()
        assert self._admin is not None
        ends = await self._ends()
        committed = await self._admin.list_consumer_group_offsets(self._group, partitions=self._tps)
        by_topic: dict[str, int] = {}
        past_end: list[OffsetPastEnd] = []
        for tp, end in ends.items():
            meta = committed.get(tp)
            done = meta.offset if meta is not None and meta.offset >= 0 else 0
            topic = self._short(tp.topic)
            if done > end:
                past_end.append(OffsetPastEnd(topic, tp.partition, done, end))
            by_topic[topic] = by_topic.get(topic, 0) + max(0, end - done)
        past_end.sort(key=lambda p: (p.topic, p.partition))
        outbox, due = await self._kept_in_postgres()
        return Backlog(by_topic, outbox, due, tuple(past_end))

    async def _kept_in_postgres(self) -> tuple[int, int]:
        """(events in the outbox, titles due for enrichment)."""
        if not self._database_url:
            return 0, 0
        import asyncpg

        from agents.enrichment.store import count_due

        conn = await asyncpg.connect(self._database_url, timeout=5)
        try:
            return int(await conn.fetchval("SELECT count(*) FROM outbox")), await count_due(conn)
        finally:
            await conn.close()

    async def _close(self) -> None:
        if self._consumer is not None:
            await self._consumer.stop()
        if self._admin is not None:
            await self._admin.close()
        self._consumer = self._admin = None
