"""Publishing typed events to Kafka, acknowledged by the broker (acks=all) or not at all.

The gateway and the agents share this: a caller learns the partition and offset of its record
only once the broker has it, and a broker that cannot be reached is reported as
BrokerUnavailable within `KAFKA_PUBLISH_TIMEOUT_S`, never as success.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from loguru import logger
from prometheus_client import Counter

from core.broker_wakeup import BrokerWakeup
from core.config import KafkaSettings
from core.kafka import KafkaError, KafkaProducer, new_producer
from core.observability import correlation
from core.observability.metrics import EVENTS_PRODUCED
from core.resilience.breaker import BreakerRegistry
from schemas.envelope import Envelope, Payload, encode, wrap
from topics.registry import TopicSpec

Headers = list[tuple[str, bytes]]
# (topic, key, value, headers, event id): one record as the producer sends it.
RawRecord = tuple[str, bytes | None, bytes, Headers, str]


class BrokerUnavailable(RuntimeError):
    """Not accepted: the record did not reach the broker (no connection, the producer's
    breaker open, or this process shutting down). A retry is a new attempt."""


class PublishOutcomeUnknown(BrokerUnavailable):
    """The record was handed to the broker but no acknowledgement came in time: it may have
    been written (a broker paused mid-request acknowledges later), so the caller must say the
    outcome is unknown; a retry is safe only with the same event id (gateway/idempotency.py)."""


# Each publisher's own breaker (in memory): whether this producer reaches the broker is its
# own knowledge, and the publish path must not pay a Redis round trip. While open, publishes
# fail at once instead of each waiting KAFKA_PUBLISH_TIMEOUT_S.
PRODUCER_BREAKER = "kafka_producer"


@dataclass(frozen=True)
class Published:
    event_id: str
    topic: str
    partition: int
    offset: int


def headers_for(
    event_id: object, event_type: str, version: int, correlation_id: str | None
) -> Headers:
    """Record headers, so subscribers can route and trace without parsing the value."""
    headers: Headers = [
        ("event_id", str(event_id).encode()),
        ("event_type", event_type.encode()),
        ("version", str(version).encode()),
        ("content-type", b"application/json"),
    ]
    if correlation_id:
        headers.append((correlation.KAFKA_HEADER, correlation_id.encode()))
    return headers


def envelope_headers(envelope: Envelope[Any]) -> Headers:
    return headers_for(
        envelope.event_id, envelope.event_type, envelope.version, envelope.correlation_id
    )


class Publisher:
    def __init__(
        self, settings: KafkaSettings, source: str, wakeup: BrokerWakeup | None = None
    ) -> None:
        """`wakeup`: tells idle consumers that records arrived (core/broker_wakeup.py)."""
        self._settings = settings
        self._source = source
        self._wakeup = wakeup
        self._producer: KafkaProducer | None = None
        self._lock = asyncio.Lock()
        self._produced_children: dict[str, Counter] = {}
        self._breaker = BreakerRegistry().get(PRODUCER_BREAKER)
        self._refusing: str | None = None

    @property
    def prefix(self) -> str:
        return self._settings.topic_prefix

    def topic_name(self, spec: TopicSpec) -> str:
        return spec.full_name(self._settings.topic_prefix)

    async def start(self) -> None:
        """Connect now if the broker is there; a later publish retries when it was not."""
        try:
            await self._ensure_started()
        except BrokerUnavailable as exc:
            logger.warning("broker not reachable yet; will retry on first publish: {}", exc)

    def refuse_from_now(self, reason: str) -> None:
        """Accept nothing more (e.g. the process is shutting down): publishes raise
        BrokerUnavailable with `reason`, so nobody gets a 202 that a drain might not honour."""
        self._refusing = reason

    async def stop(self) -> None:
        if self._wakeup is not None:
            await self._wakeup.flush()
        async with self._lock:
            if self._producer is not None:
                producer, self._producer = self._producer, None
                await producer.stop()

    async def _ensure_started(self) -> KafkaProducer:
        if self._producer is not None:
            return self._producer
        async with self._lock:
            if self._producer is not None:
                return self._producer
            timeout_ms = int(self._settings.publish_timeout_s * 1000)
            producer = new_producer(
                self._settings.bootstrap,
                f"{self._settings.client_id}-{self._source}",
                linger_ms=2,
                request_timeout_ms=timeout_ms,
                max_batch_size=256 * 1024,
                max_request_size=8 * 1024 * 1024,
            )
            try:
                await asyncio.wait_for(producer.start(), self._settings.publish_timeout_s)
            except (KafkaError, OSError, TimeoutError) as exc:
                await producer.stop()
                raise BrokerUnavailable(f"cannot reach {self._settings.bootstrap}: {exc}") from exc
            self._producer = producer
            return producer

    def build_envelope(
        self,
        payload: Payload,
        key: str,
        correlation_id: str | None = None,
        event_id: uuid.UUID | None = None,
    ) -> Envelope[Any]:
        return wrap(
            payload,
            key=key,
            source=self._source,
            correlation_id=correlation_id or correlation.current(),
            event_id=event_id,
        )

    async def publish(
        self,
        spec: TopicSpec,
        payload: Payload,
        key: str,
        correlation_id: str | None = None,
        event_id: uuid.UUID | None = None,
    ) -> Published:
        """`event_id`: the operation's own (gateway/idempotency.py); random when None."""
        envelope = self.build_envelope(payload, key, correlation_id, event_id)
        return await self.send_envelope(spec, envelope)

    async def send_envelope(self, spec: TopicSpec, envelope: Envelope[Any]) -> Published:
        (result,) = await self.send_envelopes([(spec, envelope)])
        return result

    async def send_envelopes(
        self, items: Sequence[tuple[TopicSpec, Envelope[Any]]]
    ) -> list[Published]:
        """Send many records at once and wait until the broker acknowledged every one."""
        records = [
            (
                self.topic_name(spec),
                env.key.encode(),
                encode(env),
                envelope_headers(env),
                str(env.event_id),
            )
            for spec, env in items
        ]
        return await self.send_raw(records)

    async def send_raw(self, records: Iterable[RawRecord]) -> list[Published]:
        """(topic, key, value, headers, event id) records, all acknowledged; otherwise
        BrokerUnavailable (none sent), PublishOutcomeUnknown (some may have been written) or
        CircuitOpen (the broker failed recently: not tried)."""
        if self._refusing is not None:
            raise BrokerUnavailable(self._refusing)
        records = list(records)
        async with self._breaker.guard():
            producer = await self._ensure_started()
            handed = False
            try:
                # One deadline for the whole set: asyncio.timeout costs one timer, where
                # wait_for(gather(...)) adds a task and a future per call (gateway hot path).
                async with asyncio.timeout(self._settings.publish_timeout_s):
                    futures = []
                    for topic, key, value, headers, _ in records:
                        futures.append(
                            await producer.send(topic, value=value, key=key, headers=headers)
                        )
                        handed = True
                    metas = [await future for future in futures]
            except (KafkaError, OSError, TimeoutError) as exc:
                error = PublishOutcomeUnknown if handed else BrokerUnavailable
                raise error(
                    f"broker {self._settings.bootstrap} did not acknowledge "
                    f"within {self._settings.publish_timeout_s:g} s: {exc!r}"
                ) from exc
        for meta in metas:
            self._produced(meta.topic).inc()
        if self._wakeup is not None:
            self._wakeup.notify()
        return [
            Published(event_id=eid, topic=meta.topic, partition=meta.partition, offset=meta.offset)
            for (_, _, _, _, eid), meta in zip(records, metas, strict=True)
        ]

    def _produced(self, topic: str) -> Counter:
        # labels() takes a lock and builds a key each call; one child per topic is enough.
        child = self._produced_children.get(topic)
        if child is None:
            child = self._produced_children[topic] = EVENTS_PRODUCED.labels(
                self.registry_name(topic)
            )
        return child

    def registry_name(self, topic: str) -> str:
        """The topic's registry name: metrics label topics without the per-deployment prefix."""
        prefix = self._settings.topic_prefix
        return topic.removeprefix(f"{prefix}.") if prefix else topic
