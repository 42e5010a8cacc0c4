"""The client side of the one seam to Kafka: what the gateway's publisher, the topic tools and
the `mgw` commands use. Its other side is the worker framework's adapter,
agents/framework/kafka/; nothing else imports aiokafka or Faust (tests/unit/test_kafka_seam.py).

Clients are made here with the project's conventions, so each is stated once: producers wait
for every in-sync replica and are not idempotent (InitProducerId, which idempotence needs, is
rejected by dev brokers such as Tansu, docs/BROKER.md; duplicates from retries are made
harmless by idempotent sinks instead), and the tools' consumers belong to no group and commit
nothing.
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewPartitions, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.client import AIOKafkaClient
from aiokafka.errors import KafkaError, TopicAlreadyExistsError

__all__ = [
    "ConfigResource",
    "ConfigResourceType",
    "ConsumerRecord",
    "KafkaAdmin",
    "KafkaConsumer",
    "KafkaError",
    "KafkaProducer",
    "NewPartitions",
    "NewTopic",
    "TopicAlreadyExistsError",
    "TopicPartition",
    "new_admin",
    "new_metadata_client",
    "new_producer",
    "new_reader",
    "stop_reader",
]

KafkaProducer = AIOKafkaProducer
KafkaConsumer = AIOKafkaConsumer
KafkaAdmin = AIOKafkaAdminClient


def new_producer(bootstrap: str, client_id: str, **options: Any) -> KafkaProducer:
    """A producer whose sends are acknowledged by every in-sync replica (not started)."""
    return AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        client_id=client_id,
        acks="all",
        enable_idempotence=False,
        **options,
    )


def new_reader(bootstrap: str, client_id: str, **options: Any) -> KafkaConsumer:
    """A consumer of no group that commits nothing and starts at the log start (not started):
    for tools that read topics and assign partitions themselves."""
    return AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        client_id=client_id,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        **options,
    )


async def stop_reader(consumer: KafkaConsumer) -> None:
    """Stop a reader of `new_reader`, however soon after its start.

    Its start schedules a task that its stop cancels and awaits; cancelled before its first
    step (no await between the start and the stop, as when a tool refuses its arguments right
    after reading the metadata), the task raises CancelledError out of the stop. One turn of
    the loop lets it take that step."""
    await asyncio.sleep(0)
    await consumer.stop()


def new_admin(bootstrap: str, client_id: str, request_timeout_ms: int = 10000) -> KafkaAdmin:
    return AIOKafkaAdminClient(
        bootstrap_servers=bootstrap, client_id=client_id, request_timeout_ms=request_timeout_ms
    )


def new_metadata_client(bootstrap: str, client_id: str, timeout_ms: int) -> AIOKafkaClient:
    """A bare client for cluster metadata (readiness probes)."""
    return AIOKafkaClient(
        bootstrap_servers=bootstrap, client_id=client_id, request_timeout_ms=timeout_ms
    )
