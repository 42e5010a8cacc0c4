"""The running stack's address file: written owner-only, read only while its `mgw up` lives,
never over a variable the environment sets."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from core.stack_file import (
    PID_VARIABLE,
    apply_running_stack,
    how_commands_find,
    parse,
    remove_stack_file,
    running_stack,
    write_stack_file,
)


def test_a_live_stack_fills_only_what_the_environment_lacks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "stack.env"
    write_stack_file(path, {"DATABASE_URL": "postgresql://a@127.0.0.1:5555/x", "REDIS_URL": "r"})
    assert path.stat().st_mode & 0o777 == 0o600
    assert parse(path)[PID_VARIABLE] == str(os.getpid())
    monkeypatch.setenv("MGW_STACK_FILE", str(path))
    env = {"REDIS_URL": "redis://mine"}
    assert apply_running_stack(env) == {
        PID_VARIABLE: str(os.getpid()),
        "DATABASE_URL": "postgresql://a@127.0.0.1:5555/x",
    }
    assert env["REDIS_URL"] == "redis://mine"


def test_the_file_of_a_stack_that_died_is_ignored(tmp_path: Path) -> None:
    gone = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        text=True,
        capture_output=True,
        check=True,
    )
    path = tmp_path / "stack.env"
    path.write_text(f"{PID_VARIABLE}={gone.stdout.strip()}\nDATABASE_URL=postgresql://old\n")
    assert running_stack(path) == {}
    path.write_text("DATABASE_URL=postgresql://no-pid\n")
    assert running_stack(path) == {}


def test_none_reads_no_file_and_only_the_writer_removes_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "stack.env"
    write_stack_file(path, {"KAFKA_BROKERS": "127.0.0.1:1"})
    monkeypatch.setenv("MGW_STACK_FILE", "none")
    assert apply_running_stack({}) == {}
    path.write_text(f"{PID_VARIABLE}=1\nKAFKA_BROKERS=x\n")  # another stack's file
    remove_stack_file(path)
    assert path.exists()
    write_stack_file(path, {"KAFKA_BROKERS": "127.0.0.1:1"})
    remove_stack_file(path)
    assert not path.exists()


def test_a_value_with_a_line_break_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="AUTH_JWT_SECRET"):
        write_stack_file(tmp_path / "stack.env", {"AUTH_JWT_SECRET": "a\nDATABASE_URL=evil"})


def test_the_gateway_ops_ports_are_those_its_live_processes_hold(tmp_path: Path) -> None:
    """A gateway restarted by `mgw up` serves its ops port on another port than the one the
    stack file was written with; `mgw stack` named the dead one."""
    path = tmp_path / "stack.env"
    write_stack_file(path, {"MGW_GATEWAY_OPS_URLS": "http://127.0.0.1:35693"})
    run = tmp_path / "run"
    run.mkdir()
    (run / f"gateway-ops.{os.getpid()}").write_text("9101")
    gone = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    (run / f"gateway-ops.{gone}").write_text("35693")  # the process that died
    assert running_stack(path)["MGW_GATEWAY_OPS_URLS"] == "http://127.0.0.1:9101"


def test_the_embedded_brokers_partition_cap_comes_only_with_its_broker(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "stack.env"
    write_stack_file(path, {"KAFKA_BROKERS": "127.0.0.1:1", "KAFKA_TOPIC_PARTITIONS_MAX": "1"})
    monkeypatch.setenv("MGW_STACK_FILE", str(path))
    env: dict[str, str] = {}
    apply_running_stack(env)
    assert env["KAFKA_TOPIC_PARTITIONS_MAX"] == "1"
    # A broker of yours named in the environment gets the catalog's partition counts.
    env = {"KAFKA_BROKERS": "kafka.example:9092"}
    taken = apply_running_stack(env)
    assert "KAFKA_TOPIC_PARTITIONS_MAX" not in taken and "KAFKA_TOPIC_PARTITIONS_MAX" not in env


def test_the_banner_says_how_commands_find_a_stack_kept_elsewhere(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Found by hand: `mgw up --data-dir /tmp/x` said every command "in this directory" finds
    the stack through ../../tmp/x/stack.env, but commands read .mgw/stack.env unless
    MGW_STACK_FILE names another file."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MGW_STACK_FILE", raising=False)
    here = tmp_path / ".mgw" / "stack.env"
    assert how_commands_find(here) == (
        "Every `mgw` command in this directory finds this stack through .mgw/stack.env"
    )
    elsewhere = tmp_path / "other" / "stack.env"
    said = how_commands_find(elsewhere)
    assert "in this directory" not in said
    assert f"MGW_STACK_FILE={elsewhere}" in said
    # Named by MGW_STACK_FILE in the shell that started it: found there.
    monkeypatch.setenv("MGW_STACK_FILE", str(elsewhere))
    assert "finds this stack through other/stack.env" in how_commands_find(elsewhere)


def test_mgw_stack_with_no_file_to_read_says_why() -> None:
    """Found by hand: with MGW_STACK_FILE=none, `mgw stack` said "no running stack recorded
    in None"."""
    done = subprocess.run(
        [sys.executable, "-m", "cli.main", "stack"],
        cwd=Path(__file__).resolve().parents[2],
        env={**os.environ, "MGW_STACK_FILE": "none"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1, done
    assert "in None" not in done.stderr
    assert "MGW_STACK_FILE is empty or none" in done.stderr, done.stderr
