"""Run one worker process: the agents of the named groups, plus health and metrics."""

from __future__ import annotations

import faust
from loguru import logger

from agents.framework.kafka.app import consumer_group, create_app
from agents.framework.kafka.fetch_wait import use_fetch_max_wait
from agents.framework.kafka.livelock import pace_livelock_detector
from agents.framework.kafka.offset_guard import install_offset_guard
from agents.framework.kafka.ops import install_worker_ops, worker_health
from agents.framework.runtime import AgentSpec, BroadcastSpec, TimerSpec
from core.broker_wakeup import listen_for_wakeups, wakeup_channel
from core.config import Settings
from core.gc_tuning import tune_for_batches
from core.observability.logging import init_logging
from core.observability.ops_server import OpsServer, inherited_socket


def run_worker(
    settings: Settings,
    group_names: list[str],
    specs: list[AgentSpec],
    timers: list[TimerSpec],
    broadcasts: list[BroadcastSpec],
) -> None:
    """Run `specs` and `timers` (agents/groups.py picks them) as the worker of `group_names`
    (as given on the command line, `all` included: they name the consumer group)."""
    init_logging(settings.log.level, settings.log.format, process=f"worker:{'+'.join(group_names)}")
    gate = use_fetch_max_wait(
        settings.kafka.fetch_max_wait_ms, settings.kafka.idle_fetch_interval_ms
    )
    app, holder = create_app(settings, group_names, specs, timers, broadcasts)
    # Ready when the dependency table's required services answer (core/observability/
    # dependencies.py) and the group has handed this worker its partitions.
    health = worker_health(settings, app, sorted({spec.group for spec in specs}))
    gauges = install_worker_ops(app, holder, settings, consumer_group(settings, group_names))
    # Offsets past the end of their log are read again from the start, and said so.
    install_offset_guard(
        app, consumer_group(settings, group_names), settings.kafka.topic_prefix, gate
    )
    # Faust's stall detector walks every partition; its thresholds are minutes.
    pace_livelock_detector()
    ops = OpsServer(
        settings.metrics.host,
        settings.metrics.port,
        ready=health.ready,
        sock=inherited_socket(settings.metrics.listen_fd),
        before_metrics=gauges.update_lag,
    )

    @app.task
    async def _serve_ops() -> None:
        await ops.start()

    redis_url = settings.redis.url
    if gate is not None and redis_url:

        @app.task
        async def _hear_wakeups() -> None:
            await listen_for_wakeups(redis_url, wakeup_channel(settings), gate.wake)

    @app.on_before_shutdown.connect
    async def _stop_ops(app: faust.App, **kwargs: object) -> None:
        await ops.stop()
        await health.close()

    logger.info(
        "worker starting: groups={} consumer_group={} agents={}",
        ",".join(group_names),
        consumer_group(settings, group_names),
        ",".join(s.name for s in specs),
    )
    tune_for_batches()
    worker = faust.Worker(
        app,
        loglevel="INFO",
        override_logging=False,
        redirect_stdouts=False,
        quiet=True,
    )
    # The startup spinner writes terminal escapes into what is otherwise a JSON log stream.
    worker.spinner = None
    worker.execute_from_commandline()
