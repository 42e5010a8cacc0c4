"""Each embedded service really starts, works, and is fully gone after stop()."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest
import redis.asyncio as aioredis
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import KafkaConnectionError

from core import embedded
from core.embedded import (
    EmbeddedServiceError,
    PortInUseError,
    ServiceProcess,
    endpoint_of,
    free_port,
    start_broker,
    start_object_store,
    start_postgres,
    start_redis,
    tansu_binary,
)

REPO = Path(__file__).resolve().parents[2]


def port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def group_alive(pgid: int) -> bool:
    """Whether any process of the group still runs (zombies awaiting a reaper do not)."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        state, pgrp = fields[0], int(fields[2])
        if pgrp == pgid and state not in ("Z", "X"):
            return True
    return False


def assert_gone(service: ServiceProcess) -> None:
    assert service.process is not None
    assert service.process.poll() is not None, f"{service.name} still running"
    # The whole session: PostgreSQL forks backends and auxiliary processes.
    assert not group_alive(service.process.pid), f"{service.name} left children behind"
    assert service.port is not None
    assert not port_open(service.port), f"{service.name} port {service.port} still open"


@pytest.fixture
def stop_later() -> Iterator[list[ServiceProcess]]:
    """Services to stop even when a test fails half-way."""
    started: list[ServiceProcess] = []
    yield started
    for service in reversed(started):
        service.stop()


async def test_broker_round_trip_then_stop(
    tmp_path: Path, stop_later: list[ServiceProcess]
) -> None:
    log_file = tmp_path / "tansu.log"
    broker = start_broker(log_file=log_file)
    stop_later.append(broker)
    assert broker.url == f"127.0.0.1:{broker.port}"
    assert broker.is_running()

    topic = f"embedded-{uuid.uuid4().hex[:8]}"
    producer = AIOKafkaProducer(bootstrap_servers=broker.url)
    await producer.start()
    try:
        meta = await producer.send_and_wait(topic, b"hello", key=b"k")
    finally:
        await producer.stop()

    # assign() rather than subscribe(): no group join, which is slow on Tansu.
    consumer = AIOKafkaConsumer(
        bootstrap_servers=broker.url, enable_auto_commit=False, auto_offset_reset="earliest"
    )
    await consumer.start()
    try:
        tp = TopicPartition(topic, meta.partition)
        consumer.assign([tp])
        consumer.seek(tp, meta.offset)
        record = await asyncio.wait_for(consumer.getone(), timeout=10)
    finally:
        await consumer.stop()
    assert (record.key, record.value) == (b"k", b"hello")

    broker.stop()
    assert_gone(broker)
    assert log_file.exists()  # a caller-chosen log is kept
    broker.stop()  # idempotent


async def _send_and_read_back(bootstrap: str, topic: str, value: bytes) -> bytes | None:
    """Send `value`, then read it back from its offset; None if it is not there."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=False)
    await producer.start()
    try:
        meta = await producer.send_and_wait(topic, value, key=b"k")
    finally:
        await producer.stop()
    return await _read_at(bootstrap, TopicPartition(topic, meta.partition), meta.offset)


async def _read_at(bootstrap: str, tp: TopicPartition, offset: int) -> bytes | None:
    # Tansu just restarted on S3 may close connections for a few seconds (as `mgw up` allows
    # for): bootstrap again within 30 s, as a client would.
    for attempt in range(30):
        consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap, enable_auto_commit=False, auto_offset_reset="earliest"
        )
        try:
            await consumer.start()
            break
        except KafkaConnectionError:
            await consumer.stop()
            if attempt == 29:
                raise
            await asyncio.sleep(1.0)
    try:
        consumer.assign([tp])
        consumer.seek(tp, offset)
        records = await consumer.getmany(tp, timeout_ms=10_000)
    finally:
        await consumer.stop()
    found = records.get(tp, [])
    return found[0].value if found else None


async def test_durable_broker_keeps_records_across_kills_of_broker_and_store(
    tmp_path: Path, stop_later: list[ServiceProcess]
) -> None:
    store = start_object_store(tmp_path / "broker")
    stop_later.append(store)
    broker = start_broker(storage=endpoint_of(store))
    stop_later.append(broker)
    topic = f"durable-{uuid.uuid4().hex[:8]}"
    assert await _send_and_read_back(broker.url, topic, b"before") == b"before"
    producer = AIOKafkaProducer(bootstrap_servers=broker.url, enable_idempotence=False)
    await producer.start()
    try:
        meta = await producer.send_and_wait(topic, b"kept", key=b"k")
    finally:
        await producer.stop()
    tp = TopicPartition(topic, meta.partition)

    # Both killed: nothing flushes, nothing drains.
    for service in (broker, store):
        assert service.pid is not None
        os.kill(service.pid, 9)
        service.stop()
    store = start_object_store(tmp_path / "broker", port=store.port)
    stop_later.append(store)
    broker = start_broker(port=broker.port, storage=endpoint_of(store))
    stop_later.append(broker)
    assert await _read_at(broker.url, tp, meta.offset) == b"kept"

    store.stop()
    assert_gone(store)
    broker.stop()


def test_broker_stop_with_client_connected_is_fast(stop_later: list[ServiceProcess]) -> None:
    # On SIGTERM Tansu waits for clients to hang up (5 s here); stop() must not.
    broker = start_broker()
    stop_later.append(broker)
    client = socket.create_connection(("127.0.0.1", broker.port or 0))
    try:
        began = time.monotonic()
        broker.stop()
        assert time.monotonic() - began < 1
        assert broker.process is not None and broker.process.returncode == 0
    finally:
        client.close()
    assert_gone(broker)


def test_broker_temporary_log_is_removed_after_clean_stop(
    stop_later: list[ServiceProcess],
) -> None:
    broker = start_broker()
    stop_later.append(broker)
    assert broker.log_file is not None and broker.log_file.exists()
    broker.stop()
    assert_gone(broker)
    assert not broker.log_file.exists()


def test_broker_that_never_listens_names_binary_and_log(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = tmp_path / "fake-tansu"
    fake.write_text("#!/bin/sh\necho 'fake broker: not listening'\nexec sleep 60\n")
    fake.chmod(0o755)
    monkeypatch.setattr(embedded.broker, "tansu_binary", lambda: fake)
    monkeypatch.setattr(embedded.broker, "BROKER_START_TIMEOUT_S", 0.5)
    log_file = tmp_path / "fake.log"
    before = set(embedded.process._live)
    with pytest.raises(EmbeddedServiceError) as err:
        start_broker(log_file=log_file)
    message = str(err.value)
    assert str(fake) in message and str(log_file) in message
    assert "fake broker: not listening" in message
    assert set(embedded.process._live) == before  # the failed child was killed, not registered


async def test_postgres_select_create_table_then_stop(
    tmp_path: Path, stop_later: list[ServiceProcess]
) -> None:
    # tmp_path sits under /tmp/pytest-of-root (0700); nothing above the data dir may be
    # opened up for the server's account.
    modes_before = {d: d.stat().st_mode for d in tmp_path.parents}
    pg = start_postgres(tmp_path / "pg")
    stop_later.append(pg)
    assert {d: d.stat().st_mode for d in tmp_path.parents} == modes_before
    assert pg.url == f"postgresql://mgw@127.0.0.1:{pg.port}/mgw"

    conn = await asyncpg.connect(pg.url)
    try:
        assert await conn.fetchval("SELECT 1") == 1
        await conn.execute("CREATE TABLE probe (id int PRIMARY KEY, note text)")
        await conn.execute("INSERT INTO probe VALUES (1, 'x')")
        assert await conn.fetchval("SELECT note FROM probe WHERE id = 1") == "x"
    finally:
        await conn.close()

    # A second start on the same dir names the running server instead of clobbering it.
    with pytest.raises(EmbeddedServiceError, match=f"already running.*pid {pg.pid}"):
        start_postgres(tmp_path / "pg")
    assert pg.is_running()

    pg.stop()
    assert_gone(pg)


async def test_postgres_reuses_initialized_data_dir(
    tmp_path: Path, stop_later: list[ServiceProcess]
) -> None:
    data_dir = tmp_path / "pg"
    first = start_postgres(data_dir)
    stop_later.append(first)
    conn = await asyncpg.connect(first.url)
    try:
        await conn.execute("CREATE TABLE kept (v text)")
        await conn.execute("INSERT INTO kept VALUES ('survives restart')")
    finally:
        await conn.close()
    first.stop()
    assert_gone(first)

    second = start_postgres(data_dir)
    stop_later.append(second)
    conn = await asyncpg.connect(second.url)
    try:
        assert await conn.fetchval("SELECT v FROM kept") == "survives restart"
    finally:
        await conn.close()
    second.stop()
    assert_gone(second)


def test_postgres_stop_while_client_connected_is_fast(
    tmp_path: Path, stop_later: list[ServiceProcess]
) -> None:
    # SIGTERM ("smart" shutdown) would wait for this client for the whole timeout.
    pg = start_postgres(tmp_path / "pg")
    stop_later.append(pg)
    client = socket.create_connection(("127.0.0.1", pg.port or 0))
    try:
        began = time.monotonic()
        pg.stop(timeout=5)
        assert time.monotonic() - began < 3
    finally:
        client.close()
    assert_gone(pg)


def test_postgres_refuses_non_empty_foreign_dir(tmp_path: Path) -> None:
    data_dir = tmp_path / "not-pg"
    data_dir.mkdir()
    (data_dir / "notes.txt").write_text("mine")
    with pytest.raises(EmbeddedServiceError, match="not empty"):
        start_postgres(data_dir)
    # Nothing was handed to another account.
    assert (data_dir / "notes.txt").stat().st_uid == os.geteuid()


async def test_redis_set_get_then_stop(tmp_path: Path, stop_later: list[ServiceProcess]) -> None:
    data_dir = tmp_path / "redis"
    rd = start_redis(data_dir)
    stop_later.append(rd)
    assert rd.url == f"redis://127.0.0.1:{rd.port}/0"

    client = aioredis.Redis.from_url(rd.url)
    try:
        await client.set("embedded:probe", "v")
        assert await client.get("embedded:probe") == b"v"
        assert await client.config_get("save") == {"save": ""}
        assert await client.config_get("appendonly") == {"appendonly": "no"}
    finally:
        await client.aclose()

    rd.stop()
    assert_gone(rd)
    assert not list(data_dir.glob("*.rdb")) and not list(data_dir.glob("*.aof"))


def test_port_in_use_error_says_what_to_do() -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        with pytest.raises(PortInUseError, match=f"port {port} .*in use.*another port"):
            start_broker(port=port)


def test_redis_early_exit_reports_log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(embedded.redis_server, "redis_binary", lambda: Path("/bin/false"))
    with pytest.raises(EmbeddedServiceError, match="exited with code 1"):
        start_redis(tmp_path / "redis")


def test_free_port_and_binaries() -> None:
    port = free_port()
    assert 0 < port < 65536 and not port_open(port)
    binary = tansu_binary()
    assert binary.name == "tansu" and os.access(binary, os.X_OK)


def test_service_without_process_stops_as_no_op() -> None:
    external = ServiceProcess(
        name="postgres", url="postgresql://elsewhere/db", process=None, data_dir=None
    )
    external.stop()
    external.stop()


@pytest.mark.parametrize("service", ["start_redis", "start_postgres"])
def test_services_die_with_a_killed_parent(tmp_path: Path, service: str) -> None:
    # The parent is SIGKILLed, so neither stop() nor atexit runs: only the
    # parent-death signal stops the child (for postgres, armed after the uid change).
    script = textwrap.dedent(
        f"""
        import time
        from pathlib import Path
        from core import embedded
        svc = embedded.{service}(Path({str(tmp_path / "data")!r}))
        print(svc.pid, svc.port, flush=True)
        time.sleep(60)
        """
    )
    parent = subprocess.Popen(
        [sys.executable, "-c", script],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    try:
        assert parent.stdout is not None
        line = parent.stdout.readline()
        child_pid, child_port = map(int, line.split())
        assert port_open(child_port)
    finally:
        parent.kill()
        parent.wait()
    deadline = time.monotonic() + 5
    while group_alive(child_pid) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not group_alive(child_pid)
    assert not port_open(child_port)


def test_ctrl_c_in_terminal_does_not_reach_services(
    stop_later: list[ServiceProcess],
) -> None:
    broker = start_broker()
    stop_later.append(broker)
    assert broker.process is not None
    # A terminal's Ctrl-C goes to the foreground process group: ours, not the service's.
    assert os.getpgid(broker.process.pid) != os.getpgid(0)
    assert os.getsid(broker.process.pid) == broker.process.pid
