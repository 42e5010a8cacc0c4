"""Reading a topic as a subscriber's tool does: no consumer group, no commits, every partition.

Shared by `mgw tail` and `mgw dlq`. Ends of partitions come from the fetch high watermark, not
ListOffsets, which under-reports on Tansu (docs/GUARANTEES.md).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
from pydantic import ValidationError

from core.kafka import ConsumerRecord, KafkaConsumer, TopicPartition, new_reader
from schemas.envelope import decode
from schemas.storable import describe_validation_error
from topics.registry import DLQ_SUFFIX, TopicSpec, all_topics

WAIT_FOR_METADATA_S = 10.0


class UnknownTopic(LookupError):
    pass


def resolve_topic(name: str, prefix: str) -> tuple[TopicSpec, str]:
    """A catalog topic by its name (`content.raw`) or its full name (`mgw.content.raw`)."""
    base = f"{prefix}." if prefix else ""
    short = name.removeprefix(base) if base and name.startswith(base) else name
    for spec in all_topics():
        if spec.name == short:
            return spec, spec.full_name(prefix)
    known = ", ".join(s.name for s in all_topics() if not s.name.endswith(DLQ_SUFFIX))
    raise UnknownTopic(f"no topic {name!r} in the catalog; known: {known} (and each X.dlq)")


@dataclass(frozen=True)
class Shown:
    """One record as the tools print it."""

    topic: str
    partition: int
    offset: int
    timestamp: datetime
    key: str | None
    headers: dict[str, str]
    envelope: dict[str, Any] | None  # decoded and valid for the topic
    value: str | None  # when not a valid envelope (or a dead-letter topic): the raw text
    error: str | None  # why it is not a valid envelope of the topic

    @property
    def event_type(self) -> str | None:
        if self.envelope is not None:
            return str(self.envelope["event_type"])
        return self.headers.get("event_type")

    def as_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "topic": self.topic,
            "partition": self.partition,
            "offset": self.offset,
            "timestamp": self.timestamp.isoformat(),
            "key": self.key,
            "headers": self.headers,
        }
        if self.envelope is not None:
            data["envelope"] = self.envelope
        else:
            data["value"] = self.value
        if self.error:
            data["error"] = self.error
        return data


def _text(raw: bytes | None) -> str | None:
    return None if raw is None else raw.decode("utf-8", errors="replace")


def validation_error(spec: TopicSpec, value: bytes | None) -> str | None:
    """Why `value` is not a valid envelope of `spec` today (None: it is)."""
    if spec.payload is None:
        return None
    if not value:
        return "empty record value"
    try:
        decode(value, spec.payload, spec.older_payloads)
    except ValidationError as exc:
        return describe_validation_error(exc)
    except ValueError as exc:
        return str(exc)
    return None


def shown(record: ConsumerRecord, spec: TopicSpec) -> Shown:
    headers = {k: (v or b"").decode("utf-8", errors="replace") for k, v in record.headers or ()}
    error = validation_error(spec, record.value)
    envelope = None
    if spec.payload is not None and error is None:
        envelope = orjson.loads(record.value)
    return Shown(
        topic=record.topic,
        partition=record.partition,
        offset=record.offset,
        timestamp=datetime.fromtimestamp(record.timestamp / 1000, UTC),
        key=_text(record.key),
        headers=headers,
        envelope=envelope,
        value=None if envelope is not None else _text(record.value),
        error=error,
    )


def new_consumer(bootstrap: str) -> KafkaConsumer:
    # No group: a subscriber's tool must never move a consumer group's offsets.
    return new_reader(bootstrap, "mgw-tools")


async def partitions_of(consumer: KafkaConsumer, topic: str) -> list[TopicPartition]:
    deadline = time.monotonic() + WAIT_FOR_METADATA_S
    while True:
        found = consumer.partitions_for_topic(topic)
        if found:
            return [TopicPartition(topic, p) for p in sorted(found)]
        if time.monotonic() > deadline:
            raise UnknownTopic(f"the broker has no topic {topic} (run `mgw topics plan`)")
        await consumer._client.force_metadata_update()


async def known_ends(
    consumer: KafkaConsumer, tps: Iterable[TopicPartition], timeout_s: float = 10.0
) -> dict[TopicPartition, int]:
    """Each partition's end as the last fetch reported it, fetching until all are known.

    Records fetched meanwhile are dropped, so call it before reading, and seek afterwards.
    """
    wanted = list(tps)
    deadline = time.monotonic() + timeout_s
    while True:
        ends = {tp: consumer.highwater(tp) for tp in wanted}
        unknown = [tp for tp, end in ends.items() if end is None]
        if not unknown:
            return {tp: end or 0 for tp, end in ends.items()}
        if time.monotonic() > deadline:
            # ListOffsets as a last resort: exact on Apache Kafka, low on Tansu.
            listed = await consumer.end_offsets(unknown)
            return {tp: ends[tp] if ends[tp] is not None else listed[tp] for tp in wanted}
        await consumer.getmany(*wanted, timeout_ms=200, max_records=1)


async def records_until(
    consumer: KafkaConsumer, stop_at: Mapping[TopicPartition, int]
) -> AsyncIterator[ConsumerRecord]:
    """What is assigned, from the current positions up to `stop_at` (exclusive)."""
    pending = {tp for tp, end in stop_at.items() if await consumer.position(tp) < end}
    while pending:
        batch = await consumer.getmany(*pending, timeout_ms=500)
        for tp, records in batch.items():
            for record in records:
                if record.offset < stop_at[tp]:
                    yield record
        pending = {tp for tp in pending if await consumer.position(tp) < stop_at[tp]}
