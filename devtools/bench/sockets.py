"""`mgw bench sockets`: the memory of one gateway process holding many device WebSockets.

One gateway process (GATEWAY_WORKERS=1) on a broker and Redis of the benchmark's own.
`--sockets` users register one device each (HTTP), then each device opens its socket
(docs/DEVICE_PROTOCOL.md) until its `ready` frame; all are held `--hold` seconds, then closed.
Figures: the gateway's resident memory (RSS) before (after one socket opened and closed, so
the code paths are loaded), with all open, its peak while held, and after they close; how many
sockets were still open at the end of the hold. The budget (SOCKET_BUDGET_KIB per socket,
docs/DEVICE_PROTOCOL.md) is checked against the RSS grown per socket.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

import httpx
from rich.table import Table

from cli.console import console_for, out
from devtools.bench.services import NotReady, lone_gateway, rss_mb
from devtools.bench.sync_clients import SocketDevice

console = console_for(stderr=True)

SCOPES = ["devices:read", "devices:write", "watchlist:read"]
# The budget written in docs/DEVICE_PROTOCOL.md: RSS grown per open socket, in KiB.
SOCKET_BUDGET_KIB = 64
AT_ONCE = 50


@dataclass(frozen=True)
class Held:
    sockets: int
    opened: int
    open_s: float
    rss_before_mb: float
    rss_open_mb: float
    rss_peak_mb: float
    rss_closed_mb: float
    still_open: int
    hold_s: float

    @property
    def per_socket_kib(self) -> float:
        grown = max(self.rss_peak_mb, self.rss_open_mb) - self.rss_before_mb
        return grown * 1024 / max(1, self.opened)


async def _register(url: str, users: list[tuple[str, str]]) -> None:
    body = {
        "device_type": "tv",
        "platform": "tizen",
        "app_version": "1.0",
        "device_name": "bench tv",
    }
    gate = asyncio.Semaphore(20)
    async with httpx.AsyncClient(base_url=url, timeout=30) as http:

        async def one(user: str, token: str) -> None:
            async with gate:
                resp = await http.put(
                    f"/api/v1/users/{user}/devices/tv-1",
                    json=body,
                    headers={"Authorization": f"Bearer {token}"},
                )
                if resp.status_code != 202:
                    raise RuntimeError(f"registering {user}'s tv: {resp.status_code} {resp.text}")

        await asyncio.gather(*(one(u, t) for u, t in users))


async def _hold(url: str, pid: int, users: list[tuple[str, str]], hold_s: float) -> Held:
    # Warm: one socket opened and closed, so what every socket loads is in `before`.
    warm = await SocketDevice(url, users[0][0], users[0][1], "tv-1").start()
    await warm.close()
    await asyncio.sleep(1)
    before = rss_mb(pid)
    devices: list[SocketDevice] = []
    started = time.perf_counter()
    for n in range(0, len(users), AT_ONCE):
        batch = [SocketDevice(url, u, t, "tv-1") for u, t in users[n : n + AT_ONCE]]
        devices += await asyncio.gather(*(d.start() for d in batch))
    open_s = time.perf_counter() - started
    opened = sum(1 for d in devices if d.status == 101)
    rss_open = peak = rss_mb(pid)
    deadline = time.monotonic() + hold_s
    while time.monotonic() < deadline:
        await asyncio.sleep(min(2.0, max(0.0, deadline - time.monotonic())))
        peak = max(peak, rss_mb(pid))
    still_open = sum(1 for d in devices if d.status == 101 and not d.closed.is_set())
    for n in range(0, len(devices), AT_ONCE):
        await asyncio.gather(*(d.close() for d in devices[n : n + AT_ONCE]))
    await asyncio.sleep(2)
    return Held(len(users), opened, open_s, before, rss_open, peak, rss_mb(pid), still_open, hold_s)


def bench_sockets(sockets: int = 1000, hold_s: float = 60.0) -> int:
    from core.config import settings_with
    from gateway.auth.tokens import issue_token
    from topics.admin import create_topics

    try:
        with lone_gateway("sock") as gateway:
            settings = settings_with(gateway.env)
            asyncio.run(create_topics(settings.kafka.bootstrap, settings.kafka.topic_prefix))
            users = [
                (user, issue_token(settings.auth, subject=user, scopes=SCOPES, ttl_s=3600))
                for user in (f"sock-{n}" for n in range(sockets))
            ]
            with console.status(f"registering {sockets} devices..."):
                asyncio.run(_register(gateway.url, users))
            with console.status(f"{sockets} sockets open, held {hold_s:g} s..."):
                held = asyncio.run(_hold(gateway.url, gateway.pid, users, hold_s))
    except NotReady as exc:
        console.print(f"[red]{exc}[/red]")
        return 2
    out.print(sockets_table(held))
    kept = held.still_open == sockets and held.per_socket_kib <= SOCKET_BUDGET_KIB
    return 0 if kept else 1


def sockets_table(held: Held) -> Table:
    table = Table(
        title=f"One gateway process holding {held.sockets} device WebSockets for "
        f"{held.hold_s:g} s (budget {SOCKET_BUDGET_KIB} KiB RSS per socket)"
    )
    for column in ("figure", "value"):
        table.add_column(column, justify="left" if column == "figure" else "right")
    table.add_row("sockets opened (to `ready`)", f"{held.opened} in {held.open_s:.1f} s")
    table.add_row("still open after the hold", str(held.still_open))
    table.add_row("RSS before, MB", f"{held.rss_before_mb:.1f}")
    table.add_row("RSS all open, MB", f"{held.rss_open_mb:.1f}")
    table.add_row("RSS peak while held, MB", f"{held.rss_peak_mb:.1f}")
    table.add_row("RSS after closing, MB", f"{held.rss_closed_mb:.1f}")
    verdict = "within" if held.per_socket_kib <= SOCKET_BUDGET_KIB else "OVER"
    table.add_row("RSS grown per socket, KiB", f"{held.per_socket_kib:.1f} ({verdict} budget)")
    return table
