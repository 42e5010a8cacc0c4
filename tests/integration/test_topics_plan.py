"""`mgw topics plan [--apply]` against the real broker: what is missing, short of partitions or
drifted in config is listed; --apply creates what the broker can create and says what it
refused (Tansu has no CreatePartitions or AlterConfigs); nothing is ever deleted."""

from __future__ import annotations

import os
import uuid

from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from core.config import Settings
from tests.helpers import run_cli
from topics.plan import BrokerTopic, broker_state, plan
from topics.registry import CONTENT_LOOKUP, CONTENT_RAW, CONTENT_SUBMITTED, all_topics


def test_the_plan_of_a_broker_state() -> None:
    prefix = "p"
    wanted = CONTENT_RAW.broker_config()
    broker = {
        CONTENT_RAW.full_name(prefix): BrokerTopic(2, {**wanted, "retention.ms": "1000"}),
        CONTENT_SUBMITTED.full_name(prefix): BrokerTopic(9, CONTENT_SUBMITTED.broker_config()),
        CONTENT_LOOKUP.full_name(prefix): BrokerTopic(
            CONTENT_LOOKUP.partitions, CONTENT_LOOKUP.broker_config()
        ),
        "p.gone": BrokerTopic(1, {}),
        "other.content.raw": BrokerTopic(1, {}),
    }
    actions = {(a.topic, a.kind): a for a in plan(all_topics(), prefix, broker)}
    raw = CONTENT_RAW.full_name(prefix)
    assert actions[(raw, "add_partitions")].partitions == CONTENT_RAW.partitions
    assert "out of order" in actions[(raw, "add_partitions")].detail
    assert actions[(raw, "set_config")].configs == {"retention.ms": wanted["retention.ms"]}
    assert (CONTENT_SUBMITTED.full_name(prefix), "cannot") in actions
    assert not [k for k in actions if k[0] == CONTENT_LOOKUP.full_name(prefix)]
    assert ("p.gone", "unknown") in actions
    assert not [k for k in actions if k[0] == "other.content.raw"]
    creates = {t for t, kind in actions if kind == "create"}
    assert creates == {s.full_name(prefix) for s in all_topics()} - set(broker)


async def test_plan_and_apply_on_the_broker(settings: Settings) -> None:
    prefix = f"plan{uuid.uuid4().hex[:6]}"
    bootstrap = settings.kafka.bootstrap
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics(
            [
                NewTopic(
                    CONTENT_RAW.full_name(prefix),
                    2,
                    1,
                    topic_configs={**CONTENT_RAW.broker_config(), "retention.ms": "1000"},
                ),
                NewTopic(f"{prefix}.retired.topic", 1, 1),
            ]
        )
    finally:
        await admin.close()
    env = {**os.environ, "KAFKA_BROKERS": bootstrap, "KAFKA_TOPIC_PREFIX": prefix}
    env |= {"MGW_ENV_FILE": "/nonexistent/.env", "COLUMNS": "250"}

    code, out, err = await run_cli("topics", "plan", env=env)
    assert code == 0, err
    raw = CONTENT_RAW.full_name(prefix)
    for expected in ("add_partitions", "set_config", "create", "unknown", "--apply"):
        assert expected in out, expected
    assert "2 -> 8 partitions" in out and "retention.ms: 1000 -> " in out

    code, out, err = await run_cli("topics", "plan", "--apply", env=env)
    assert code == 1
    assert f"not applied add_partitions {raw}" in err
    assert "does not support" in err
    state = await broker_state(bootstrap, prefix)
    assert {s.full_name(prefix) for s in all_topics()} <= set(state)
    assert state[CONTENT_SUBMITTED.full_name(prefix)].partitions == CONTENT_SUBMITTED.partitions
    assert f"{prefix}.retired.topic" in state, "plan deleted a topic"
    left = {a.kind for a in plan(all_topics(), prefix, state)}
    assert left == {"add_partitions", "set_config", "unknown"}


def test_a_partition_cap_is_what_the_plan_wants() -> None:
    """KAFKA_TOPIC_PARTITIONS_MAX (`mgw up`'s embedded broker: 1): a topic at the cap, or
    between it and the catalog's count, is in step; a missing one is created at the cap."""
    prefix = "p"
    assert CONTENT_RAW.partitions > 2
    broker = {
        CONTENT_RAW.full_name(prefix): BrokerTopic(1, CONTENT_RAW.broker_config()),
        CONTENT_SUBMITTED.full_name(prefix): BrokerTopic(2, CONTENT_SUBMITTED.broker_config()),
    }
    actions = plan(all_topics(), prefix, broker, partitions_max=1)
    assert not [a for a in actions if a.topic in broker], actions
    creates = [a for a in actions if a.kind == "create"]
    assert creates and {a.partitions for a in creates} == {1}
    # Without the cap, the same broker is short of partitions.
    uncapped = {(a.topic, a.kind) for a in plan(all_topics(), prefix, broker)}
    assert (CONTENT_RAW.full_name(prefix), "add_partitions") in uncapped


async def test_topics_created_under_a_cap_are_in_step(settings: Settings) -> None:
    prefix = f"cap{uuid.uuid4().hex[:6]}"
    bootstrap = settings.kafka.bootstrap
    env = {**os.environ, "KAFKA_BROKERS": bootstrap, "KAFKA_TOPIC_PREFIX": prefix}
    env |= {"MGW_ENV_FILE": "/nonexistent/.env", "COLUMNS": "250"}
    env["KAFKA_TOPIC_PARTITIONS_MAX"] = "1"

    code, _, err = await run_cli("topics", "create", env=env)
    assert code == 0, err
    state = await broker_state(bootstrap, prefix)
    assert {s.full_name(prefix) for s in all_topics()} == set(state)
    assert {t.partitions for t in state.values()} == {1}
    code, out, err = await run_cli("topics", "plan", env=env)
    assert code == 0, err
    assert "matches the catalog" in out
    code, out, err = await run_cli("topics", "list", env=env)
    assert code == 0, err
    assert "mismatch" not in out and " ok" in out
    # The catalog's counts (production) see the same broker short of partitions.
    del env["KAFKA_TOPIC_PARTITIONS_MAX"]
    code, out, err = await run_cli("topics", "list", env=env)
    assert code == 0, err
    assert "mismatch" in out
