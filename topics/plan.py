"""`mgw topics plan`: what an operator must do so the broker matches the catalog, and doing it.

The plan is computed from what the broker says (topics, partition counts, topic configs) and
never deletes anything: a topic of our prefix that the catalog no longer declares is reported,
and partitions can only be added. Applying needs CreateTopics, CreatePartitions and
AlterConfigs; a broker without one of them (Tansu, the dev broker, has only the first) gets
the plan printed with the reason each step could not be applied.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal

from core.config import capped_partitions
from core.kafka import (
    ConfigResource,
    ConfigResourceType,
    KafkaAdmin,
    KafkaError,
    NewPartitions,
    NewTopic,
    TopicAlreadyExistsError,
    new_admin,
)
from topics.registry import DLQ_SUFFIX, TopicSpec

Kind = Literal["create", "add_partitions", "set_config", "cannot", "unknown"]

# Raising partitions moves keys: hash(key) % partitions changes for most keys, so records of
# one key written before and after land on different partitions (docs/OPERATIONS.md).
KEY_ORDER_WARNING = (
    "records of one key written before and after may be read out of order while the "
    "consumers drain the old partitions"
)


@dataclass(frozen=True)
class Action:
    topic: str  # the full name, with the prefix
    kind: Kind
    detail: str
    spec: TopicSpec | None = None
    partitions: int | None = None
    configs: Mapping[str, str] = field(default_factory=dict)

    @property
    def applicable(self) -> bool:
        return self.kind in ("create", "add_partitions", "set_config")


@dataclass(frozen=True)
class BrokerTopic:
    partitions: int
    configs: Mapping[str, str]  # effective values, defaults included
    # Only the topic's own overrides: what AlterConfigs must send again to keep them.
    overrides: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Outcome:
    action: Action
    applied: bool
    error: str = ""


def plan(
    specs: Iterable[TopicSpec],
    prefix: str,
    broker: Mapping[str, BrokerTopic],
    partitions_max: int | None = None,
) -> list[Action]:
    """Every step from `broker` (full name -> what the broker has) to the catalog; pure.
    `partitions_max` (KAFKA_TOPIC_PARTITIONS_MAX) caps the counts wanted: a broker holding
    more, up to the catalog's, is in step."""
    actions: list[Action] = []
    declared = set()
    for spec in specs:
        name = spec.full_name(prefix)
        declared.add(name)
        have = broker.get(name)
        wanted = spec.broker_config()
        count = capped_partitions(spec.partitions, partitions_max)
        if have is None:
            actions.append(
                Action(
                    name,
                    "create",
                    f"{count} partitions, "
                    + ", ".join(f"{k}={v}" for k, v in sorted(wanted.items())),
                    spec,
                    count,
                    wanted,
                )
            )
            continue
        if have.partitions < count:
            actions.append(
                Action(
                    name,
                    "add_partitions",
                    f"{have.partitions} -> {count} partitions; {KEY_ORDER_WARNING}",
                    spec,
                    count,
                )
            )
        elif have.partitions > spec.partitions:
            actions.append(
                Action(
                    name,
                    "cannot",
                    f"the broker has {have.partitions} partitions, the catalog declares "
                    f"{spec.partitions}: Kafka cannot remove partitions; raise the catalog's "
                    f"count to {have.partitions} (topics/registry.py)",
                    spec,
                )
            )
        drift = {k: v for k, v in wanted.items() if have.configs.get(k) != v}
        if drift:
            actions.append(
                Action(
                    name,
                    "set_config",
                    ", ".join(
                        f"{k}: {have.configs.get(k, '(default)')} -> {v}"
                        for k, v in sorted(drift.items())
                    ),
                    spec,
                    configs=drift,
                )
            )
    base = f"{prefix}." if prefix else ""
    for name in sorted(set(broker) - declared):
        if prefix and name.startswith(base):
            rest = name.removeprefix(base)
            hint = " (a dead-letter topic: look at it first)" if rest.endswith(DLQ_SUFFIX) else ""
            actions.append(
                Action(
                    name,
                    "unknown",
                    f"not in the catalog ({rest}); left alone: delete it by hand once "
                    f"nobody reads it{hint}",
                )
            )
    return actions


def _admin(bootstrap: str) -> KafkaAdmin:
    return new_admin(bootstrap, "mgw-topics-plan", request_timeout_ms=15000)


async def broker_state(bootstrap: str, prefix: str) -> dict[str, BrokerTopic]:
    """Partitions and topic configs of every topic of our prefix (all topics without one)."""
    admin = _admin(bootstrap)
    await admin.start()
    try:
        names = [
            n
            for n in await admin.list_topics()
            if not n.startswith("__") and (not prefix or n.startswith(f"{prefix}."))
        ]
        if not names:
            return {}
        described = await admin.describe_topics(names)
        partitions = {
            d["topic"]: len(d["partitions"]) for d in described if not d.get("error_code")
        }
        configs = await _configs(admin, list(partitions))
    finally:
        await admin.close()
    return {n: BrokerTopic(p, *configs.get(n, ({}, {}))) for n, p in partitions.items()}


# DescribeConfigs' config_source of a value set on the topic itself (KIP-226).
DYNAMIC_TOPIC_CONFIG = 1


async def _configs(
    admin: KafkaAdmin, names: list[str]
) -> dict[str, tuple[dict[str, str], dict[str, str]]]:
    """Per topic: (every effective value, the topic's own overrides)."""
    resources = [ConfigResource(ConfigResourceType.TOPIC, n) for n in names]
    out: dict[str, tuple[dict[str, str], dict[str, str]]] = {}
    for response in await admin.describe_configs(resources):
        for resource in response.resources:
            error_code, _message, _type, name, entries = resource[:5]
            if error_code:
                continue
            values = {e[0]: e[1] for e in entries if e[1] is not None}
            own = {
                e[0]: e[1]
                for e in entries
                if e[1] is not None and len(e) > 3 and e[3] == DYNAMIC_TOPIC_CONFIG
            }
            out[name] = (values, own)
    return out


async def apply(
    bootstrap: str,
    actions: Iterable[Action],
    broker: Mapping[str, BrokerTopic],
    replication_factor: int = 1,
) -> list[Outcome]:
    """Carry out the applicable steps one by one; a step the broker refuses is reported."""
    outcomes: list[Outcome] = []
    admin = _admin(bootstrap)
    await admin.start()
    try:
        for action in actions:
            if not action.applicable:
                continue
            try:
                await _apply_one(admin, action, broker, replication_factor)
            except TopicAlreadyExistsError:
                outcomes.append(Outcome(action, True, "created meanwhile by someone else"))
            except (KafkaError, OSError) as exc:
                outcomes.append(Outcome(action, False, _why(exc)))
            else:
                outcomes.append(Outcome(action, True))
    finally:
        await admin.close()
    return outcomes


async def _apply_one(
    admin: KafkaAdmin,
    action: Action,
    broker: Mapping[str, BrokerTopic],
    replication_factor: int,
) -> None:
    if action.kind == "create":
        assert action.partitions is not None
        await admin.create_topics(
            [
                NewTopic(
                    name=action.topic,
                    num_partitions=action.partitions,
                    replication_factor=replication_factor,
                    topic_configs=dict(action.configs),
                )
            ]
        )
    elif action.kind == "add_partitions":
        assert action.partitions is not None
        response = await admin.create_partitions({action.topic: NewPartitions(action.partitions)})
        _raise_on_error(response)
    elif action.kind == "set_config":
        # AlterConfigs replaces a topic's whole set of overrides: send what the broker has
        # with our changes on top, so no other override is reset to the broker default.
        have = broker.get(action.topic)
        configs = {**(have.overrides if have else {}), **action.configs}
        responses = await admin.alter_configs(
            [ConfigResource(ConfigResourceType.TOPIC, action.topic, configs=configs)]
        )
        for response in responses if isinstance(responses, list) else [responses]:
            _raise_on_error(response)


def _raise_on_error(response: object) -> None:
    for item in getattr(response, "topic_errors", None) or getattr(response, "resources", []):
        code, message = item[0], item[1]
        if isinstance(code, str):  # topic_errors are (topic, code, message)
            code, message = item[1], item[2]
        if code:
            raise KafkaError(f"error {code}: {message}")


def _why(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}"
    if "API version is unknown" in text:
        return (
            "this broker does not support the request (Tansu lacks CreatePartitions and "
            "AlterConfigs); apply it on Apache Kafka or with its tools"
        )
    return text
