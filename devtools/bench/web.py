"""`mgw bench web`: a phone's click on the web app's remote to the TV page showing it, measured
in Chromium, beside the same command path without a browser (`mgw bench sync --path socket`).

A sync worker and a gateway run on services of the benchmark's own (as `mgw bench sync`).
Two browser contexts open the reference web app (docs/WEB_APP.md): the phone on its Devices
page, the TV in TV mode, each signed in with a token of the benchmark's user put in the tab's
session (sign-in itself is not what is timed). One command at a time, Play and Pause in turn:
the time runs from just before the phone's button is clicked (read in the phone's page) to the
moment the TV's page has written the command into its DOM (read in the TV's page by a
MutationObserver); both pages read one clock, `performance.timeOrigin + performance.now()`.
Each browser command is followed by the same command between two plain WebSocket clients
(another phone and TV of the user, `mgw bench sync --path socket`'s path) on the same gateway
and worker, so both paths see the same load: the browser's and the app's share is the
difference.
"""

from __future__ import annotations

import asyncio
import secrets
import statistics
import uuid
from contextlib import AsyncExitStack
from pathlib import Path

import httpx
import orjson
from rich.table import Table

from cli.console import console_for, out
from devtools.bench.services import bench_services
from devtools.bench.sync import (
    WARMUP,
    BenchError,
    Figures,
    Phone,
    _timed,
    latency_env,
    start_sync_stack,
)
from devtools.bench.sync_clients import SocketDevice

console = console_for(stderr=True)

TARGET_P95_MS = 100.0
CHROMIUM = "/usr/bin/chromium"
USER = "bench-user"
SCOPES = [
    "devices:read",
    "devices:write",
    "devices:command",
    "watchlist:read",
    "watchlist:write",
    "progress:read",
    "progress:write",
    "recommendations:read",
]

# Before the button's click, on the phone's page: the click's time on the shared clock.
CLICK = """(name) => {
  const remote = document.querySelector('li.device[data-device="tv-1"] .remote');
  const button = [...remote.querySelectorAll('button')].find((b) => b.textContent === name);
  const at = performance.timeOrigin + performance.now();
  button.click();
  return at;
}"""

# On the TV's page: every command the page shows, with its time on the shared clock.
OBSERVE = """() => {
  window.__heard = [];
  const said = document.getElementById('remote-said');
  new MutationObserver(() => window.__heard.push(
    {id: said.dataset.command, at: performance.timeOrigin + performance.now()}
  )).observe(said, {childList: true, characterData: true, subtree: true});
}"""


async def _prepare(env: dict[str, str]) -> str:
    from agents.framework.migrate import migrate_url
    from core.config import settings_with
    from gateway.auth.tokens import issue_token
    from topics.admin import create_topics

    settings = settings_with({**env, "MGW_ENV_FILE": "/nonexistent/.env"})
    await create_topics(settings.kafka.bootstrap, settings.kafka.topic_prefix)
    await migrate_url(settings.postgres.require_url())
    return issue_token(settings.auth, subject=USER, scopes=SCOPES, ttl_s=3600)


def _session(token: str, device_id: str, kind: str) -> str:
    """The tab's session as the app keeps it (sessionStorage `mgw.session`), set before its
    scripts run."""
    value = {
        "mode": "tv" if kind == "tv" else "phone",
        "user": USER,
        "access_token": token,
        "refresh_token": None,
        "device_id": device_id,
        "device_type": kind,
        "region": "US",
    }
    text = orjson.dumps(orjson.dumps(value).decode()).decode()
    return f"sessionStorage.setItem('mgw.session', {text});"


class _Sockets:
    """The same command without a browser: tv-2 and phone-2 as plain WebSocket clients."""

    def __init__(self, tv: SocketDevice, phone: SocketDevice) -> None:
        self.tv, self.phone, self.sent = tv, phone, 0

    async def play(self) -> str:
        self.sent += 1
        ref = f"play-{self.sent}"
        await self.phone.command("tv-2", {"type": "play"}, ref=ref)
        try:
            answer = await self.phone.answers.wait_for(lambda h: h.event_id == ref, wait_s=10)
        except TimeoutError:
            raise BenchError(f"no answer to command frame {ref}") from None
        if answer.channel != "accepted":
            raise BenchError(f"command frame refused: {answer.body}")
        return str(answer.body["data"]["command_id"])


async def _both_paths(base: str, token: str, count: int) -> tuple[list[float], list[float]]:
    """One browser command, then one socket command, in turn: both paths see the same load
    (the machine's, which moves during a run)."""
    from playwright.async_api import async_playwright

    async with AsyncExitStack() as stack:
        tv_socket = await SocketDevice(base, USER, token, "tv-2", channels="devices").start()
        stack.push_async_callback(tv_socket.close)
        phone_socket = await SocketDevice(
            base, USER, token, "phone-2", channels="notifications"
        ).start()
        stack.push_async_callback(phone_socket.close)
        sockets = _Sockets(tv_socket, phone_socket)

        p = await stack.enter_async_context(async_playwright())
        browser = await p.chromium.launch(executable_path=CHROMIUM, headless=True)
        stack.push_async_callback(browser.close)
        tv_ctx = await browser.new_context(base_url=base, viewport={"width": 1920, "height": 1080})
        await tv_ctx.add_init_script(_session(token, "tv-1", "tv"))
        tv = await tv_ctx.new_page()
        await tv.goto("/app/#/tv")
        await tv.wait_for_function("document.getElementById('live')?.textContent === 'Live'")
        await tv.evaluate(OBSERVE)
        phone_ctx = await browser.new_context(base_url=base, viewport={"width": 390, "height": 844})
        await phone_ctx.add_init_script(_session(token, "phone-1", "phone"))
        phone = await phone_ctx.new_page()
        await phone.goto("/app/#/devices")
        await phone.wait_for_function("document.getElementById('live')?.textContent === 'Live'")
        await phone.locator('li.device[data-device="tv-1"] .remote button').first.wait_for()

        clicks: list[float] = []
        frames: list[float] = []
        for n in range(WARMUP + count):
            clicked = await phone.evaluate(CLICK, "Play" if n % 2 == 0 else "Pause")
            try:
                await tv.wait_for_function(f"window.__heard.length > {n}", timeout=10_000)
            except Exception as exc:  # playwright's TimeoutError, named by its module
                raise BenchError(f"the TV page never showed command {n + 1}") from exc
            heard = await tv.evaluate(f"window.__heard[{n}].at")
            frame = await _timed(1, sockets.play, tv_socket.inbox, "command_id")
            if n >= WARMUP:
                clicks.append(heard - clicked)
                frames += frame
        return clicks, frames


async def _run(env: dict[str, str], token: str, count: int, workdir: Path) -> list[Figures]:
    async with AsyncExitStack() as stack:
        base = await start_sync_stack(stack, env, workdir, "web")
        http = await stack.enter_async_context(httpx.AsyncClient(base_url=base, timeout=10))
        phone = Phone(http, token)
        devices = ["phone-1", "tv-1", "phone-2", "tv-2"]
        for device_id in devices:
            await phone.put_device(device_id, device_id.split("-")[0])
        await phone.wait_devices(len(devices))
        beats = asyncio.create_task(phone.heartbeats(devices))
        stack.callback(beats.cancel)
        with console.status(f"{count} commands on each path, in turn..."):
            browser, sockets = await _both_paths(base, token, count)
        return [
            Figures("browser", "click on the phone page -> the TV page shows it", browser),
            Figures("socket", "command frame -> TV socket (mgw bench sync --path socket)", sockets),
        ]


def bench_web(count: int = 200) -> int:
    if not Path(CHROMIUM).exists():
        console.print(f"[red]no Chromium at {CHROMIUM}: install Debian's chromium package[/red]")
        return 2
    try:
        with bench_services("web", console) as services:
            prefix = f"bweb{uuid.uuid4().hex[:6]}"
            env = latency_env(services, prefix, secrets.token_urlsafe(48))
            token = asyncio.run(_prepare(env))
            figures = asyncio.run(_run(env, token, count, services.workdir))
    except BenchError as exc:
        console.print(f"[red]{exc}[/red]")
        return 2
    out.print(results_table(figures, count))
    return 0 if figures[0].pct(0.95) < TARGET_P95_MS else 1


def results_table(figures: list[Figures], count: int) -> Table:
    table = Table(
        title=f"Remote command, phone -> TV ({count} each, one at a time; "
        f"target p95 < {TARGET_P95_MS:g} ms in the browser)"
    )
    for column in ("path", "scenario", "p50 ms", "p95 ms", "p99 ms", "max ms"):
        table.add_column(column, justify="left" if column in ("path", "scenario") else "right")
    for f in figures:
        table.add_row(
            f.path,
            f.scenario,
            f"{statistics.median(f.samples):.1f}",
            f"{f.pct(0.95):.1f}",
            f"{f.pct(0.99):.1f}",
            f"{max(f.samples):.1f}",
        )
    return table
