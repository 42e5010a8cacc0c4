"""An in-memory stream and publisher for the agent loop (agents/framework/runtime.py).

The fast layer of the loop's tests, in the spirit of FastStream's TestKafkaBroker: records go
in as batches, acks and dead letters are recorded. The same loop also runs against the real
broker in tests/integration and tests/e2e.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from agents.framework.runtime import Record
from core.publisher import BrokerUnavailable, RawRecord
from topics.registry import TopicSpec


@dataclass
class MemoryPublisher:
    """Keeps what it is sent; `fail_next` sends raise BrokerUnavailable, like a broker outage."""

    sent: list[RawRecord] = field(default_factory=list)
    fail_next: int = 0

    def topic_name(self, spec: TopicSpec) -> str:
        return spec.name

    async def send_raw(self, records: Iterable[RawRecord]) -> list[Any]:
        records = list(records)
        if self.fail_next:
            self.fail_next -= 1
            raise BrokerUnavailable("memory broker: outage")
        self.sent.extend(records)
        return records

    def headers_of(self, index: int) -> dict[str, str]:
        return {k: v.decode() for k, v in self.sent[index][3]}


@dataclass
class MemoryStream:
    """Batches of records; each record is its own event, acked by offset."""

    batches: list[list[Record]]
    acked: list[int] = field(default_factory=list)

    async def __aiter__(self) -> AsyncIterator[Sequence[Record]]:
        for batch in self.batches:
            yield batch

    async def ack(self, record: Record) -> None:
        self.acked.append(record.offset)


def records(topic: str, values: Sequence[bytes | None], first_offset: int = 0) -> list[Record]:
    return [
        Record(topic, 0, first_offset + i, b"k", value, [("x-test", b"1")])
        for i, value in enumerate(values)
    ]
