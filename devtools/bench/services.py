"""What every benchmark runs against: a broker of its own (its topics start empty and nothing
else publishes to it), the PostgreSQL and Redis named by DATABASE_URL / REDIS_URL or embedded
ones started here, and a scratch database; all of it removed afterwards, whatever happens."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
from rich.console import Console

from core.embedded import (
    ServiceProcess,
    endpoint_of,
    start_broker,
    start_object_store,
    start_postgres,
    start_redis,
)
from devtools.scratch_db import create_database, drop_database


@dataclass(frozen=True)
class BenchServices:
    workdir: Path
    broker_url: str
    database_url: str  # the scratch database
    redis_url: str


def start_bench_broker(workdir: Path, durable: bool = False) -> list[ServiceProcess]:
    """A broker of the benchmark's own, in memory or durable on an object store (as `mgw up
    --durable` runs it); the services in start order, the broker last."""
    if not durable:
        return [start_broker(log_file=workdir / "tansu.log")]
    store = start_object_store(workdir / "broker")
    try:
        broker = start_broker(log_file=workdir / "tansu.log", storage=endpoint_of(store))
    except BaseException:
        store.stop()
        raise
    return [store, broker]


@contextmanager
def bench_services(
    name: str, console: Console, durable: bool = False, keep: bool = False
) -> Iterator[BenchServices]:
    """`keep`: the scratch database and the work directory outlive the run (for examining
    the state the agents stored, in process); the processes stop all the same."""
    services: list[ServiceProcess] = []
    workdir = Path(tempfile.mkdtemp(prefix=f"mgw-bench-{name}-"))
    database = f"mgw_bench_{name}_{uuid.uuid4().hex[:8]}"
    server = os.environ.get("DATABASE_URL")
    created = False
    try:
        with console.status("starting services..."):
            services.extend(start_bench_broker(workdir, durable))
            broker = services[-1]
            if not server:
                postgres = start_postgres(workdir / "postgres")
                services.append(postgres)
                server = postgres.url
            redis_url = os.environ.get("REDIS_URL")
            if not redis_url:
                redis = start_redis(workdir / "redis")
                services.append(redis)
                redis_url = redis.url
            database_url = asyncio.run(create_database(server, database))
            created = True
        yield BenchServices(workdir, broker.url, database_url, redis_url)
    finally:
        try:
            if created and server and not keep:
                asyncio.run(drop_database(server, database))
            elif created:
                console.print(f"kept: DATABASE_URL={database_url} workdir={workdir}")
        finally:
            for service in reversed(services):
                service.stop()


ROOT = Path(__file__).resolve().parents[2]


def spawn_mgw(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """`mgw ARGS...` (a worker group, the gateway) with `env` over ours, its output in `log`."""
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "cli.main", *args],
            cwd=ROOT,
            env={**os.environ, **env},
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def stop_process(process: subprocess.Popen[bytes] | None) -> None:
    """SIGINT (a clean stop), then SIGKILL after 20 s."""
    if process is None or process.poll() is not None:
        return
    process.send_signal(signal.SIGINT)
    try:
        process.wait(20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(5)


class NotReady(RuntimeError):
    """A process the benchmark started exited, or did not answer in time."""


def wait_ready(url: str, process: subprocess.Popen[bytes], log: Path, limit_s: float) -> None:
    """Until `url` answers 200; NotReady, with the end of `log`, when `process` exits first
    or `limit_s` passes."""
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise NotReady(f"{log.name}: exited:\n{log.read_text(errors='replace')[-3000:]}")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise NotReady(f"{url} not ready after {limit_s:g} s; see {log}")
