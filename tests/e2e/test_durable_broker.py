"""`mgw up --durable` (issue 21): the embedded broker keeps what it acknowledged on disk, so a
SIGKILL of the broker under load, or of the whole stack, loses nothing accepted, and consumer
groups' committed offsets survive both (each drill on a throw-away stack of its own)."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import httpx
import psutil
import pytest
from aiokafka import TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from cli.backlog import up_consumer_group
from core.embedded import free_port
from core.stack_file import parse
from tests.conftest import ROOT
from tests.helpers import wait_for_up_banner

pytestmark = pytest.mark.slow

PREFIX = "durable"
GROUP = up_consumer_group(PREFIX, ("all",))
SUBMITTED = f"{PREFIX}.content.submitted"


@dataclass
class DurableUp:
    proc: subprocess.Popen[bytes]
    log_path: Path
    data_dir: Path
    gateway: str
    key: str
    stack: dict[str, str] = field(default_factory=dict)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def pid_of(self, program: str) -> int | None:
        """The live child of mgw up running `program` (a dead one not reaped yet is left out)."""
        for child in psutil.Process(self.proc.pid).children():
            try:
                cmd = child.cmdline()
            except psutil.Error:
                continue
            if cmd and Path(cmd[0]).name == program:
                return child.pid
        return None

    def post(self, canonical_id: str) -> int:
        body = {
            "canonical_id": canonical_id,
            "content_type": "movie",
            "title": "Durable",
            "genres": ["drama"],
            "updated_at": "2026-11-01T00:00:00Z",
        }
        try:
            return httpx.post(
                f"{self.gateway}/api/v1/content",
                json=body,
                headers={"X-API-Key": self.key},
                timeout=10,
            ).status_code
        except httpx.HTTPError:
            return 0


def _env() -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"KAFKA_BROKERS", "DATABASE_URL", "REDIS_URL", "QDRANT_URL"}
    }
    # Rate limits off: the drills post hundreds of titles with one key.
    env.update(
        {
            "MGW_ENV_FILE": "/nonexistent/.env",
            "KAFKA_TOPIC_PREFIX": PREFIX,
            "RATE_LIMIT_ENABLED": "false",
        }
    )
    return env


def start_up(data_dir: Path, log_path: Path) -> DurableUp:
    port = free_port()
    args = ["up", "--durable", "--data-dir", str(data_dir), "--gateway-port", str(port)]
    proc = subprocess.Popen(
        [sys.executable, "-m", "cli.main", *args],
        cwd=ROOT,
        env=_env(),
        stdout=log_path.open("a"),
        stderr=subprocess.STDOUT,
    )
    text = wait_for_up_banner(proc, log_path, 120)
    keys = re.findall(r"(mgw_[A-Za-z0-9_-]{20,})", text)
    assert keys, text
    return DurableUp(
        proc,
        log_path,
        data_dir,
        f"http://127.0.0.1:{port}",
        keys[-1],
        parse(data_dir / "stack.env"),
    )


def stop(up: DurableUp) -> None:
    if up.proc.poll() is None:
        up.proc.send_signal(signal.SIGINT)
        try:
            up.proc.wait(90)
        except subprocess.TimeoutExpired:
            up.proc.send_signal(signal.SIGINT)
            up.proc.wait(30)


@pytest.fixture
def durable_up(tmp_path: Path) -> Iterator[DurableUp]:
    up = start_up(tmp_path / ".mgw", tmp_path / "up.log")
    try:
        yield up
    finally:
        stop(up)


def stored(database_url: str, ids: set[str]) -> set[str]:
    async def run() -> set[str]:
        conn = await asyncpg.connect(database_url, timeout=5)
        try:
            rows = await conn.fetch(
                "SELECT canonical_id::text AS id FROM content WHERE canonical_id = ANY($1::uuid[])",
                list(ids),
            )
        finally:
            await conn.close()
        return {row["id"] for row in rows}

    return asyncio.run(run())


def wait_all_stored(up: DurableUp, ids: set[str], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    missing = ids
    while time.monotonic() < deadline:
        missing = ids - stored(up.stack["DATABASE_URL"], ids)
        if not missing:
            return
        time.sleep(0.5)
    raise AssertionError(f"{len(missing)} of {len(ids)} accepted titles never stored")


def committed(bootstrap: str) -> dict[int, int]:
    """The worker group's committed offsets on content.submitted, by partition."""

    async def run() -> dict[int, int]:
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
        await admin.start()
        try:
            tps = [TopicPartition(SUBMITTED, p) for p in range(12)]
            found = await admin.list_consumer_group_offsets(GROUP, partitions=tps)
        finally:
            await admin.close()
        return {tp.partition: meta.offset for tp, meta in found.items() if meta.offset >= 0}

    return asyncio.run(run())


class Poster:
    """Posts titles one after another in a thread; remembers those answered 202."""

    def __init__(self, up: DurableUp) -> None:
        self.up = up
        self.accepted: set[str] = set()
        self.refused = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            cid = str(uuid.uuid4())
            if self.up.post(cid) == 202:
                self.accepted.add(cid)
            else:
                self.refused += 1
            time.sleep(0.02)

    def __enter__(self) -> Poster:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(30)


def test_broker_killed_under_load_then_200_more_posts_loses_nothing_accepted(
    durable_up: DurableUp,
) -> None:
    up = durable_up
    bootstrap = up.stack["KAFKA_BROKERS"]
    with Poster(up) as poster:
        deadline = time.monotonic() + 60
        while len(poster.accepted) < 100:
            assert time.monotonic() < deadline, "the stack did not accept 100 posts in 60 s"
            time.sleep(0.1)
        before_kill = committed(bootstrap)
        broker = up.pid_of("tansu")
        assert broker is not None
        os.kill(broker, signal.SIGKILL)
        # Posts go on while the supervisor restarts the broker: refused ones are not accepted.
        deadline = time.monotonic() + 60
        while up.pid_of("tansu") in (None, broker) or up.post(str(uuid.uuid4())) != 202:
            assert time.monotonic() < deadline, "the broker never came back"
            time.sleep(0.2)
    # The committed offsets are still there: the restarted worker does not start over.
    after_restart = committed(bootstrap)
    assert before_kill, "no offset was committed before the kill"
    for partition, offset in before_kill.items():
        assert after_restart.get(partition, -1) >= offset, (partition, before_kill, after_restart)
    more: set[str] = set()
    deadline = time.monotonic() + 60
    while len(more) < 200:
        assert time.monotonic() < deadline, f"only {len(more)} of 200 posts accepted in 60 s"
        cid = str(uuid.uuid4())
        if up.post(cid) == 202:
            more.add(cid)
    wait_all_stored(up, poster.accepted | more, 90)
    assert "restarted on its object store" in up.log()
    print(
        f"{len(poster.accepted)} accepted around the kill ({poster.refused} refused meanwhile), "
        f"200 after: all stored"
    )


def kill_everything(up: DurableUp) -> None:
    """SIGKILL mgw up and every process under it at once, as a crash of the machine's
    processes would (nothing drains, nothing flushes)."""
    processes = [psutil.Process(up.proc.pid), *psutil.Process(up.proc.pid).children(True)]
    for process in processes:
        try:
            process.kill()
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(processes, timeout=15)
    up.proc.wait(15)


def test_a_whole_stack_killed_keeps_what_it_accepted_and_its_offsets(tmp_path: Path) -> None:
    data_dir, log_path = tmp_path / ".mgw", tmp_path / "up.log"
    first = start_up(data_dir, log_path)
    try:
        processed = {str(uuid.uuid4()) for _ in range(50)}
        assert all(first.post(cid) == 202 for cid in processed)
        wait_all_stored(first, processed, 60)
        # Processed and committed (the worker commits every second)...
        deadline = time.monotonic() + 20
        while sum(committed(first.stack["KAFKA_BROKERS"]).values()) < len(processed):
            assert time.monotonic() < deadline, "the worker never committed its offsets"
            time.sleep(0.5)
        offsets = committed(first.stack["KAFKA_BROKERS"])
        # ... and accepted but certainly not processed when everything dies: the worker is
        # frozen before they are posted.
        worker = next(
            c for c in psutil.Process(first.proc.pid).children() if "worker" in c.cmdline()
        )
        worker.suspend()
        pending = {str(uuid.uuid4()) for _ in range(100)}
        assert all(first.post(cid) == 202 for cid in pending)
        assert not stored(first.stack["DATABASE_URL"], pending)
    finally:
        kill_everything(first)
    second = start_up(data_dir, tmp_path / "up-again.log")
    try:
        # The group resumes where it was: what it had committed is still committed.
        resumed = committed(second.stack["KAFKA_BROKERS"])
        for partition, offset in offsets.items():
            assert resumed.get(partition, -1) >= offset, (partition, offsets, resumed)
        wait_all_stored(second, processed | pending, 90)
    finally:
        stop(second)
    assert second.proc.returncode == 0
