"""`mgw bench edge`: the gateway against slow clients and many event streams, over real sockets.

One gateway process (GATEWAY_WORKERS=1, its edge limits at their defaults unless set in the
environment) runs on a broker and Redis of the benchmark's own. Then:

- slowloris: `--slow` connections each send a request line and then one header byte a second.
  Figures: how many got 408 and were closed, and when; and the latency of `/health/live` asked
  by a well-behaved client meanwhile, against the same before the attack (the baseline).
- streams: `--streams` Server-Sent Event streams (one user each, as devices) are opened, each
  until its `ready` event, then all closed, `--rounds` times. Figures: the gateway's resident
  memory before, with all streams open, and after each round's streams closed.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from dataclasses import dataclass

import httpx
from rich.table import Table

from cli.console import console_for, out
from devtools.bench.services import NotReady, lone_gateway, rss_mb

console = console_for(stderr=True)

SCOPES = ["devices:read", "watchlist:read", "progress:read"]
OPENING_AT_ONCE = 50
OPEN_ATTEMPTS = 3


@dataclass(frozen=True)
class Slowloris:
    connections: int
    answered_408: int
    closed_after_s: list[float]
    live_before_ms: list[float]
    live_during_ms: list[float]


@dataclass(frozen=True)
class StreamRound:
    opened: int
    rss_open_mb: float
    rss_closed_mb: float


async def _live_latencies(url: str, seconds: float) -> list[float]:
    samples = []
    async with httpx.AsyncClient(timeout=10) as http:
        stop_at = time.perf_counter() + seconds
        while time.perf_counter() < stop_at:
            began = time.perf_counter()
            await http.get(f"{url}/health/live")
            samples.append((time.perf_counter() - began) * 1000)
            await asyncio.sleep(0.1)
    return samples


async def _slow_client(host: str, port: int, limit_s: float) -> tuple[int | None, float]:
    """(the status the server answered, or None; seconds until it closed the connection)."""
    reader, writer = await asyncio.open_connection(host, port)
    began = time.perf_counter()
    writer.write(b"GET /health/live HTTP/1.1\r\nHost: gateway\r\nX-Slow: ")
    received = b""

    async def trickle() -> None:
        while True:
            await asyncio.sleep(1)
            writer.write(b"s")
            await writer.drain()

    trickling = asyncio.create_task(trickle())
    try:
        async with asyncio.timeout(limit_s):
            while chunk := await reader.read(4096):
                received += chunk
    except (TimeoutError, ConnectionError):
        pass
    finally:
        trickling.cancel()
        writer.close()
    took = time.perf_counter() - began
    status = int(received.split(b" ", 2)[1]) if received.startswith(b"HTTP/1.1 ") else None
    return status, took


async def _slowloris(url: str, count: int, limit_s: float) -> Slowloris:
    host, port = url.removeprefix("http://").split(":")
    before = await _live_latencies(url, 3)
    attack = asyncio.gather(*(_slow_client(host, int(port), limit_s) for _ in range(count)))
    during = await _live_latencies(url, min(limit_s, 8))
    results = await attack
    return Slowloris(
        connections=count,
        answered_408=sum(1 for status, _ in results if status == 408),
        closed_after_s=[took for _, took in results],
        live_before_ms=before,
        live_during_ms=during,
    )


async def _open_stream(host: str, port: int, user: str, token: str) -> asyncio.StreamWriter:
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(
        f"GET /api/v1/users/{user}/stream HTTP/1.1\r\nHost: gateway\r\n"
        f"Authorization: Bearer {token}\r\nX-Device-ID: tv-1\r\n\r\n".encode()
    )
    seen = b""
    while b"event: ready" not in seen:
        chunk = await reader.read(4096)
        if not chunk:
            raise RuntimeError(f"stream of {user} closed before ready: {seen[-300:]!r}")
        seen += chunk
    return writer


async def _stream_round(url: str, pid: int, tokens: list[tuple[str, str]]) -> StreamRound:
    host, port = url.removeprefix("http://").split(":")
    gate = asyncio.Semaphore(OPENING_AT_ONCE)

    async def open_one(user: str, token: str) -> asyncio.StreamWriter:
        async with gate:
            for attempt in range(1, OPEN_ATTEMPTS + 1):
                try:
                    return await _open_stream(host, int(port), user, token)
                except (RuntimeError, ConnectionError):
                    # A stream the gateway ended at its opening (a Redis read timed out under
                    # the burst): a device would reconnect after `retry`, so do we.
                    if attempt == OPEN_ATTEMPTS:
                        raise
                    await asyncio.sleep(0.5)
            raise AssertionError("unreachable")

    writers = await asyncio.gather(*(open_one(user, token) for user, token in tokens))
    await asyncio.sleep(2)
    rss_open = rss_mb(pid)
    for writer in writers:
        writer.close()
    # The gateway notices each closed stream at its next write (a keep-alive comment at the
    # latest, every 15 s): wait until every stream is gone, then a moment more.
    await asyncio.sleep(20)
    return StreamRound(len(writers), rss_open, rss_mb(pid))


async def _register_tvs(redis_url: str, prefix: str, users: list[str]) -> None:
    """Each user's device register as the sync agent writes it (tv-1 registered): the bench
    runs no agent, and the streams open on the gateway's one-HMGET path, as in production."""
    import redis.asyncio as aioredis

    from agents.sync.store import mark_devices
    from schemas.sync import HLC

    registered = (HLC(physical_us=1, logical=0), True)
    redis = aioredis.from_url(redis_url)
    try:
        await mark_devices(redis, prefix, users, {user: {"tv-1": registered} for user in users})
    finally:
        await redis.aclose()


def bench_edge(slow: int = 200, streams: int = 5000, rounds: int = 3) -> int:
    from core.config import settings_with
    from gateway.auth.tokens import issue_token

    try:
        with lone_gateway("edge") as gateway:
            settings = settings_with(gateway.env)
            limit_s = settings.gateway.header_timeout_s + 10
            with console.status(f"slowloris: {slow} connections, one header byte a second..."):
                loris = asyncio.run(_slowloris(gateway.url, slow, limit_s))
            tokens = [
                (user, issue_token(settings.auth, subject=user, scopes=SCOPES, ttl_s=3600))
                for user in (f"edge-{n}" for n in range(streams))
            ]
            # Each stream names its device (tv-1), which must be registered to its user.
            asyncio.run(
                _register_tvs(gateway.redis_url, gateway.prefix, [user for user, _ in tokens])
            )
            rss_before = rss_mb(gateway.pid)
            results: list[StreamRound] = []
            for n in range(rounds):
                with console.status(f"streams: round {n + 1} of {rounds}, {streams} streams..."):
                    results.append(asyncio.run(_stream_round(gateway.url, gateway.pid, tokens)))
    except NotReady as exc:
        console.print(f"[red]{exc}[/red]")
        return 2
    out.print(slowloris_table(loris, settings.gateway.header_timeout_s))
    out.print(streams_table(rss_before, results))
    kept = loris.answered_408 == loris.connections and max(loris.closed_after_s) < limit_s
    return 0 if kept else 1


def slowloris_table(loris: Slowloris, header_timeout_s: float) -> Table:
    table = Table(
        title=f"Slowloris: {loris.connections} connections, one header byte a second "
        f"(GATEWAY_HEADER_TIMEOUT_S={header_timeout_s:g})"
    )
    table.add_column("figure")
    table.add_column("value", justify="right")
    closed = sorted(loris.closed_after_s)
    table.add_row("answered 408 and closed", f"{loris.answered_408} of {loris.connections}")
    table.add_row(
        "closed after, median / max s", f"{statistics.median(closed):.1f} / {closed[-1]:.1f}"
    )
    for label, samples in (
        ("baseline: /health/live before, p50 / max ms", loris.live_before_ms),
        ("/health/live during the attack, p50 / max ms", loris.live_during_ms),
    ):
        table.add_row(label, f"{statistics.median(samples):.1f} / {max(samples):.1f}")
    return table


def streams_table(rss_before: float, rounds: list[StreamRound]) -> Table:
    table = Table(title="Gateway memory (RSS) around event streams opened, then closed")
    for column in ("round", "streams", "RSS open MB", "RSS after close MB", "vs before MB"):
        table.add_column(column, justify="right")
    table.add_row("before", "0", "", f"{rss_before:.1f}", "")
    for n, r in enumerate(rounds, start=1):
        table.add_row(
            str(n),
            f"{r.opened:,}",
            f"{r.rss_open_mb:.1f}",
            f"{r.rss_closed_mb:.1f}",
            f"{r.rss_closed_mb - rss_before:+.1f}",
        )
    return table
