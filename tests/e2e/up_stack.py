"""`mgw up` in a throw-away directory, as its tests drive it: started, its children and
metrics read, other `mgw` commands run against it, stopped with Ctrl-C."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import httpx
import orjson
import psutil
from prometheus_client.parser import text_string_to_metric_families

from core.embedded import free_port
from core.stack_file import parse
from devtools.sample_catalog import SampleCatalog, generate_sample
from tests.conftest import ROOT
from tests.helpers import wait_for_up_banner


@dataclass
class Up:
    proc: subprocess.Popen[bytes]
    log_path: Path
    data_dir: Path
    env: dict[str, str]
    gateway: str
    ops: str
    key: str
    stack: dict[str, str]

    def log(self) -> str:
        return self.log_path.read_text()

    def children(self) -> dict[str, int]:
        """pid of each live direct child by role (a dead one not reaped yet is left out)."""
        roles: dict[str, Callable[[list[str]], bool]] = {
            "broker": lambda cmd: Path(cmd[0]).name == "tansu",
            "postgres": lambda cmd: Path(cmd[0]).name == "postgres",
            "redis": lambda cmd: cmd[0].startswith("redis-server") or "redis-server" in cmd[0],
            "worker": lambda cmd: "worker" in cmd,
            "gateway": lambda cmd: "gateway" in cmd,
        }
        found: dict[str, int] = {}
        for child in psutil.Process(self.proc.pid).children():
            try:
                cmd = child.cmdline()
            except psutil.Error:  # a zombie until the supervisor's next tick, or gone
                continue
            for role, match in roles.items():
                if cmd and match(cmd):
                    assert role not in found, f"two {role} processes"
                    found[role] = child.pid
        return found

    def metric(self, name: str, child: str) -> float:
        text = httpx.get(f"{self.ops}/metrics", timeout=5).text
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == name and sample.labels.get("child") == child:
                    return sample.value
        raise AssertionError(f"no {name}{{child={child}}} in {text}")

    def mgw(self, *args: str) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [sys.executable, "-m", "cli.main", *args],
            cwd=ROOT,
            env={**self.env, "MGW_STACK_FILE": str(self.data_dir / "stack.env")},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, f"mgw {' '.join(args)}:\n{done.stdout}{done.stderr}"
        return done

    def stop(self, timeout: float = 150) -> int:
        # The drain waits until every title is enriched: slow on a busy machine.
        self.proc.send_signal(signal.SIGINT)
        return self.proc.wait(timeout)


def write_catalog(path: Path, titles: int, seed: int) -> tuple[SampleCatalog, int, int]:
    """The catalog file, its accepted item count and its number of distinct true titles."""
    sample = generate_sample(titles, seed=seed, invalid_fraction=0.01)
    path.write_bytes(b"".join(orjson.dumps(item) + b"\n" for item in sample.items))
    expected_titles = len({sample.truth[k] for k in sample.truth if k not in sample.invalid})
    return sample, len(sample.items) - len(sample.invalid), expected_titles


def query(url: str, sql: str) -> list[asyncpg.Record]:
    async def run() -> list[asyncpg.Record]:
        conn = await asyncpg.connect(url, timeout=5)
        try:
            return await conn.fetch(sql)
        finally:
            await conn.close()

    return asyncio.run(run())


def progress(url: str) -> tuple[int, int]:
    """Items mapped by ingestion, titles enriched at their current version."""
    row = query(
        url,
        "SELECT (SELECT count(*) FROM entity_mappings) AS mapped, "
        "(SELECT count(*) FROM content WHERE enriched_version = updated_at "
        "AND data_quality_score > 0) AS enriched",
    )[0]
    return row["mapped"], row["enriched"]


def wait_until(done: Callable[[], bool], timeout: float, what: str, poll_s: float = 0.05) -> float:
    began = time.monotonic()
    while not done():
        assert time.monotonic() - began < timeout, f"{what} not within {timeout:.0f} s"
        time.sleep(poll_s)
    return time.monotonic() - began


def no_zombies(up: Up) -> None:
    children = psutil.Process(up.proc.pid).children()
    assert not [c.pid for c in children if c.status() == psutil.STATUS_ZOMBIE]


@contextlib.contextmanager
def running_up(tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> Iterator[Up]:
    """`mgw up ARGS` on embedded services in tmp_path, until the block ends (then Ctrl-C)."""
    port = free_port()
    environ = {
        k: v
        for k, v in os.environ.items()
        if k not in {"KAFKA_BROKERS", "DATABASE_URL", "REDIS_URL", "QDRANT_URL"}
    }
    environ.update({"MGW_ENV_FILE": "/nonexistent/.env", "KAFKA_TOPIC_PREFIX": "up"})
    environ.update(env or {})
    data_dir = tmp_path / ".mgw"
    log_path = tmp_path / "up.log"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "cli.main",
            "up",
            "--data-dir",
            str(data_dir),
            "--gateway-port",
            str(port),
            *args,
        ],
        cwd=ROOT,
        env=environ,
        stdout=log_path.open("w"),
        stderr=subprocess.STDOUT,
    )
    try:
        text = wait_for_up_banner(proc, log_path, 60)
        key = re.search(r"(mgw_[A-Za-z0-9_-]+)", text)
        ops = re.search(r"supervisor\W+(http://127\.0\.0\.1:\d+)/metrics", text)
        assert key and ops, text
        yield Up(
            proc,
            log_path,
            data_dir,
            environ,
            f"http://127.0.0.1:{port}",
            ops.group(1),
            key.group(1),
            parse(data_dir / "stack.env"),
        )
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.send_signal(signal.SIGINT)  # the second one stops at once
                proc.wait(30)
