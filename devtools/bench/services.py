"""What every benchmark runs against: a broker of its own (its topics start empty and nothing
else publishes to it), the PostgreSQL and Redis named by DATABASE_URL / REDIS_URL or embedded
ones started here, and a scratch database; all of it removed afterwards, whatever happens."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import redis.asyncio as aioredis
from rich.console import Console

from core.embedded import (
    ServiceProcess,
    endpoint_of,
    free_port,
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
    # The process ids of the services started here, by name ("broker", "postgres", "redis"):
    # what a bench reads their CPU time from. One of DATABASE_URL / REDIS_URL is not here.
    pids: dict[str, int] = field(default_factory=dict)


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
        pids = {s.name: s.pid for s in services if s.pid is not None}
        yield BenchServices(workdir, broker.url, database_url, redis_url, pids)
    finally:
        try:
            if created and server and not keep:
                asyncio.run(drop_database(server, database))
            elif created:
                console.print(f"kept: DATABASE_URL={database_url} workdir={workdir}")
        finally:
            for service in reversed(services):
                service.stop()
            # The embedded PostgreSQL's data lives here (a notify bench leaves 1.1 GB).
            if not keep:
                shutil.rmtree(workdir, ignore_errors=True)


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


@dataclass(frozen=True)
class LoneGateway:
    """One `mgw gateway` process on a broker and Redis prefix of its own."""

    url: str
    pid: int
    env: dict[str, str]
    redis_url: str
    prefix: str


@contextmanager
def lone_gateway(stem: str, extra_env: dict[str, str] | None = None) -> Iterator[LoneGateway]:
    """A single-process gateway, no worker, rate limits off, for the benches that measure the
    gateway's own holding of connections (edge, sockets); NotReady when it does not start.
    The broker and (without REDIS_URL) Redis are started here and stopped on exit."""
    import secrets

    with tempfile.TemporaryDirectory(prefix=f"mgw-bench-{stem}-") as tmp, ExitStack() as stack:
        workdir = Path(tmp)
        services = start_bench_broker(workdir)
        redis_url = os.environ.get("REDIS_URL")
        if not redis_url:
            redis = start_redis(workdir / "redis")
            services.append(redis)
            redis_url = redis.url
        for service in reversed(services):
            stack.callback(service.stop)
        port, prefix = free_port(), f"b{stem}{uuid.uuid4().hex[:6]}"
        env = {
            "KAFKA_BROKERS": next(s.url for s in services if s.name == "broker"),
            "KAFKA_TOPIC_PREFIX": prefix,
            "REDIS_URL": redis_url,
            "REDIS_KEY_PREFIX": prefix,
            "AUTH_JWT_SECRET": secrets.token_urlsafe(48),
            "RATE_LIMIT_ENABLED": "false",
            "GATEWAY_PORT": str(port),
            "GATEWAY_WORKERS": "1",
            "METRICS_PORT": "0",
            "LOG_LEVEL": "warning",
            "LOG_FORMAT": "json",
            "MGW_ENV_FILE": "/nonexistent/.env",
            **(extra_env or {}),
        }
        log = workdir / "gateway.log"
        gateway = spawn_mgw(["gateway"], env, log)
        stack.callback(stop_process, gateway)
        url = f"http://127.0.0.1:{port}"
        wait_ready(f"{url}/health/ready", gateway, log, 60)
        yield LoneGateway(url, gateway.pid, env, redis_url, prefix)


def rss_mb(pid: int) -> float:
    import psutil

    return psutil.Process(pid).memory_info().rss / 2**20


async def forget_keys(redis_url: str, prefix: str) -> None:
    """Remove every key under `prefix` from the Redis at `redis_url`: a bench that writes into a
    shared Redis leaves nothing behind."""
    redis = aioredis.from_url(redis_url)
    try:
        batch: list[bytes] = []
        async for key in redis.scan_iter(match=f"{prefix}:*", count=10_000):
            batch.append(key)
            if len(batch) >= 10_000:
                await redis.unlink(*batch)
                batch.clear()
        if batch:
            await redis.unlink(*batch)
    finally:
        await redis.aclose()
