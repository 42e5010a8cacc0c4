"""A sync worker SIGKILLed mid-stream: its successor applies every operation once and delivers
every command to its device once (Redis streams are what devices receive)."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import uuid
from collections import Counter
from datetime import UTC, datetime

import orjson
import pytest
import redis.asyncio as aioredis

from agents.sync.clock import to_physical_us
from agreements.sync_realtime import log_key
from core.publisher import Publisher
from schemas.sync import (
    HLC,
    DeviceHeartbeat,
    DeviceInfo,
    DeviceRegistered,
    RemoteCommandIssued,
    WatchlistUpdate,
)
from tests.conftest import Isolated
from tests.helpers import catalog_titles, wait_for
from topics.registry import SYNC_COMMANDS, SYNC_DEVICE_HEARTBEATS, SYNC_DEVICES, SYNC_WATCHLIST

pytestmark = pytest.mark.slow

USERS = [f"kill-{uuid.uuid4().hex[:6]}-{n}" for n in range(4)]
ADDS_PER_USER = 250
COMMANDS_PER_USER = 100


def now_hlc() -> HLC:
    return HLC(physical_us=to_physical_us(datetime.now(UTC)))


async def keep_alive(publisher: Publisher) -> None:
    while True:
        for user in USERS:
            beat = DeviceHeartbeat(user_id=user, device_id="tv-1", timestamp=now_hlc())
            await publisher.publish(SYNC_DEVICE_HEARTBEATS, beat, key=user)
        await asyncio.sleep(5)


async def test_a_killed_sync_worker_loses_nothing_and_repeats_nothing(
    spawn,
    isolated: Isolated,  # type: ignore[no-untyped-def]
) -> None:
    pool, settings = isolated.pool, isolated.settings
    publisher = Publisher(settings.kafka, source="test")
    await publisher.start()
    tv = DeviceInfo(
        device_id="tv-1",
        device_type="tv",
        platform="webos",
        capabilities={"remote_controllable": True},
        app_version="1.0",
        device_name="TV",
    )
    for user in USERS:
        await publisher.publish(
            SYNC_DEVICES, DeviceRegistered(user_id=user, device=tv, timestamp=now_hlc()), key=user
        )
    alive = asyncio.create_task(keep_alive(publisher))
    # In a thread: a blocked event loop would starve keep_alive, and an offline TV gets no
    # commands.
    first = await asyncio.to_thread(spawn, "worker", "sync", extra_env=isolated.env)

    async def devices_known() -> bool:
        return await pool.fetchval("SELECT count(*) FROM sync_devices") == len(USERS)

    await wait_for(devices_known, timeout=30)

    titles: dict[str, list[uuid.UUID]] = {u: [] for u in USERS}
    # Titles of the catalog: the sync agent dead-letters an add of any other.
    catalog = {u: await catalog_titles(settings, ADDS_PER_USER) for u in USERS}
    commands: dict[str, list[uuid.UUID]] = {u: [] for u in USERS}
    batch = []
    for n in range(max(ADDS_PER_USER, COMMANDS_PER_USER)):
        for user in USERS:
            if n < ADDS_PER_USER:
                title = catalog[user][n]
                titles[user].append(title)
                add = WatchlistUpdate(
                    user_id=user,
                    operation="add",
                    content_id=title,
                    unique_tag=uuid.uuid4(),
                    timestamp=now_hlc(),
                    device_id="phone-1",
                )
                batch.append((SYNC_WATCHLIST, publisher.build_envelope(add, user)))
            if n < COMMANDS_PER_USER:
                command = RemoteCommandIssued(
                    command_id=uuid.uuid4(),
                    user_id=user,
                    source_device_id="phone-1",
                    target_device_id="tv-1",
                    command={"type": "seek", "position_seconds": n},
                    issued_at=datetime.now(UTC),
                    # Long enough to outlive the takeover: redelivered, not expired.
                    ttl_seconds=300,
                )
                commands[user].append(command.command_id)
                batch.append((SYNC_COMMANDS, publisher.build_envelope(command, user)))
    total_commands = len(USERS) * COMMANDS_PER_USER
    total_titles = len(USERS) * ADDS_PER_USER
    await publisher.send_envelopes(batch)

    async def some_progress() -> bool:
        done = await pool.fetchval("SELECT count(*) FROM sync_commands")
        added = await pool.fetchval("SELECT count(*) FROM sync_watchlist")
        return 0 < done + added < total_commands + total_titles

    await wait_for(some_progress, timeout=60, interval=0.005)
    first.popen.send_signal(signal.SIGKILL)
    first.popen.wait(10)

    await asyncio.to_thread(spawn, "worker", "sync", extra_env=isolated.env)

    async def all_applied() -> bool:
        done = await pool.fetchval("SELECT count(*) FROM sync_commands")
        added = await pool.fetchval("SELECT count(*) FROM sync_watchlist WHERE visible")
        return done == total_commands and added == total_titles

    await wait_for(all_applied, timeout=120, interval=0.5)

    async def delivered() -> dict[str, list[dict[str, object]]] | None:
        out = {}
        for user in USERS:
            entries = await isolated_redis_range(settings.redis.require_url(), isolated, user)
            out[user] = entries
        sent = sum(1 for es in out.values() for e in es if e["kind"] == "command")
        # Commands reach the TV one hop sooner than watchlist messages (the router sends them
        # itself; an add goes through sync.realtime): wait for both.
        adds = sum(1 for es in out.values() for e in es if e["kind"] == "watchlist")
        pending = await pool.fetchval("SELECT count(*) FROM outbox")
        done = sent >= total_commands and adds >= total_titles and pending == 0
        return out if done else None

    streams = await wait_for(delivered, timeout=90, interval=1)
    alive.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await alive
    await publisher.stop()

    for user in USERS:
        kinds = Counter(str(e["kind"]) for e in streams[user])
        commands_heard = Counter(
            str(e["command_id"]) for e in streams[user] if e["kind"] == "command"
        )
        adds_heard = Counter(
            str(e["content_id"]) for e in streams[user] if e["kind"] == "watchlist"
        )
        # Every command delivered to the TV exactly once, every add announced exactly once.
        assert commands_heard == Counter(str(c) for c in commands[user]), user
        assert adds_heard == Counter(str(t) for t in titles[user]), user
        assert kinds["command_result"] == COMMANDS_PER_USER


async def isolated_redis_range(url: str, isolated: Isolated, user: str) -> list[dict[str, object]]:
    client = aioredis.from_url(url)
    try:
        entries = await client.xrange(log_key(isolated.settings.redis.key_prefix, user))
    finally:
        await client.aclose()
    return [orjson.loads(fields[b"m"]) for _, fields in entries]
