"""The broker `mgw up` starts when KAFKA_BROKERS names none: Tansu in memory, or durable on the
embedded object store (`mgw up --durable`; core/embedded/object_store.py), and what each keeps
when something dies (docs/OPERATIONS.md, `mgw up`)."""

from __future__ import annotations

from collections.abc import Callable
from enum import Enum
from pathlib import Path

from core.embedded import (
    ServiceProcess,
    endpoint_of,
    start_broker,
    start_object_store,
)

# The supervisor's name of the object store child (the broker's is "broker").
OBJECT_STORE = "objectstore"


class BrokerKind(Enum):
    MEMORY = "memory"
    DURABLE = "durable"


def broker_services(
    kind: BrokerKind, root: Path
) -> list[tuple[str, str, str, Callable[[int | None], ServiceProcess]]]:
    """(variable, child name, banner label, start(port)) of each service the broker needs, in
    start order. Each restart passes the port of the first start."""
    log_file = root / "logs" / "tansu.log"
    if kind is BrokerKind.MEMORY:
        return [
            (
                "KAFKA_BROKERS",
                "broker",
                "kafka (Tansu, in memory)",
                lambda port: start_broker(port=port, log_file=log_file),
            )
        ]
    stores: list[ServiceProcess] = []

    def start_store(port: int | None) -> ServiceProcess:
        store = start_object_store(root / "broker", port=port)
        stores[:] = [store]
        return store

    return [
        (
            "KAFKA_BROKERS",
            OBJECT_STORE,
            "object store (SeaweedFS S3: the broker's data)",
            start_store,
        ),
        (
            "KAFKA_BROKERS",
            "broker",
            "kafka (Tansu, durable: on the object store)",
            lambda port: start_broker(
                port=port,
                log_file=log_file,
                storage=endpoint_of(stores[0]),
            ),
        ),
    ]


def durability_note(kind: BrokerKind | None) -> str:
    if kind is None:
        return (
            "Events are kept by the broker at KAFKA_BROKERS. Ctrl-C stops the gateway, waits "
            "until every accepted event is processed, then stops the rest."
        )
    if kind is BrokerKind.DURABLE:
        return (
            "The embedded broker keeps events and consumer offsets on disk (.mgw/broker): they "
            "survive the death of any process and a restart of the stack. Ctrl-C stops the "
            "gateway, waits until every accepted event is processed, then stops the rest."
        )
    return (
        "[yellow]The embedded broker keeps events in memory only:[/yellow] they survive a "
        "worker crash (the broker stays up) and a Ctrl-C (it waits until every accepted event "
        "is processed), but not the broker's own death or a second Ctrl-C, and nothing is kept "
        "across restarts. `mgw up --durable` keeps them on disk; KAFKA_BROKERS=host:9092 uses "
        "a Kafka of yours."
    )


def restart_note(kind: BrokerKind) -> str:
    if kind is BrokerKind.DURABLE:
        return (
            "the embedded broker restarted on its object store: the events it acknowledged and "
            "the consumer groups' offsets are still there."
        )
    return (
        "[red]the embedded broker restarted empty: the events it held are lost; replay their "
        "source (e.g. `mgw ingest FILE`). `mgw up --durable` or KAFKA_BROKERS keep them.[/red]"
    )


def unprocessed_note(kind: BrokerKind | None) -> str:
    """What becomes of accepted events left unprocessed by a stop without draining."""
    if kind is BrokerKind.MEMORY:
        return "; the embedded broker keeps nothing, so they are lost"
    if kind is BrokerKind.DURABLE:
        return "; they stay in the broker's store and are processed by the next `mgw up --durable`"
    return ""
