"""Wrong arguments an operator gives `mgw` commands end in a sentence saying what to do, never in
a traceback (found by hand: `mgw tail content.raw --partition 7` on a one-partition topic printed
"0 partition(s)" and then aiokafka's CancelledError)."""

from __future__ import annotations

import os
from pathlib import Path

from tests.conftest import Isolated
from tests.helpers import run_cli


async def test_tail_of_a_partition_the_topic_lacks_names_the_ones_it_has(
    isolated: Isolated,
) -> None:
    env = {**os.environ, **isolated.env}
    prefix = isolated.settings.kafka.topic_prefix
    code, out, err = await run_cli(
        "tail", "content.raw", "--partition", "99", "--no-follow", env=env, limit_s=60
    )
    assert "Traceback" not in err, err
    assert code == 2, (code, out, err)
    assert f"{prefix}.content.raw has no partition 99" in err, err
    assert "choose --partition among them" in err, err


async def test_sample_catalog_into_a_missing_directory_says_so(tmp_path: Path) -> None:
    target = tmp_path / "no" / "such" / "dir" / "catalog.jsonl"
    code, out, err = await run_cli(
        "sample-catalog", str(target), "--titles", "3", env=dict(os.environ), limit_s=60
    )
    assert "Traceback" not in err, err
    assert code == 2, (code, out, err)
    assert "cannot write" in err and "No such file or directory" in err, err
    assert "name a file in a directory that exists" in err, err


async def test_a_dead_letter_not_kept_points_to_the_list(isolated: Isolated) -> None:
    env = {**os.environ, **isolated.env}
    code, out, err = await run_cli("dlq", "show", "content.raw", "17", env=env, limit_s=60)
    assert "Traceback" not in err, err
    assert code == 1, (code, out, err)
    assert "no dead letter 17" in err and "`mgw dlq list content.raw` lists" in err, err
    code, out, err = await run_cli("dlq", "replay", "content.raw", "17", env=env, limit_s=60)
    assert code == 1, (code, out, err)
    assert "no such dead letter (`mgw dlq list` lists the refs)" in out, out


async def test_readmodel_rebuild_without_its_services_says_what_to_check(
    service_env: dict[str, str],
) -> None:
    """Found by hand: `mgw readmodel rebuild` (the runbook's step after a Redis loss) with
    PostgreSQL or Redis not answering ended in a traceback."""
    nowhere = {
        "DATABASE_URL": "postgresql://mgw@127.0.0.1:1/mgw",
        "REDIS_URL": "redis://127.0.0.1:1/0",
    }
    for missing in ("DATABASE_URL", "REDIS_URL"):
        env = {**os.environ, **service_env, missing: nowhere[missing]}
        code, out, err = await run_cli("readmodel", "rebuild", env=env, limit_s=90)
        assert "Traceback" not in err, (missing, err)
        assert code == 1, (missing, code, out, err)
        assert "cannot reach PostgreSQL or Redis: ConnectionRefusedError" in err or (
            "cannot reach PostgreSQL or Redis: ConnectionError" in err
        ), (missing, err)
        assert "check DATABASE_URL and REDIS_URL" in err and "run it again" in err, err


async def test_the_runbooks_commands_without_their_services_say_what_to_check(
    service_env: dict[str, str],
) -> None:
    """Found by hand: `mgw dlq list` (the runbook of MgwDeadLetters), `mgw dlq replay`, `mgw
    tail` with the broker down, and `mgw ingest-report` with PostgreSQL down, ended in
    tracebacks."""
    broker_down = {**os.environ, **service_env, "KAFKA_BROKERS": "127.0.0.1:1"}
    for args in (
        ("dlq", "list", "content.raw"),
        ("dlq", "replay", "content.raw", "1"),
        ("tail", "content.raw", "--no-follow"),
    ):
        code, out, err = await run_cli(*args, env=broker_down, limit_s=90)
        assert "Traceback" not in err, (args, err)
        assert code == 1, (args, code, out, err)
        assert "cannot reach the broker at 127.0.0.1:1: KafkaConnectionError" in err, (args, err)
        assert "check KAFKA_BROKERS" in err, (args, err)
    pg_down = {**os.environ, **service_env, "DATABASE_URL": "postgresql://mgw@127.0.0.1:1/mgw"}
    code, out, err = await run_cli("ingest-report", env=pg_down, limit_s=90)
    assert "Traceback" not in err, err
    assert code == 1 and "cannot reach PostgreSQL: ConnectionRefusedError" in err, (code, err)
    assert "check DATABASE_URL" in err, err


async def test_contracts_into_a_directory_that_cannot_be_made_say_so() -> None:
    code, out, err = await run_cli(
        "topics",
        "contracts",
        "/proc/mgw-contracts",
        "--prefix",
        "mgw",
        "--bootstrap",
        "127.0.0.1:9092",
        env={**os.environ, "MGW_STACK_FILE": "none"},
        limit_s=60,
    )
    assert "Traceback" not in err, err
    assert code == 2, (code, out, err)
    assert "cannot write into /proc/mgw-contracts: FileNotFoundError" in err, err


async def test_a_merge_patch_that_is_not_an_object_says_what_it_must_be(
    isolated: Isolated,
) -> None:
    # Found by hand: `--merge '[1]'` was refused only as "would fail again" per record.
    env = {**os.environ, **isolated.env}
    code, out, err = await run_cli(
        "dlq", "replay", "content.raw", "1", "--merge", "[1]", env=env, limit_s=60
    )
    assert "Traceback" not in err, err
    assert code == 2, (code, out, err)
    assert "--merge must be a JSON object" in err, err
