"""Create the catalog's topics on a broker and compare the catalog with what the broker has."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from core.config import capped_partitions
from core.kafka import KafkaAdmin, NewTopic, TopicAlreadyExistsError, new_admin
from topics.registry import TopicSpec, all_topics

Status = Literal["created", "exists", "missing", "mismatch", "ok"]


@dataclass(frozen=True)
class TopicState:
    spec: TopicSpec
    name: str
    status: Status
    declared_partitions: int
    broker_partitions: int | None


def _admin(bootstrap: str, client_id: str) -> KafkaAdmin:
    return new_admin(bootstrap, f"{client_id}-admin")


async def _broker_partitions(admin: KafkaAdmin, names: list[str]) -> dict[str, int]:
    existing = set(await admin.list_topics())
    wanted = [n for n in names if n in existing]
    if not wanted:
        return {}
    described = await admin.describe_topics(wanted)
    return {d["topic"]: len(d["partitions"]) for d in described if not d.get("error_code")}


def declared_partitions(spec: TopicSpec, partitions_max: int | None) -> int:
    """The catalog's count, capped by KAFKA_TOPIC_PARTITIONS_MAX (`mgw up`'s embedded broker)."""
    return capped_partitions(spec.partitions, partitions_max)


async def create_topics(
    bootstrap: str,
    prefix: str,
    replication_factor: int = 1,
    client_id: str = "media-gateway",
    partitions_max: int | None = None,
) -> list[TopicState]:
    """Create every missing topic; existing ones are left alone and reported as such."""
    specs = all_topics()
    admin = _admin(bootstrap, client_id)
    await admin.start()
    try:
        names = [s.full_name(prefix) for s in specs]
        before = await _broker_partitions(admin, names)
        missing = [s for s in specs if s.full_name(prefix) not in before]
        created: set[str] = set()
        for spec in missing:
            name = spec.full_name(prefix)
            try:
                await admin.create_topics(
                    [
                        NewTopic(
                            name=name,
                            num_partitions=declared_partitions(spec, partitions_max),
                            replication_factor=replication_factor,
                            topic_configs=spec.broker_config(),
                        )
                    ]
                )
                created.add(name)
            except TopicAlreadyExistsError:
                pass  # another process won the race; it is there, which is all we want
        after = await _broker_partitions(admin, names)
    finally:
        await admin.close()
    return [
        TopicState(
            spec=s,
            name=s.full_name(prefix),
            status="created" if s.full_name(prefix) in created else "exists",
            declared_partitions=declared_partitions(s, partitions_max),
            broker_partitions=after.get(s.full_name(prefix)),
        )
        for s in specs
    ]


async def describe_topics(
    bootstrap: str,
    prefix: str,
    client_id: str = "media-gateway",
    partitions_max: int | None = None,
) -> list[TopicState]:
    specs = all_topics()
    admin = _admin(bootstrap, client_id)
    await admin.start()
    try:
        found = await _broker_partitions(admin, [s.full_name(prefix) for s in specs])
    finally:
        await admin.close()
    states = []
    for spec in specs:
        name = spec.full_name(prefix)
        partitions = found.get(name)
        declared = declared_partitions(spec, partitions_max)
        if partitions is None:
            status: Status = "missing"
        elif not declared <= partitions <= spec.partitions:
            # Under a cap, more partitions (up to the catalog's) are in step, as in the plan.
            status = "mismatch"
        else:
            status = "ok"
        states.append(TopicState(spec, name, status, declared, partitions))
    return states
