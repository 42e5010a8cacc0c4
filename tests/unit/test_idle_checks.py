"""A worker's periodic checks that walk every assigned partition, paced for an idle worker:
Faust's livelock detector (agents/framework/kafka/livelock.py) and the offset guard, which
while idle compares offsets again only after a fetch answered (offset_guard.py)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiokafka.structs import TopicPartition
from faust.transport import consumer as faust_consumer

from agents.framework.kafka import livelock
from agents.framework.kafka.fetch_wait import FetchGate
from agents.framework.kafka.offset_guard import OffsetGuard

TPS = [TopicPartition("t", 0), TopicPartition("t", 1)]


class WalkedConsumer:
    """What Faust's detector and the offset guard read of a consumer, counting the walks."""

    flow_active = True
    should_stop = False

    def __init__(self) -> None:
        self.walks = 0
        self.verified: list[TopicPartition] = []
        self._read_offset: dict[TopicPartition, int] = dict.fromkeys(TPS, 5)
        self._committed_offset: dict[TopicPartition, int] = dict.fromkeys(TPS, 5)

    def assignment(self) -> list[TopicPartition]:
        self.walks += 1
        return TPS

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)

    def verify_event_path(self, now: float, tp: TopicPartition) -> None:
        self.verified.append(tp)

    def highwater(self, tp: TopicPartition) -> int:
        return 10


async def test_faust_livelock_detector_walks_the_partitions_once_per_interval(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Restored after the test: the patch is process-wide.
    monkeypatch.setattr(faust_consumer.Consumer, "verify_all_partitions_active", livelock._original)
    livelock.pace_livelock_detector(every_s=0.2)
    verify: Any = faust_consumer.Consumer.verify_all_partitions_active
    consumer = WalkedConsumer()
    for _ in range(5):
        await verify(consumer)
    assert consumer.verified == TPS  # the first call walked; the next four were too soon
    await asyncio.sleep(0.25)
    await verify(consumer)
    assert consumer.verified == TPS + TPS
    other = WalkedConsumer()  # each consumer has its own pace
    await verify(other)
    assert other.verified == TPS


async def test_an_idle_offset_guard_checks_again_only_after_a_fetch_answered() -> None:
    gate = FetchGate(idle_interval_s=30, awake_s=0.0)  # idle from the start
    guard = OffsetGuard("group", "", gate)
    consumer = WalkedConsumer()
    await guard.check(consumer)
    assert consumer.walks == 1
    await guard.check(consumer)
    await guard.check(consumer)
    assert consumer.walks == 1  # no answer since: nothing can have moved

    async def answered(assignment: object, node_id: int, request: object) -> bool:
        return False

    await gate.gated(answered)(None, 0, "request")
    await guard.check(consumer)
    assert consumer.walks == 2


async def test_an_awake_offset_guard_checks_every_time() -> None:
    gate = FetchGate(idle_interval_s=30, awake_s=60)  # awake: records just came
    guard = OffsetGuard("group", "", gate)
    consumer = WalkedConsumer()
    for _ in range(3):
        await guard.check(consumer)
    assert consumer.walks == 3
