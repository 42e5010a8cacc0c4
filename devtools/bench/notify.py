"""`mgw bench notify`: one title arrives on a service for WATCHERS users who have it on their
watchlist, of USERS users seeded in PostgreSQL (docs/NOTIFICATIONS.md, "Scale").

It runs `mgw worker notifications` (one process, then `--workers` of them on the group's
partitions) and one `mgw worker sync` (its `realtime-deliver` sends the device messages) on a
broker, PostgreSQL database and Redis of its own (PostgreSQL and Redis from DATABASE_URL /
REDIS_URL when set), and times, from just before the `content.availability_changed` event is
published:

- the last notification stored (PostgreSQL) and the last inbox written (Redis read model);
- the first and last message heard by DEVICES connected devices: subscribers of the watchers'
  live pub/sub channels, the sink `realtime-deliver` writes to and the gateway's SSE streams and
  device sockets read (agreements/sync_realtime.py), so the gateway's own hop is not in it;
- notifications per second into the inbox, per notifications worker;
- the CPU seconds the notifications workers and the sync worker spent (on a shared machine
  the rate per CPU second is the figure other load changes least);
- the resident memory of each notifications worker, sampled every 0.2 s while it runs.

The users are seeded once the workers are up (a worker renders every user's preferences into
Redis as it starts, which is not the fan-out), afresh for each run, by one server-side
`INSERT ... SELECT generate_series` per table (faster than a COPY from the client: nothing
crosses the socket). Each user has one other title on their watchlist; every
(USERS / WATCHERS)-th user also has the title, and all of them want the alert (region US,
netflix, `arrived`). `--profile FILE` records the first notifications worker with py-spy
(collapsed stacks in FILE.<n>w.txt).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import psutil
import redis.asyncio as aioredis
from rich.table import Table

from cli.console import console_for, out
from core.embedded import free_port
from devtools.bench.services import bench_services, forget_keys, spawn_mgw, stop_process, wait_ready

console = console_for(stderr=True)

TARGET_RATE = 20_000.0
TARGET_FIRST_DEVICE_S = 1.0
LIMIT_S = 900.0
_CORES = os.cpu_count() or 1

_SEED_PREFERENCES = """
INSERT INTO notification_preferences
    (user_id, services, region, time_zone, alerts, offer_types, changed_at)
SELECT 'u' || lpad(g::text, 8, '0'), '{netflix,disney_plus}', 'US', 'UTC',
       '{arrived,leaving_soon}', '{subscription,free,rental,purchase}', now()
FROM generate_series(1, $1) g
"""
# Every user: one title of 1,000 others; every `every`-th user: the bench's title too.
_SEED_WATCHLISTS = """
INSERT INTO sync_watchlist (user_id, content_id, state, visible)
SELECT 'u' || lpad(g::text, 8, '0'),
       ('00000000-0000-4000-8000-' || lpad((g % 1000)::text, 12, '0'))::uuid, '{}'::jsonb, true
FROM generate_series(1, $1) g
UNION ALL
SELECT 'u' || lpad(g::text, 8, '0'), $2::uuid, '{}'::jsonb, true
FROM generate_series($3, $1, $3) g
"""


def user_of(n: int) -> str:
    return f"u{n:08d}"


@dataclass
class Run:
    workers: int
    watchers: int
    stored_s: float | None = None
    # The first page's notifications stamped by the agent (created_at): its reaction time.
    first_raised_s: float | None = None
    inbox_s: float | None = None
    first_device_s: float | None = None
    last_device_s: float | None = None
    devices_heard: int = 0
    devices: int = 0
    rss_mb: dict[int, list[float]] = field(default_factory=dict)
    # CPU seconds (user + system) the notifications workers, and the sync worker, spent.
    cpu_s: float = 0.0
    # ... of which until the last notification was stored (raising, and what was delivered
    # meanwhile).
    cpu_stored_s: float | None = None
    sync_cpu_s: float = 0.0
    # The same interval's CPU seconds of the services (PostgreSQL: the server's processes when
    # the bench started it, else the bench database's backends; Redis; the broker), of the
    # bench itself (its polls and the devices' listener) and of the whole machine (every
    # process, other sessions' too: /proc/stat), and the interval's length.
    service_cpu_s: dict[str, float] = field(default_factory=dict)
    # ... of which PostgreSQL's client backends (the rest: autovacuum, WAL, checkpoints).
    backends_cpu_s: float | None = None
    bench_cpu_s: float = 0.0
    machine_cpu_s: float = 0.0
    interval_s: float = 0.0

    @property
    def fanout_cpu_s(self) -> float:
        """What the fan-out cost the machine: the workers, PostgreSQL, Redis, the broker."""
        return self.cpu_s + self.sync_cpu_s + sum(self.service_cpu_s.values())

    @property
    def cpu_per_100k(self) -> float | None:
        return self.fanout_cpu_s / self.watchers * 100_000 if self.watchers else None

    def rate_bound(self, cores: int) -> float | None:
        """Notifications a second if the fan-out had `cores` cores to itself, fully used:
        notified / (its CPU / cores)."""
        return self.watchers * cores / self.fanout_cpu_s if self.fanout_cpu_s else None

    @property
    def rate_per_worker(self) -> float | None:
        if not self.inbox_s:
            return None
        return self.watchers / self.inbox_s / self.workers

    @property
    def per_cpu_s(self) -> float | None:
        """Notifications per CPU second of the notifications workers: what the machine's
        other load does not change (much)."""
        return self.watchers / self.cpu_s if self.cpu_s else None


async def _seed(url: str, users: int, watchers: int, title: uuid.UUID) -> float:
    began = time.perf_counter()
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(_SEED_PREFERENCES, users)
        await conn.execute(_SEED_WATCHLISTS, users, title, max(1, users // watchers))
        # As a table in service is: vacuumed (its visibility map set) and checkpointed, so
        # neither autovacuum of the million rows just written nor the checkpoint their WAL
        # calls for runs during the fan-out, at a moment that differs run to run (it made the
        # same code's wall time vary by two).
        await conn.execute("VACUUM (ANALYZE) sync_watchlist, notification_preferences")
        await conn.execute("CHECKPOINT")
    finally:
        await conn.close()
    return time.perf_counter() - began


async def _publish_arrival(env: dict[str, str], title: uuid.UUID) -> float:
    """Publish the arrival as the catalog's agents do (with the wake-up call to idle consumers,
    core/broker_wakeup.py: without it the worker would fetch it only on its idle interval,
    seconds later); the instant just before it (perf_counter)."""
    from core.broker_wakeup import BrokerWakeup, wakeup_channel
    from core.config import load_settings
    from core.publisher import Publisher
    from schemas.content import AvailabilityChanged, AvailabilityRow, AvailabilityType
    from topics.registry import CONTENT_AVAILABILITY_CHANGED

    os.environ.update(env)
    settings = load_settings()
    redis = aioredis.from_url(env["REDIS_URL"])
    wakeup = BrokerWakeup(redis, wakeup_channel(settings))
    publisher = Publisher(settings.kafka, source="bench-notify", wakeup=wakeup)
    await publisher.start()
    try:
        row = AvailabilityRow(
            platform="netflix", region="US", availability_type=AvailabilityType.subscription
        )
        event = AvailabilityChanged(canonical_id=title, platform="netflix", appeared=[row])
        sent = time.perf_counter()
        await publisher.publish(CONTENT_AVAILABILITY_CHANGED, event, str(title))
        # The wake-up call is sent by a task of its own: let it go before closing.
        await asyncio.sleep(0.2)
        return sent
    finally:
        await publisher.stop()
        await redis.aclose()


async def _watch(
    run: Run,
    env: dict[str, str],
    users: int,
    pids: list[int],
    sync_pid: int,
    title: uuid.UUID,
    devices: int,
    service_pids: dict[str, int],
) -> None:
    from agreements.sync_realtime import live_channel

    prefix = env["REDIS_KEY_PREFIX"]
    every = max(1, users // run.watchers)
    watcher_ids = [user_of(g) for g in range(every, users + 1, every)][: run.watchers]
    step = max(1, len(watcher_ids) // devices)
    device_users = watcher_ids[::step][:devices]
    run.devices = len(device_users)
    redis = aioredis.from_url(env["REDIS_URL"])
    listener = aioredis.from_url(env["REDIS_URL"])
    pubsub = listener.pubsub()
    db = await asyncpg.connect(env["DATABASE_URL"])
    procs = [psutil.Process(p) for p in pids]
    sync_proc = psutil.Process(sync_pid)

    def cpu() -> tuple[float, float]:
        def one(p: psutil.Process) -> float:
            t = p.cpu_times()
            return t.user + t.system

        return sum(one(p) for p in procs), one(sync_proc)

    services = await _service_processes(db, service_pids)
    myself = psutil.Process()

    def others() -> dict[str, float]:
        out = {name: sum(_tree_cpu(p) for p in ps) for name, ps in services.items()}
        if "postgres" in services:
            out["backends"] = sum(_backends_cpu(p) for p in services["postgres"])
        return out

    heard: dict[str, float] = {}
    sent = 0.0

    async def listen() -> None:
        async for message in pubsub.listen():
            if message["type"] == "message":
                heard.setdefault(message["channel"].decode(), time.perf_counter())

    async def sample() -> None:
        while True:
            for p in procs:
                run.rss_mb.setdefault(p.pid, []).append(p.memory_info().rss / 2**20)
            await asyncio.sleep(0.2)

    try:
        for i in range(0, len(device_users), 200):
            await pubsub.subscribe(*(live_channel(prefix, u) for u in device_users[i : i + 200]))
        listening = asyncio.create_task(listen())
        sampling = asyncio.create_task(sample())
        await asyncio.sleep(1.0)
        cpu_before, services_before = cpu(), others()
        bench_before, machine_before = _own_cpu(myself), _machine_busy()
        began = time.perf_counter()
        perf_at_wall, wall_sent = time.perf_counter(), time.time()
        sent = await _publish_arrival(env, title)
        remaining = [f"{prefix}:notify:inbox:{u}" for u in watcher_ids]
        deadline = sent + LIMIT_S
        while time.perf_counter() < deadline:
            now = time.perf_counter()
            # The watchers are stored in user order: count them (a scan of the table) only once
            # the last one's row is there (its primary key), not every 0.1 s while the
            # PostgreSQL the fan-out uses is busy.
            if run.stored_s is None and await db.fetchval(
                "SELECT EXISTS (SELECT 1 FROM notifications WHERE user_id = $1"
                " AND content_id = $2)",
                watcher_ids[-1],
                title,
            ):
                count = await db.fetchval(
                    "SELECT count(*) FROM notifications WHERE content_id = $1", title
                )
                if count >= run.watchers:
                    run.stored_s = now - sent
                    run.cpu_stored_s = cpu()[0] - cpu_before[0]
            if remaining:
                remaining = await _still_missing(redis, remaining)
                if not remaining:
                    run.inbox_s = now - sent
            if run.stored_s is not None and not remaining and len(heard) >= len(device_users):
                break
            await asyncio.sleep(0.1)
        first = await db.fetchval(
            "SELECT extract(epoch FROM min(created_at)) FROM notifications WHERE content_id = $1",
            title,
        )
        if first is not None:
            run.first_raised_s = float(first) - (wall_sent + (sent - perf_at_wall))
        cpu_after, services_after = cpu(), others()
        run.machine_cpu_s = _machine_busy() - machine_before
        run.bench_cpu_s = _own_cpu(myself) - bench_before
        run.interval_s = time.perf_counter() - began
        run.cpu_s = cpu_after[0] - cpu_before[0]
        run.sync_cpu_s = cpu_after[1] - cpu_before[1]
        run.service_cpu_s = {
            name: services_after[name] - services_before[name] for name in services_before
        }
        if "backends" in run.service_cpu_s:
            run.backends_cpu_s = run.service_cpu_s.pop("backends")
        listening.cancel()
        sampling.cancel()
    finally:
        await pubsub.aclose()
        await listener.aclose()
        await redis.aclose()
        await db.close()
    if heard:
        run.devices_heard = len(heard)
        run.first_device_s = min(heard.values()) - sent
        run.last_device_s = max(heard.values()) - sent


def _cpu_of(procs: list[psutil.Process], counted: Callable[[psutil.Process], bool]) -> float:
    """CPU seconds (user + system) of those of `procs` that are `counted` (one that ended
    meanwhile counts 0)."""
    total = 0.0
    for one in procs:
        try:
            if counted(one):
                t = one.cpu_times()
                total += t.user + t.system
        except psutil.Error:
            pass
    return total


def _tree_cpu(proc: psutil.Process) -> float:
    """CPU seconds (user + system) of a process, of its children living, and of those it
    reaped (a PostgreSQL backend that ended, an autovacuum worker)."""
    try:
        t = proc.cpu_times()
        reaped = t.children_user + t.children_system
        children = proc.children(recursive=True)
    except psutil.Error:
        return 0.0
    return reaped + _cpu_of([proc, *children], lambda _: True)


def _is_backend(proc: psutil.Process) -> bool:
    title = " ".join(proc.cmdline())
    return title.startswith("postgres: ") and "(" in title


def _backends_cpu(proc: psutil.Process) -> float:
    """CPU seconds of a PostgreSQL server's client backends ("postgres: user db host(port)
    ..."), or of the process itself when it is one (not the server's: DATABASE_URL)."""
    try:
        procs = [proc, *proc.children(recursive=True)]
    except psutil.Error:
        return 0.0
    return _cpu_of(procs, _is_backend)


def _own_cpu(proc: psutil.Process) -> float:
    t = proc.cpu_times()
    return t.user + t.system


def _machine_busy() -> float:
    """CPU seconds every core spent running something (all processes, the kernel) since boot:
    not idle, not waiting for I/O, not taken by the hypervisor (steal); guest time is already
    in user time (the fields not on Linux count as 0)."""
    t = psutil.cpu_times()
    left_out = ("idle", "iowait", "steal", "guest", "guest_nice")
    return sum(t) - sum(getattr(t, name, 0.0) for name in left_out)


async def _service_processes(
    db: asyncpg.Connection, pids: dict[str, int]
) -> dict[str, list[psutil.Process]]:
    """The services' processes whose CPU the bench reads: those it started (the whole
    PostgreSQL server: its postmaster's tree), else, for PostgreSQL of DATABASE_URL on this
    machine, the backends connected to the bench's database (the workers' pools, open by now).
    A Redis of REDIS_URL is not counted (it may serve others)."""
    out: dict[str, list[psutil.Process]] = {}
    for name in ("postgres", "redis", "broker"):
        if name in pids and psutil.pid_exists(pids[name]):
            out[name] = [psutil.Process(pids[name])]
    if "postgres" not in out:
        rows = await db.fetch("SELECT pid FROM pg_stat_activity WHERE datname = current_database()")
        backends = [r["pid"] for r in rows if psutil.pid_exists(r["pid"])]
        if backends:
            out["postgres"] = [psutil.Process(p) for p in backends]
    return out


# Inboxes looked for per round trip while polling.
_POLL_CHUNK = 1000


async def _still_missing(redis: aioredis.Redis, keys: list[str]) -> list[str]:
    """The keys Redis does not hold yet, looked for in user order and only up to the first
    chunk with one missing: a title's watchers are raised in user order, so the inboxes
    written are a prefix (nearly), and the poll costs what the fan-out did since the last one.
    Asking for every missing key each 0.1 s (100,000 EXISTS in Python) took most of a core on
    the machine the fan-out shares, and stretched what it measured."""
    for start in range(0, len(keys), _POLL_CHUNK):
        chunk = keys[start : start + _POLL_CHUNK]
        async with redis.pipeline(transaction=False) as pipe:
            for key in chunk:
                pipe.exists(key)
            found = await pipe.execute()
        if not all(found):
            return [k for k, f in zip(chunk, found, strict=True) if not f] + keys[
                start + _POLL_CHUNK :
            ]
    return []


def _one_run(
    services: object,
    users: int,
    run: Run,
    title: uuid.UUID,
    devices: int,
    workdir: Path,
    profile: Path | None,
) -> float:
    """One run on a database emptied of users; how long seeding them took."""
    prefix = f"bn{uuid.uuid4().hex[:6]}"
    env = {
        "KAFKA_BROKERS": services.broker_url,  # type: ignore[attr-defined]
        "KAFKA_TOPIC_PREFIX": prefix,
        "DATABASE_URL": services.database_url,  # type: ignore[attr-defined]
        "REDIS_URL": services.redis_url,  # type: ignore[attr-defined]
        "REDIS_KEY_PREFIX": prefix,
        "LOG_LEVEL": "warning",
        "LOG_FORMAT": "json",
        "MGW_ENV_FILE": "/nonexistent/.env",
    }
    asyncio.run(_create_topics(env))
    with ExitStack() as stack:
        # A Redis of REDIS_URL is shared: leave nothing of the run's million users in it.
        stack.callback(lambda: asyncio.run(forget_keys(env["REDIS_URL"], prefix)))
        procs = []
        for name, groups in [("sync", ["sync"])] + [
            (f"notifications-{i}", ["notifications"]) for i in range(run.workers)
        ]:
            port, log = free_port(), workdir / f"{prefix}-{name}.log"
            proc = spawn_mgw(["worker", *groups], {**env, "METRICS_PORT": str(port)}, log)
            stack.callback(stop_process, proc)
            procs.append((name, proc, port, log))
        for _name, proc, port, log in procs:
            wait_ready(f"http://127.0.0.1:{port}/health/ready", proc, log, 120)
        # Two workers: the group settles on its partitions after both joined.
        time.sleep(3.0 if run.workers > 1 else 1.0)
        # A worker renders every user's preferences into Redis as it starts (the timer
        # notifications-preferences-render; a million take minutes of CPU), which is not the
        # fan-out: the users are seeded once the workers are up, so there is none to render.
        with console.status(f"seeding {users:,} users, {run.watchers:,} watching the title..."):
            seeded = asyncio.run(_seed(env["DATABASE_URL"], users, run.watchers, title))
        pids = [p.pid for name, p, _, _ in procs if name.startswith("notifications")]
        if profile is not None:
            spy = subprocess.Popen(
                [
                    _py_spy(),
                    "record",
                    "--format",
                    "raw",
                    "--rate",
                    "50",
                    "--pid",
                    str(pids[0]),
                    "-o",
                    str(profile.with_suffix(f".{run.workers}w.txt")),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            stack.callback(_stop_spy, spy)
        sync_pid = next(p.pid for name, p, _, _ in procs if name == "sync")
        with console.status(f"{run.workers} worker(s): {run.watchers} notifications..."):
            asyncio.run(
                _watch(run, env, users, pids, sync_pid, title, devices, services.pids)  # type: ignore[attr-defined]
            )
    return seeded


def _py_spy() -> str:
    """py-spy beside the interpreter, else on PATH (it needs no place in the project's venv:
    `pip install --user py-spy` works as well)."""
    beside = Path(sys.executable).with_name("py-spy")
    return str(beside) if beside.exists() else shutil.which("py-spy") or str(beside)


def _stop_spy(spy: subprocess.Popen[bytes]) -> None:
    # py-spy writes its file on SIGINT.
    spy.send_signal(signal.SIGINT)
    spy.wait(30)


async def _create_topics(env: dict[str, str]) -> None:
    from topics.admin import create_topics

    await create_topics(env["KAFKA_BROKERS"], env["KAFKA_TOPIC_PREFIX"])


async def _migrate(url: str) -> None:
    from agents.framework.migrate import migrate_url

    await migrate_url(url)


async def _clear(url: str) -> None:
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(
            "TRUNCATE notifications, notification_pages_unsent, notification_preferences,"
            " sync_watchlist; DELETE FROM outbox"
        )
    finally:
        await conn.close()


def _fmt(value: float | None, unit: str = "s") -> str:
    if value is None:
        return "-"
    return f"{value:,.2f} {unit}" if unit == "s" else f"{value:,.0f}{unit}"


def _table(runs: list[Run], users: int, seeded_s: float) -> Table:
    table = Table(
        title=f"mgw bench notify: {runs[0].watchers:,} watchers of {users:,} users "
        f"(seeded in {seeded_s:.1f} s)"
    )
    for col in ("", *(f"{r.workers} worker(s)" for r in runs)):
        table.add_column(col, justify="right" if col else "left")
    rows: list[tuple[str, list[str]]] = [
        ("first notification raised", [_fmt(r.first_raised_s) for r in runs]),
        ("last notification stored", [_fmt(r.stored_s) for r in runs]),
        ("last inbox written", [_fmt(r.inbox_s) for r in runs]),
        ("first device delivery", [_fmt(r.first_device_s) for r in runs]),
        ("last device delivery", [_fmt(r.last_device_s) for r in runs]),
        ("devices heard", [f"{r.devices_heard}/{r.devices}" for r in runs]),
        ("into the inbox /s /worker", [_fmt(r.rate_per_worker, "") for r in runs]),
        ("notifications workers' CPU", [_fmt(r.cpu_s) for r in runs]),
        ("... until the last stored", [_fmt(r.cpu_stored_s) for r in runs]),
        ("notifications per CPU second", [_fmt(r.per_cpu_s, "") for r in runs]),
        ("sync worker's CPU", [_fmt(r.sync_cpu_s) for r in runs]),
        ("postgres's CPU", [_fmt(r.service_cpu_s.get("postgres")) for r in runs]),
        ("... its client backends", [_fmt(r.backends_cpu_s) for r in runs]),
        ("redis's CPU", [_fmt(r.service_cpu_s.get("redis")) for r in runs]),
        ("broker's CPU", [_fmt(r.service_cpu_s.get("broker")) for r in runs]),
        (
            "machine CPU s per 100,000",
            [_fmt(r.cpu_per_100k) for r in runs],
        ),
        (
            f"rate bound on {_CORES} cores",
            [_fmt(r.rate_bound(_CORES), "/s") for r in runs],
        ),
        ("bench's own CPU (polls, devices)", [_fmt(r.bench_cpu_s) for r in runs]),
        (
            "whole machine busy (interval)",
            [f"{r.machine_cpu_s:,.2f} s ({r.interval_s:,.2f} s)" for r in runs],
        ),
        (
            "worker RSS MB (start, max, end)",
            [
                "; ".join(f"{s[0]:.0f}, {max(s):.0f}, {s[-1]:.0f}" for s in r.rss_mb.values() if s)
                for r in runs
            ],
        ),
    ]
    for name, values in rows:
        table.add_row(name, *values)
    return table


def bench_notify(
    users: int, watchers: int, workers: int, devices: int, profile: Path | None = None
) -> int:
    watchers = min(watchers, users)
    title = uuid.uuid4()
    runs = [Run(w, watchers) for w in sorted({1, workers})]
    seeded = 0.0
    with bench_services("notify", console) as services:
        asyncio.run(_migrate(services.database_url))
        for run in runs:
            asyncio.run(_clear(services.database_url))
            took = _one_run(services, users, run, title, devices, services.workdir, profile)
            seeded = seeded or took
    out.print(_table(runs, users, seeded))
    if len(runs) > 1 and runs[0].inbox_s and runs[-1].inbox_s:
        out.print(
            f"{runs[-1].workers} workers / 1: {runs[0].inbox_s / runs[-1].inbox_s:.2f}x "
            "the rate into the inbox"
        )
    best = runs[0]
    ok = (
        best.rate_per_worker is not None
        and best.rate_per_worker >= TARGET_RATE
        and best.first_device_s is not None
        and best.first_device_s < TARGET_FIRST_DEVICE_S
    )
    out.print(
        f"targets: >= {TARGET_RATE:,.0f}/s per worker into the inbox, first device < "
        f"{TARGET_FIRST_DEVICE_S:g} s: {'met' if ok else 'NOT met'}"
    )
    return 0 if all(r.inbox_s is not None for r in runs) else 1
