"""The test session's real parts: its own Tansu broker, a fresh PostgreSQL database and a
Redis key space of its own on the machine's services, all removed at the end.

Base URLs: TEST_DATABASE_URL / DATABASE_URL (default: the local server as postgres) and
TEST_REDIS_URL / REDIS_URL (default: the local server).
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
import redis.asyncio as aioredis
from loguru import logger

from core.config import Settings, load_settings, settings_with
from core.embedded import ServiceProcess, free_port, start_broker
from devtools.scratch_db import create_database, drop_database

ROOT = Path(__file__).resolve().parent.parent
SESSION = uuid.uuid4().hex[:8]


def _base_database_url() -> str:
    return (
        os.environ.get("TEST_DATABASE_URL")
        or os.environ.get("DATABASE_URL")
        or "postgresql://postgres@127.0.0.1:5432/postgres"
    )


@pytest.fixture(scope="session")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceProcess]:
    service = start_broker(log_file=tmp_path_factory.mktemp("tansu") / "tansu.log")
    yield service
    service.stop()


@pytest.fixture(scope="session")
def database_url() -> Iterator[str]:
    """A database made for this session, migrated, and dropped afterwards."""
    from agents.framework.migrate import migrate_url

    base = _base_database_url()
    name = f"mgw_test_{SESSION}"

    async def create() -> str:
        url = await create_database(base, name)
        await migrate_url(url)
        return url

    yield asyncio.run(create())
    asyncio.run(drop_database(base, name))


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """The machine's Redis; the session's keys all carry its own prefix and are deleted after."""
    url = (
        os.environ.get("TEST_REDIS_URL")
        or os.environ.get("REDIS_URL")
        or "redis://127.0.0.1:6379/0"
    )
    yield url

    async def cleanup() -> None:
        client = aioredis.from_url(url)
        try:
            async for key in client.scan_iter(match=f"mgwtest-{SESSION}*", count=1000):
                await client.delete(key)
        finally:
            await client.aclose()

    asyncio.run(cleanup())


@pytest.fixture(scope="session")
def service_env(
    broker: ServiceProcess,
    database_url: str,
    redis_url: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> dict[str, str]:
    """Environment variables that point a process at this session's services."""
    return {
        "KAFKA_BROKERS": broker.url,
        "KAFKA_TOPIC_PREFIX": f"t{SESSION}",
        "KAFKA_SESSION_TIMEOUT_S": "6",
        "KAFKA_REBALANCE_TIMEOUT_S": "6",
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "REDIS_KEY_PREFIX": f"mgwtest-{SESSION}",
        "QDRANT_PATH": str(tmp_path_factory.mktemp("qdrant")),
        "LOG_FORMAT": "json",
        "MGW_ENV_FILE": "/nonexistent/.env",
        # One process per gateway a test starts (the default is one per core); the test of
        # --workers asks for more.
        "GATEWAY_WORKERS": "1",
        # A stack a developer runs with `mgw up` must not leak into the tests.
        "MGW_STACK_FILE": "none",
        # Gateways of the session accept HS256 tokens signed with this (tests/auth/helpers.py).
        "AUTH_JWT_SECRET": f"test-secret-{SESSION}-0123456789abcdef0123456789abcdef",
    }


@pytest.fixture(scope="session")
def settings(service_env: dict[str, str]) -> Iterator[Settings]:
    saved = {k: os.environ.get(k) for k in service_env}
    os.environ.update(service_env)
    try:
        yield load_settings()
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@pytest.fixture(scope="session")
def topics_created(settings: Settings) -> None:
    from topics.admin import create_topics

    asyncio.run(create_topics(settings.kafka.bootstrap, settings.kafka.topic_prefix))


@pytest.fixture
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    from agents.framework.db import _init_connection

    p = await asyncpg.create_pool(database_url, min_size=1, max_size=4, init=_init_connection)
    yield p
    await p.close()


@pytest.fixture
async def redis_client(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.from_url(redis_url)
    yield client
    await client.aclose()


@dataclass
class Proc:
    """A process of ours under test, with its log file and (when it serves HTTP) its URL."""

    name: str
    popen: subprocess.Popen[bytes]
    log_path: Path
    url: str
    env: dict[str, str] = field(default_factory=dict)

    def log_lines(self) -> list[str]:
        return self.log_path.read_text(errors="replace").splitlines()

    def stop(self, sig: int = 2, timeout: float = 15) -> int:
        if self.popen.poll() is None:
            self.popen.send_signal(sig)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(5)
        return self.popen.returncode


def wait_http_ok(url: str, timeout: float, proc: Proc | None = None) -> None:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        if proc is not None and proc.popen.poll() is not None:
            raise RuntimeError(
                f"{proc.name} exited with {proc.popen.returncode}:\n"
                + "\n".join(proc.log_lines()[-30:])
            )
        try:
            last = httpx.get(url, timeout=1)
            if last.status_code == 200:
                return
        except httpx.HTTPError as exc:
            last = exc
        time.sleep(0.1)
    tail = "\n".join(proc.log_lines()[-30:]) if proc else ""
    raise TimeoutError(f"{url} not ready after {timeout}s (last: {last!r})\n{tail}")


class Spawner:
    """Starts `mgw` subprocesses (a worker group or the gateway) against the session's
    services, logging into `logs`; `stop_all` ends them."""

    def __init__(self, service_env: dict[str, str], logs: Path) -> None:
        self.service_env, self.logs = service_env, logs
        self.procs: list[Proc] = []

    def __call__(
        self, *args: str, extra_env: dict[str, str] | None = None, ready_timeout: float = 45
    ) -> Proc:
        port = free_port()
        env = {**os.environ, **self.service_env, **(extra_env or {})}
        if args[0] == "gateway":
            env["GATEWAY_PORT"] = str(port)
            ready = f"http://127.0.0.1:{port}/health/live"
        else:
            env["METRICS_PORT"] = str(port)
            ready = f"http://127.0.0.1:{port}/health/ready"
        log_path = self.logs / f"{'-'.join(args)}-{len(self.procs)}.log"
        with log_path.open("wb") as log:
            popen = subprocess.Popen(
                [sys.executable, "-m", "cli.main", *args],
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        proc = Proc(" ".join(args), popen, log_path, f"http://127.0.0.1:{port}", env)
        self.procs.append(proc)
        wait_http_ok(ready, ready_timeout, proc)
        return proc

    def stop_all(self) -> None:
        for proc in self.procs:
            proc.stop()


@pytest.fixture
def spawn(
    service_env: dict[str, str], topics_created: None, tmp_path: Path
) -> Iterator[Callable[..., Proc]]:
    """Start `mgw` subprocesses (a worker group or the gateway) against the session's services."""
    spawner = Spawner(service_env, tmp_path)
    yield spawner
    spawner.stop_all()


@dataclass
class Isolated:
    """A database, topic prefix, Redis prefix and vector store of one test's own."""

    env: dict[str, str]
    pool: asyncpg.Pool
    settings: Settings


@asynccontextmanager
async def isolated_env(service_env: dict[str, str], directory: Path) -> AsyncIterator[Isolated]:
    """A database, topic prefix, Redis prefix and vector store (under `directory`) of one's own."""
    from agents.framework.db import _init_connection
    from agents.framework.migrate import migrate_url
    from topics.admin import create_topics

    tag = uuid.uuid4().hex[:6]
    name = f"mgw_test_{SESSION}_{tag}"
    base = _base_database_url()
    url = await create_database(base, name)
    await migrate_url(url)
    env = {
        **service_env,
        "DATABASE_URL": url,
        "KAFKA_TOPIC_PREFIX": f"{service_env['KAFKA_TOPIC_PREFIX']}-{tag}",
        "REDIS_KEY_PREFIX": f"{service_env['REDIS_KEY_PREFIX']}-{tag}",
        "QDRANT_PATH": str(directory / "qdrant"),
    }
    settings = settings_with(env)
    await create_topics(settings.kafka.bootstrap, settings.kafka.topic_prefix)
    pool = await asyncpg.create_pool(url, min_size=1, max_size=4, init=_init_connection)
    try:
        yield Isolated(env, pool, settings)
    finally:
        await pool.close()
        await drop_database(base, name)


@pytest.fixture
async def isolated(
    service_env: dict[str, str], database_url: str, tmp_path: Path
) -> AsyncIterator[Isolated]:
    """For tests whose counts must not see other tests' titles, topics or keys."""
    async with isolated_env(service_env, tmp_path) as env:
        yield env


def _capture(level: str) -> Iterator[list[str]]:
    seen: list[str] = []
    sink = logger.add(
        lambda m: seen.append(m.record["message"]), level=level, filter=_not_the_tests_client
    )
    yield seen
    logger.remove(sink)


def _not_the_tests_client(record: Any) -> bool:
    # The test's own httpx client logs every URL it asks for (a stream ticket's included) once
    # any earlier test has routed the standard library's logging into loguru; those lines are
    # the test's, not the product's.
    return (record["extra"].get("logger") or record["name"]) != "httpx"


@pytest.fixture
def warnings_seen() -> Iterator[list[str]]:
    """Messages of WARNING and above logged during the test (what fallbacks say once)."""
    yield from _capture("WARNING")


@pytest.fixture
def log_messages() -> Iterator[list[str]]:
    """Messages of INFO and above logged during the test."""
    yield from _capture("INFO")
