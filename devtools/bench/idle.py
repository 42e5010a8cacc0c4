"""`mgw bench idle`: what a whole `mgw up` stack costs at rest, and how fast it answers after.

It starts `mgw up` (every service embedded: broker, PostgreSQL, Redis; with `--durable` the
broker on its object store) in a scratch directory, registers a phone and a TV that listens on
its stream (Server-Sent Events) as a user's devices would, and lets the stack settle for longer
than a device stays online without a heartbeat (60 s): both go offline, a message each, before
the window, not in it. Then, with no request at all, it samples the CPU time of every process
of the stack over the window and prints it per process kind, with the total in percent of one
core.

The baseline, measured in the same window, is the same services started bare (no topics, no
client): what the stack costs beyond them is this system's own idling.

Last, the latency an idle stack owes its first user: after a heartbeat of the TV, 55 s of
silence (a device is offline 60 s after its last heartbeat, so not quite a minute), then one
`play` from the phone, timed until the TV has it; then, after another heartbeat, a few more,
one at a time, as the awake figure beside it.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil
from rich.table import Table

from cli.console import console_for, out
from core.embedded import (
    ServiceProcess,
    endpoint_of,
    free_port,
    start_broker,
    start_object_store,
    start_postgres,
    start_redis,
)
from core.stack_file import parse
from devtools.bench.services import ROOT
from devtools.bench.sync import SCOPES, Phone
from devtools.bench.sync_clients import Heard, SseDevice

console = console_for(stderr=True)

TARGET_TOTAL_PCT = 2.0
TARGET_FIRST_COMMAND_MS = 100.0
QUIET_BEFORE_COMMAND_S = 55.0
AWAKE_COMMANDS = 20
USER = "bench-user"


class BenchError(RuntimeError):
    pass


def process_kind(cmdline: list[str]) -> str:
    """What a process of the stack is, from its command line."""
    text = " ".join(cmdline)
    program = Path(cmdline[0]).name if cmdline else ""
    if program == "tansu":
        return "broker (Tansu)"
    if program == "weed":
        return "object store (SeaweedFS)"
    if program == "postgres" or text.startswith("postgres:"):
        return "postgresql"
    if "redis-server" in text:
        return "redis"
    if "cli.main" in cmdline and "worker" in cmdline:
        return "worker (all groups)"
    if "cli.main" in cmdline and "up" in cmdline:
        return "mgw up (supervisor)"
    # The gateway and the processes uvicorn starts for it (GATEWAY_WORKERS).
    return "gateway"


@dataclass(frozen=True)
class Usage:
    kind: str
    processes: int
    cpu_s: float

    def pct(self, seconds: float) -> float:
        return 100.0 * self.cpu_s / seconds


def _tree(root: int) -> list[psutil.Process]:
    parent = psutil.Process(root)
    return [parent, *parent.children(recursive=True)]


def _cpu_s(process: psutil.Process) -> float:
    times = process.cpu_times()
    # Its own time and that of children it already reaped (PostgreSQL's short-lived backends).
    return times.user + times.system + times.children_user + times.children_system


def sample(groups: dict[str, list[psutil.Process]], seconds: float) -> dict[str, list[Usage]]:
    """CPU seconds per process kind of each group, over one window of `seconds` for all."""
    before: dict[tuple[str, int], tuple[psutil.Process, float]] = {}
    for group, processes in groups.items():
        for process in processes:
            try:
                before[(group, process.pid)] = (process, _cpu_s(process))
            except psutil.Error:
                continue
    time.sleep(seconds)
    spent: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for (group, _), (process, start) in before.items():
        try:
            spent[group][process_kind(process.cmdline())].append(_cpu_s(process) - start)
        except psutil.Error:
            continue  # exited during the window (a backend): its time is its parent's now
    return {
        group: sorted(
            (Usage(kind, len(values), sum(values)) for kind, values in kinds.items()),
            key=lambda u: -u.cpu_s,
        )
        for group, kinds in spent.items()
    }


def _bare_services(workdir: Path, durable: bool, stack: ExitStack) -> list[psutil.Process]:
    started: list[ServiceProcess] = []
    if durable:
        store = start_object_store(workdir / "bare-broker")
        started.append(store)
        started.append(
            start_broker(log_file=workdir / "bare-tansu.log", storage=endpoint_of(store))
        )
    else:
        started.append(start_broker(log_file=workdir / "bare-tansu.log"))
    started.append(start_postgres(workdir / "bare-postgres"))
    started.append(start_redis(workdir / "bare-redis"))
    for service in reversed(started):
        stack.callback(service.stop)
    return [p for s in started if s.pid is not None for p in _tree(s.pid)]


def _start_stack(workdir: Path, durable: bool, stack: ExitStack) -> tuple[int, str, Path]:
    port = free_port()
    data_dir = workdir / ".mgw"
    log_path = workdir / "up.log"
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"KAFKA_BROKERS", "DATABASE_URL", "REDIS_URL", "QDRANT_URL", "MGW_STACK_FILE"}
    }
    # Rate limits off: the timed commands would meet the dev tier's 10 requests per window.
    env |= {
        "MGW_ENV_FILE": "/nonexistent/.env",
        "LOG_LEVEL": "warning",
        "RATE_LIMIT_ENABLED": "false",
    }
    args = ["up", "--data-dir", str(data_dir), "--gateway-port", str(port)]
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "cli.main", *args, *(["--durable"] if durable else [])],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )

    def stop() -> None:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(90)
            except subprocess.TimeoutExpired:
                proc.send_signal(signal.SIGINT)  # the second one stops at once
                proc.wait(30)

    stack.callback(stop)
    deadline = time.monotonic() + 120
    while "Press Ctrl-C" not in log_path.read_text(errors="replace"):
        if proc.poll() is not None or time.monotonic() > deadline:
            tail = log_path.read_text(errors="replace")[-3000:]
            raise BenchError(f"mgw up did not come up (see {log_path}):\n{tail}")
        time.sleep(0.3)
    return proc.pid, f"http://127.0.0.1:{port}", data_dir


def _token(data_dir: Path) -> str:
    from core.config import settings_with
    from gateway.auth.tokens import issue_token

    values = parse(data_dir / "stack.env")
    settings = settings_with({**values, "MGW_ENV_FILE": "/nonexistent/.env"})
    return issue_token(settings.auth, subject=USER, scopes=SCOPES, ttl_s=3600)


async def _commands(
    base: str, token: str, tv: SseDevice, quiet_s: float
) -> tuple[float, list[float]]:
    """(the first play after `quiet_s` of silence, then AWAKE_COMMANDS more) in ms, to the TV."""
    async with httpx.AsyncClient(base_url=base, timeout=10) as http:
        phone = Phone(http, token)

        async def heartbeat() -> None:
            beat = await http.post(
                f"/api/v1/users/{USER}/devices/tv-1/heartbeat", headers=phone.headers
            )
            if beat.status_code != 202:
                raise BenchError(f"heartbeat: {beat.status_code} {beat.text}")

        await heartbeat()
        await asyncio.sleep(quiet_s)
        samples = []
        for n in range(1 + AWAKE_COMMANDS):
            if n == 1:
                # The TV would be offline 60 s after the first heartbeat, within these.
                await heartbeat()
                await asyncio.sleep(0.5)
            started = time.perf_counter()
            command_id = await phone.play()

            def match(h: Heard, ident: str = command_id) -> bool:
                return isinstance(h.body, dict) and h.body.get("command_id") == ident

            heard = await tv.inbox.wait_for(match, wait_s=10)
            samples.append((heard.at - started) * 1000)
        return samples[0], samples[1:]


async def _register(base: str, token: str) -> SseDevice:
    async with httpx.AsyncClient(base_url=base, timeout=10) as http:
        phone = Phone(http, token)
        for device_id, kind in (("phone-1", "phone"), ("tv-1", "tv")):
            await phone.put_device(device_id, kind)
        await phone.wait_devices(2)
    return await SseDevice(base, USER, token, "tv-1", channels="devices").start()


def bench_idle(seconds: float = 60.0, settle: float = 70.0, durable: bool = False) -> int:
    engine = "durable (object store)" if durable else "in memory"
    with tempfile.TemporaryDirectory(prefix="mgw-bench-idle-") as tmp, ExitStack() as stack:
        workdir = Path(tmp)
        try:
            with console.status(f"starting mgw up (broker {engine}) and the bare services..."):
                pid, base, data_dir = _start_stack(workdir, durable, stack)
                bare = _bare_services(workdir, durable, stack)
                token = _token(data_dir)
                loop = asyncio.new_event_loop()
                stack.callback(loop.close)
                listener = loop.run_until_complete(_register(base, token))
                stack.callback(lambda: loop.run_until_complete(listener.close()))
            with console.status(f"settling for {settle:g} s..."):
                time.sleep(settle)
            with console.status(f"sampling CPU at rest for {seconds:g} s (a TV listening)..."):
                # The SSE reader's task is idle meanwhile: its loop does not run.
                usage = sample({"stack": _tree(pid), "bare": bare}, seconds)
            with console.status(f"{QUIET_BEFORE_COMMAND_S:g} s of silence, then commands..."):
                first, awake = loop.run_until_complete(
                    _commands(base, token, listener, QUIET_BEFORE_COMMAND_S)
                )
        except (BenchError, httpx.HTTPError, TimeoutError, RuntimeError) as exc:
            kept = Path(tempfile.gettempdir()) / "mgw-bench-idle-up.log"
            shutil.copyfile(workdir / "up.log", kept)
            console.print(f"[red]{type(exc).__name__}: {exc}[/red]; the stack's log: {kept}")
            return 2
    total = sum(u.pct(seconds) for u in usage["stack"])
    out.print(usage_table(usage, seconds, engine))
    awake_sorted = sorted(awake)
    out.print(
        f"first play after {QUIET_BEFORE_COMMAND_S:g} s of silence, phone -> TV: {first:.1f} ms "
        f"(target < {TARGET_FIRST_COMMAND_MS:g} ms: "
        f"{'met' if first < TARGET_FIRST_COMMAND_MS else 'MISSED'}); the next {len(awake)}, "
        f"awake: p50 {awake_sorted[len(awake) // 2]:.1f} ms, max {awake_sorted[-1]:.1f} ms"
    )
    met = total < TARGET_TOTAL_PCT and first < TARGET_FIRST_COMMAND_MS
    return 0 if met else 1


def usage_table(usage: dict[str, list[Usage]], seconds: float, engine: str) -> Table:
    table = Table(
        title=f"CPU of an idle `mgw up` stack (broker {engine}) over {seconds:g} s, in % of one "
        f"core; target: total < {TARGET_TOTAL_PCT:g} %"
    )
    for column in ("what", "process kind", "processes", "CPU %"):
        table.add_column(column, justify="right" if column in ("processes", "CPU %") else "left")
    for group, label in (("stack", "the stack"), ("bare", "baseline: bare services")):
        rows = usage.get(group, [])
        for u in rows:
            table.add_row(label, u.kind, str(u.processes), f"{u.pct(seconds):.2f}")
        total = sum(u.pct(seconds) for u in rows)
        verdict = ""
        if group == "stack":
            verdict = " (met)" if total < TARGET_TOTAL_PCT else " (MISSED)"
        table.add_row(label, "[bold]total[/bold]", "", f"[bold]{total:.2f}[/bold]{verdict}")
    return table
