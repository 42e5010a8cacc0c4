"""Offsets past the end of their log: a detected fault, never a silent skip.

A group's committed offset beyond the end of its partition's log means the broker lost records
the group had read: a broker that came back without its data, a topic deleted and created
again, an unclean leader election. Kafka answers a fetch there with OFFSET_OUT_OF_RANGE, and
aiokafka (auto_offset_reset=earliest) moves its position to the log start, logging it at info.
Here that alone would still lose records silently, twice over:

- Tansu (the embedded and test broker) never answers OFFSET_OUT_OF_RANGE: a fetch beyond the
  end gets an empty answer carrying the high watermark, so the consumer waits at the old
  offset and skips every record below it once the new log grows past it.
- Faust keeps a read offset and a committed offset of its own per partition, seeded from the
  committed offset at each assignment: it drops every record below its read offset
  (faust/transport/consumer.py, `_drain_messages`) and commits no offset below its committed
  one, so even after aiokafka's reset the records below the old offset are dropped.

So the worker checks for itself, the way `auto.offset.reset=earliest` would: right after each
assignment (once Faust has sought to the committed offsets, before any record reaches an
agent) and every second while it runs (while its consumers are idle, only after a fetch
answered, since nothing else can move a high watermark), a partition whose committed or read
offset is beyond its fetch high watermark (not ListOffsets, which under-reports on Tansu) is
moved back to the log start, in aiokafka and in Faust; the log start is committed; the fault
is logged as an error with the numbers and counted in mgw_consumer_offset_resets_total (alert
MgwOffsetsPastLogEnd, docs/OPERATIONS.md). Records from the log start on are processed again
(effects are idempotent); the ones the broker lost are gone.

What offsets cannot show: a new log that has already grown past the old offset when the worker
first sees it looks like a healthy one. `mgw up` therefore stops its worker before it restarts
its broker (cli/supervisor.py), so no offset is carried from one broker to the next.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import faust
from aiokafka.structs import OffsetAndMetadata, TopicPartition
from faust.transport.drivers import aiokafka as faust_aiokafka
from loguru import logger

from agents.framework.kafka.fetch_wait import FetchGate
from core.observability.metrics import CONSUMER_OFFSET_RESETS

# How often a running worker compares its offsets with the high watermarks (memory reads).
CHECK_INTERVAL_S = 1.0
# After an assignment: how long to wait for the first fetch to report each high watermark.
HIGHWATER_WAIT_S = 5.0
_POLL_S = 0.01


@dataclass(frozen=True)
class PastEnd:
    """A partition whose offset is beyond the end of its log."""

    tp: TopicPartition
    offset: int
    end: int


def past_end(offsets: Mapping[Any, int | None], ends: Mapping[Any, int | None]) -> list[PastEnd]:
    """The partitions whose offset is known and beyond their known log end."""
    found = []
    for tp, offset in offsets.items():
        end = ends.get(tp)
        if offset is not None and end is not None and offset > end:
            found.append(PastEnd(TopicPartition(tp.topic, tp.partition), offset, end))
    return sorted(found, key=lambda p: (p.tp.topic, p.tp.partition))


def _highwater(consumer: Any, tp: Any) -> int | None:
    try:
        end: int | None = consumer.highwater(tp)
    except Exception:  # not assigned any more (a rebalance), or the consumer is stopping
        return None
    return end


class OffsetGuard:
    """The check of one worker's consumer (a Faust consumer: its private offsets are used)."""

    def __init__(self, group: str, topic_prefix: str, gate: FetchGate | None = None) -> None:
        self.group = group
        self._prefix = f"{topic_prefix}." if topic_prefix else ""
        self._gate = gate
        self._answers_checked = -1

    async def after_seek(self, consumer: Any) -> None:
        """Right after Faust sought the assigned partitions to their committed offsets."""
        offsets = {
            tp: offset
            for tp in consumer.assignment()
            if (offset := consumer._committed_offset.get(tp))
        }
        if not offsets:  # nothing committed (a new group): nothing can be past the end
            return
        # The worker's own fetches report each high watermark; Faust resumed the partitions
        # just before seeking, and hands no record to an agent until this returns.
        deadline = time.monotonic() + HIGHWATER_WAIT_S
        ends = {tp: _highwater(consumer, tp) for tp in offsets}
        while any(end is None for end in ends.values()) and time.monotonic() < deadline:
            await asyncio.sleep(_POLL_S)
            ends = {tp: _highwater(consumer, tp) for tp in offsets}
        unknown = sorted(f"{tp.topic}[{tp.partition}]" for tp, end in ends.items() if end is None)
        if unknown:
            logger.warning(
                "no high watermark within {:.0f} s for {}; their offsets are checked once "
                "it is known",
                HIGHWATER_WAIT_S,
                ", ".join(unknown),
            )
        await self._reset(consumer, past_end(offsets, ends), "after the assignment")

    async def check(self, consumer: Any) -> None:
        """While running: Faust's read or committed offset beyond the last high watermark."""
        if not getattr(consumer, "flow_active", False):  # rebalancing: after_seek's turn
            return
        gate = self._gate
        if gate is not None:
            # A high watermark only changes with a fetch's answer, and an offset only moves
            # past one with records a fetch brought: with no answer since the last check,
            # while idle, there is nothing new to compare (a walk of every partition saved).
            answers = gate.answers
            if answers == self._answers_checked and gate.idle():
                return
            self._answers_checked = answers
        offsets = {}
        ends = {}
        for tp in consumer.assignment():
            read, done = consumer._read_offset.get(tp), consumer._committed_offset.get(tp)
            offsets[tp] = max(read or 0, done or 0)
            ends[tp] = _highwater(consumer, tp)
        await self._reset(consumer, past_end(offsets, ends), "while consuming")

    async def _reset(self, consumer: Any, faults: list[PastEnd], when: str) -> None:
        if not faults:
            return
        starts = await consumer.earliest_offsets(*(f.tp for f in faults))
        moves: dict[TopicPartition, int] = {}
        for fault in faults:
            tp = fault.tp
            start = int(starts.get(tp) or 0)
            moves[tp] = start
            topic = tp.topic.removeprefix(self._prefix)
            logger.error(
                "consumer group {}: offset {} of {}[{}] is past the end of its log (log end {}, "
                "seen {}): "
                "the broker lost records this group had read (it restarted without its data, "
                "or the topic was created again). Reading it again from the log start {}; "
                "events it held and no agent had processed are lost "
                "(docs/OPERATIONS.md#mgwoffsetspastlogend)",
                self.group,
                fault.offset,
                topic,
                tp.partition,
                fault.end,
                when,
                start,
            )
            CONSUMER_OFFSET_RESETS.labels(topic, str(tp.partition), self.group).inc()
            # Faust's own record of the partition belongs to the lost log.
            for state in (consumer._acked, consumer._acked_index, consumer._gap):
                state.pop(tp, None)
            consumer._committed_offset[tp] = None
        await consumer.seek_wait(moves)
        await self._commit(consumer, moves)

    async def _commit(self, consumer: Any, moves: Mapping[TopicPartition, int]) -> None:
        """Commit the log starts, so the group's offsets (and `mgw up`'s drain) are right even
        for a partition that gets no record to commit after."""
        thread = consumer._thread
        try:
            aio = thread._ensure_consumer()
            await thread.call_thread(
                aio.commit, {tp: OffsetAndMetadata(start, "") for tp, start in moves.items()}
            )
        except Exception as exc:  # the next batch of the partition commits it anyway
            logger.warning("could not commit the reset offsets {}: {!r}", dict(moves), exc)


_guard: OffsetGuard | None = None
_perform_seek = faust_aiokafka.Consumer.perform_seek


async def _perform_seek_then_check(self: Any) -> None:
    await _perform_seek(self)
    if _guard is not None:
        await _guard.after_seek(self)


def install_offset_guard(
    app: faust.App, group: str, topic_prefix: str, gate: FetchGate | None = None
) -> OffsetGuard:
    """Check this process's Faust consumer after every assignment and every second (while
    idle, after each fetch answered: `gate`)."""
    global _guard
    guard = _guard = OffsetGuard(group, topic_prefix, gate)
    faust_aiokafka.Consumer.perform_seek = _perform_seek_then_check  # type: ignore[method-assign]

    @app.timer(CHECK_INTERVAL_S)
    async def _check_offsets() -> None:
        try:
            await guard.check(app.consumer)
        except Exception as exc:  # a check is never worth a crashed worker; it runs again
            logger.warning("could not check offsets against the log ends: {!r}", exc)

    return guard
