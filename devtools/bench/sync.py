"""`mgw bench sync`: how long a phone's Play takes to reach the TV, and a watchlist add to reach
a second device, on both realtime paths, against the transport's own floor.

Each path runs a sync worker and a gateway as processes on a broker, PostgreSQL and Redis of
the benchmark's own (PostgreSQL and Redis from DATABASE_URL / REDIS_URL when set). A phone and
a TV register; the TV (and a tablet) listen: over Server-Sent Events from the gateway (the
built-in fan-out), over device WebSockets (the socket path: the phone sends its command as a
frame on its own socket too, docs/DEVICE_PROTOCOL.md), or through the real `pubnub` SDK
against a loopback PubNub server (the PubNub path: the figures show this system's share, not
PubNub's network). Then one request
at a time, each latency runs from just before the HTTP request to the moment the listening
device has the message.

The baselines, measured in the same run, are the floors of the same transport without this
system's code: an acknowledged produce and a consumer, then a Redis publish to a subscriber
(the one Kafka hop a command takes: the router sends it to the device itself), and the same
with a second acknowledged produce and consumer before the publish (the two hops of a
watchlist change, which goes through `sync.realtime`). Each scenario's "p50 / floor" is
against the floor of its own hops.
"""

from __future__ import annotations

import asyncio
import secrets
import statistics
import subprocess
import time
import uuid
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack, ExitStack
from dataclasses import dataclass
from pathlib import Path

import httpx
import redis.asyncio as aioredis
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from rich.table import Table

from cli.console import console_for, out
from core.embedded import free_port
from devtools.bench.services import BenchServices, bench_services, spawn_mgw, stop_process
from devtools.bench.sync_clients import Heard, Inbox, PubNubDevice, SocketDevice, SseDevice
from devtools.bench.sync_pubnub import LoopbackPubNub, PamKeys
from devtools.placeholder_titles import forget_titles, place_titles

console = console_for(stderr=True)

TARGET_P95_MS = 30.0
WARMUP = 20
SCOPES = ["devices:read", "devices:write", "devices:command", "watchlist:read", "watchlist:write"]


@dataclass(frozen=True)
class Figures:
    path: str
    scenario: str
    samples: list[float]  # milliseconds

    def pct(self, q: float) -> float:
        ordered = sorted(self.samples)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    @property
    def p50(self) -> float:
        return statistics.median(self.samples)


class BenchError(RuntimeError):
    pass


# --- processes -----------------------------------------------------------------------------------


def latency_env(services: BenchServices, prefix: str, secret: str) -> dict[str, str]:
    """A sync worker's and gateway's settings for a latency bench on `services`: topics and
    keys of `prefix`, quick rebalances, no rate limit."""
    return {
        "KAFKA_BROKERS": services.broker_url,
        "KAFKA_TOPIC_PREFIX": prefix,
        "KAFKA_SESSION_TIMEOUT_S": "6",
        "KAFKA_REBALANCE_TIMEOUT_S": "6",
        "DATABASE_URL": services.database_url,
        "REDIS_URL": services.redis_url,
        "REDIS_KEY_PREFIX": prefix,
        "AUTH_JWT_SECRET": secret,
        "RATE_LIMIT_ENABLED": "false",
        # A phone's socket sends a command per round trip, faster than a device's frame
        # budget allows (docs/DEVICE_PROTOCOL.md): this measures latency.
        "GATEWAY_SOCKET_FRAMES_PER_S": "10000",
        "GATEWAY_SOCKET_BURST": "10000",
        "LOG_LEVEL": "warning",
        "LOG_FORMAT": "json",
        "MGW_ENV_FILE": "/nonexistent/.env",
    }


async def start_sync_stack(
    stack: AsyncExitStack, env: dict[str, str], workdir: Path, label: str
) -> str:
    """A sync worker and a gateway as processes, stopped with `stack`, once both are ready;
    the gateway's base URL."""
    worker_port, gateway_port = free_port(), free_port()
    worker_log, gateway_log = workdir / f"worker-{label}.log", workdir / f"gateway-{label}.log"
    worker = spawn_mgw(["worker", "sync"], {**env, "METRICS_PORT": str(worker_port)}, worker_log)
    stack.callback(stop_process, worker)
    gateway = spawn_mgw(
        ["gateway"],
        {**env, "GATEWAY_PORT": str(gateway_port), "METRICS_PORT": "0"},
        gateway_log,
    )
    stack.callback(stop_process, gateway)
    base = f"http://127.0.0.1:{gateway_port}"
    await _wait_ok(f"{base}/health/live", gateway, gateway_log, 60)
    await _wait_ok(f"http://127.0.0.1:{worker_port}/health/ready", worker, worker_log, 90)
    return base


async def _wait_ok(url: str, proc: subprocess.Popen[bytes], log: Path, limit_s: float) -> None:
    deadline = time.monotonic() + limit_s
    async with httpx.AsyncClient(timeout=1) as http:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise BenchError(f"{log.name}: the process exited; see {log}")
            try:
                if (await http.get(url)).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.1)
    raise BenchError(f"{url} not ready after {limit_s} s; see {log}")


async def _prepare(env: dict[str, str]) -> str:
    """Topics and tables of this run; a token for the benchmark's user."""
    from agents.framework.migrate import migrate_url
    from core.config import settings_with
    from gateway.auth.tokens import issue_token
    from topics.admin import create_topics

    settings = settings_with({**env, "MGW_ENV_FILE": "/nonexistent/.env"})
    await create_topics(settings.kafka.bootstrap, settings.kafka.topic_prefix)
    await migrate_url(settings.postgres.require_url())
    return issue_token(settings.auth, subject="bench-user", scopes=SCOPES, ttl_s=3600)


# --- one delivery path ---------------------------------------------------------------------------


async def _catalog_titles(env: dict[str, str], count: int) -> list[str]:
    """Fresh ids of titles the catalog has (no catalog agent runs here): a document in the
    content read model, which the gateway checks (a watchlist add of a title the catalog does
    not have is refused 404, docs/SYNC.md), and a row the sync agent checks."""
    ids = [uuid.uuid4() for _ in range(count)]
    await place_titles(
        env["REDIS_URL"],
        env["REDIS_KEY_PREFIX"],
        ids,
        "Bench title",
        database_url=env["DATABASE_URL"],
    )
    return [str(title) for title in ids]


async def _forget_titles(env: dict[str, str], titles: list[str]) -> None:
    await forget_titles(
        env["REDIS_URL"],
        env["REDIS_KEY_PREFIX"],
        [uuid.UUID(title) for title in titles],
        database_url=env["DATABASE_URL"],
    )


class Phone:
    def __init__(
        self, http: httpx.AsyncClient, token: str, titles: list[str] | None = None
    ) -> None:
        self.http = http
        self.headers = {"Authorization": f"Bearer {token}"}
        self.titles = titles or []  # one per add: a title already listed would announce nothing

    async def put_device(self, device_id: str, kind: str) -> None:
        body = {
            "device_type": kind,
            "platform": "tizen" if kind == "tv" else "android",
            "capabilities": {"remote_controllable": True},
            "app_version": "1.0",
            "device_name": device_id,
        }
        resp = await self.http.put(
            f"/api/v1/users/bench-user/devices/{device_id}", json=body, headers=self.headers
        )
        if resp.status_code != 202:
            raise BenchError(f"registering {device_id}: {resp.status_code} {resp.text}")

    async def token(self, device_id: str) -> str:
        """The device's PubNub token (POST .../realtime/token)."""
        resp = await self.http.post(
            "/api/v1/users/bench-user/realtime/token",
            headers={**self.headers, "X-Device-ID": device_id},
        )
        if resp.status_code != 200:
            raise BenchError(f"realtime token for {device_id}: {resp.status_code} {resp.text}")
        token: str = resp.json()["token"]
        return token

    async def heartbeats(self, devices: list[str]) -> None:
        while True:
            await asyncio.sleep(20)
            for device_id in devices:
                await self.http.post(
                    f"/api/v1/users/bench-user/devices/{device_id}/heartbeat", headers=self.headers
                )

    async def wait_devices(self, count: int) -> None:
        for _ in range(200):
            resp = await self.http.get("/api/v1/users/bench-user/devices", headers=self.headers)
            if resp.status_code == 200 and len(resp.json()["devices"]) >= count:
                return
            await asyncio.sleep(0.1)
        raise BenchError("the devices never showed up in the read model")

    async def play(self) -> str:
        resp = await self.http.post(
            "/api/v1/users/bench-user/devices/tv-1/commands",
            json={"command": {"type": "play"}},
            headers={**self.headers, "X-Device-ID": "phone-1"},
        )
        if resp.status_code != 202:
            raise BenchError(f"command: {resp.status_code} {resp.text}")
        return str(resp.json()["command_id"])

    async def add(self) -> str:
        title = self.titles.pop()
        resp = await self.http.put(
            f"/api/v1/users/bench-user/watchlist/{title}",
            headers={**self.headers, "X-Device-ID": "phone-1"},
        )
        if resp.status_code != 202:
            raise BenchError(f"watchlist add: {resp.status_code} {resp.text}")
        return title


class SocketPhone:
    """The phone on its own WebSocket: a `command` frame, its id from the `accepted` answer."""

    def __init__(self, device: SocketDevice) -> None:
        self.device = device
        self.sent = 0

    async def play(self) -> str:
        self.sent += 1
        ref = f"play-{self.sent}"
        await self.device.command("tv-1", {"type": "play"}, ref=ref)
        try:
            answer = await self.device.answers.wait_for(lambda h: h.event_id == ref, wait_s=10)
        except TimeoutError:
            closed = self.device.close_code
            raise BenchError(
                f"no answer to command frame {ref}"
                + (
                    f": the socket closed with {closed} {self.device.close_reason}"
                    if closed
                    else ""
                )
            ) from None
        if answer.channel != "accepted":
            raise BenchError(f"command frame refused: {answer.body}")
        return str(answer.body["data"]["command_id"])


async def _timed(
    count: int, send: Callable[[], Awaitable[str]], inbox: Inbox, key: str
) -> list[float]:
    out = []
    for _ in range(count):
        started = time.perf_counter()
        ident = await send()

        def match(h: Heard, ident: str = ident) -> bool:
            return isinstance(h.body, dict) and h.body.get(key) == ident

        heard = await inbox.wait_for(match, wait_s=10)
        out.append((heard.at - started) * 1000)
    return out


async def _run_path(
    path: str, base_env: dict[str, str], token: str, count: int, workdir: Path
) -> list[Figures]:
    async with AsyncExitStack() as stack:
        env = dict(base_env)
        server: LoopbackPubNub | None = None
        if path == "pubnub":
            keys = PamKeys("pub-bench", "sub-bench", f"sec-bench-{uuid.uuid4().hex}")
            server = await stack.enter_async_context(LoopbackPubNub(keys))
            env |= server.client_env()
        base = await start_sync_stack(stack, env, workdir, path)

        http = await stack.enter_async_context(httpx.AsyncClient(base_url=base, timeout=10))
        titles = await _catalog_titles(env, WARMUP + count)
        stack.push_async_callback(_forget_titles, env, list(titles))
        phone = Phone(http, token, titles)
        for device_id, kind in (("phone-1", "phone"), ("tv-1", "tv"), ("tablet-1", "tablet")):
            await phone.put_device(device_id, kind)
        await phone.wait_devices(3)
        beats = asyncio.create_task(phone.heartbeats(["phone-1", "tv-1", "tablet-1"]))
        stack.callback(beats.cancel)

        send_play = phone.play
        if path == "socket":
            sockets = [
                await SocketDevice(base, "bench-user", token, device_id, channels=channels).start()
                for device_id, channels in (
                    ("tv-1", "devices"),
                    ("tablet-1", "sync"),
                    ("phone-1", "notifications"),
                )
            ]
            for device in sockets:
                stack.push_async_callback(device.close)
            tv_inbox, tablet_inbox = sockets[0].inbox, sockets[1].inbox
            send_play = SocketPhone(sockets[2]).play
        elif server is not None:
            # Each device subscribes with its own Access Manager token, as a real app would.
            tv = PubNubDevice(server.origin, "sub-bench", "tv-1", token=await phone.token("tv-1"))
            tablet = PubNubDevice(
                server.origin, "sub-bench", "tablet-1", token=await phone.token("tablet-1")
            )
            stack.push_async_callback(tv.close)
            stack.push_async_callback(tablet.close)
            tv.subscribe("user.bench-user.devices")
            tablet.subscribe("user.bench-user.sync")
            await asyncio.sleep(0.5)
            tv_inbox, tablet_inbox = tv.inbox, tablet.inbox
        else:
            sse_tv = await SseDevice(base, "bench-user", token, "tv-1", channels="devices").start()
            sse_tablet = await SseDevice(
                base, "bench-user", token, "tablet-1", channels="sync"
            ).start()
            stack.push_async_callback(sse_tv.close)
            stack.push_async_callback(sse_tablet.close)
            tv_inbox, tablet_inbox = sse_tv.inbox, sse_tablet.inbox

        with console.status(f"{path}: warming up..."):
            await _timed(WARMUP, send_play, tv_inbox, "command_id")
            await _timed(WARMUP, phone.add, tablet_inbox, "content_id")
        with console.status(f"{path}: {count} commands, phone -> TV..."):
            commands = await _timed(count, send_play, tv_inbox, "command_id")
        with console.status(f"{path}: {count} watchlist adds, phone -> tablet..."):
            adds = await _timed(count, phone.add, tablet_inbox, "content_id")
        return [
            Figures(path, "command: phone -> TV", commands),
            Figures(path, "watchlist add -> 2nd device", adds),
        ]


# --- the baseline --------------------------------------------------------------------------------


async def _baseline(bootstrap: str, redis_url: str, count: int, hops: int) -> Figures:
    """`hops` acknowledged Kafka hops and a Redis pub/sub hop, no gateway, no agent, no database."""
    tag = uuid.uuid4().hex[:6]
    topics = [f"floor-{hop}-{tag}" for hop in range(hops)]
    channel = f"floor-{tag}"
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", linger_ms=0, enable_idempotence=False
    )
    await producer.start()
    consumers = [
        AIOKafkaConsumer(
            topic,
            bootstrap_servers=bootstrap,
            group_id=f"{topic}-g",
            auto_offset_reset="earliest",
            session_timeout_ms=6000,
            rebalance_timeout_ms=6000,
        )
        for topic in topics
    ]
    redis = aioredis.from_url(redis_url)
    pubsub = redis.pubsub()
    try:
        for topic in topics:
            await producer.send_and_wait(topic, b"warm")
        for consumer in consumers:
            await consumer.start()
            await consumer.getone()
        await pubsub.subscribe(channel)
        samples = []
        for n in range(count + WARMUP):
            started = time.perf_counter()
            value = str(n).encode()
            for topic, consumer in zip(topics, consumers, strict=True):
                await producer.send_and_wait(topic, value, key=b"bench-user")
                value = (await consumer.getone()).value
            await redis.publish(channel, value)
            while True:
                message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=5)
                if message is not None:
                    break
            if n >= WARMUP:
                samples.append((time.perf_counter() - started) * 1000)
        noun = "hop" if hops == 1 else "hops"
        return Figures("baseline", f"{hops} Kafka {noun} + Redis pub/sub", samples)
    finally:
        await pubsub.aclose()
        await redis.aclose()
        for consumer in consumers:
            await consumer.stop()
        await producer.stop()


def floor_for(scenario: str, floors: list[Figures]) -> Figures:
    """A command takes one Kafka hop to the device, every other scenario two."""
    return floors[0] if scenario.startswith("command") else floors[-1]


# --- the command ---------------------------------------------------------------------------------


def bench_sync(
    count: int = 1000, paths: tuple[str, ...] = ("fanout", "pubnub"), durable: bool = False
) -> int:
    figures: list[Figures] = []
    cleanup = ExitStack()
    try:
        services = cleanup.enter_context(bench_services("sync", console, durable))
        workdir = services.workdir
        secret = secrets.token_urlsafe(48)
        for path in paths:
            prefix = f"bsync{uuid.uuid4().hex[:6]}"
            env = latency_env(services, prefix, secret)
            token = asyncio.run(_prepare(env))
            figures += asyncio.run(_run_path(path, env, token, count, workdir))
        with console.status("baselines: the same hops without the system..."):
            floors = [
                asyncio.run(_baseline(services.broker_url, services.redis_url, count, hops))
                for hops in (1, 2)
            ]
    except BenchError as exc:
        console.print(f"[red]{exc}[/red]")
        return 2
    finally:
        cleanup.close()
    out.print(results_table(figures, floors, count, durable))
    return 0 if all(f.pct(0.95) < TARGET_P95_MS for f in figures) else 1


def results_table(
    figures: list[Figures], floors: list[Figures], count: int, durable: bool = False
) -> Table:
    table = Table(
        title=f"Sync latency, request to the listening device ({count} each, one at a time; "
        f"broker {'durable' if durable else 'in memory'}; target p95 < {TARGET_P95_MS:g} ms)"
    )
    for column in ("path", "scenario", "p50 ms", "p95 ms", "p99 ms", "max ms", "p50 / floor"):
        table.add_column(column, justify="left" if column in ("path", "scenario") else "right")
    table.add_column("p95 target")
    for f in [*figures, *floors]:
        is_floor = any(f is floor for floor in floors)
        table.add_row(
            f.path,
            f.scenario,
            f"{f.p50:.1f}",
            f"{f.pct(0.95):.1f}",
            f"{f.pct(0.99):.1f}",
            f"{max(f.samples):.1f}",
            "1.0" if is_floor else f"{f.p50 / floor_for(f.scenario, floors).p50:.1f}x",
            "" if is_floor else ("met" if f.pct(0.95) < TARGET_P95_MS else "MISSED"),
        )
    return table
