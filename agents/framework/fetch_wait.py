"""How long a worker's fetch may wait at the broker for records: Faust hard-codes 1.5 s.

Apache Kafka answers a waiting fetch as soon as records arrive, so the wait only bounds idle
polling there. Tansu (the embedded and test broker) does not: a record arriving during a fetch
waits for the fetch to time out, which made every hop of an agent cost up to ~0.75 s (measured
with aiokafka alone: p50 270 ms at a 1000 ms wait, 8 ms at 20 ms; docs/SYNC.md). So the wait
is a setting, KAFKA_FETCH_MAX_WAIT_MS, applied to the consumer Faust creates before it starts.
"""

from __future__ import annotations

from typing import Any

from faust.transport.drivers import aiokafka as faust_aiokafka

_original = faust_aiokafka.AIOKafkaConsumerThread._create_worker_consumer
_wait_ms: int | None = None


def _create_worker_consumer(self: Any, transport: Any) -> Any:
    consumer = _original(self, transport)
    if _wait_ms is not None:
        # Read by aiokafka when the consumer starts (its fetcher is made then).
        consumer._fetch_max_wait_ms = _wait_ms
    return consumer


def use_fetch_max_wait(wait_ms: int) -> None:
    """Make this process's Faust consumers wait at most `wait_ms` per fetch."""
    global _wait_ms
    _wait_ms = wait_ms
    faust_aiokafka.AIOKafkaConsumerThread._create_worker_consumer = _create_worker_consumer  # type: ignore[method-assign]
