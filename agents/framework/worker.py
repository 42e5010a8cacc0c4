"""Run one worker process: the agents of the named groups, plus health and metrics."""

from __future__ import annotations

import faust
from loguru import logger

from agents.app import consumer_group, create_app
from agents.ops import install_worker_ops, worker_health
from agents.registry import agents_for, timers_for
from core.config import Settings
from core.gc_tuning import tune_for_batches
from core.observability.logging import init_logging
from core.observability.ops_server import OpsServer


def run_worker(settings: Settings, group_names: list[str]) -> None:
    init_logging(settings.log.level, settings.log.format, process=f"worker:{'+'.join(group_names)}")
    specs = agents_for(group_names)
    app, holder = create_app(settings, group_names, specs, timers_for(group_names))
    # Ready when the dependency table's required services answer (core/observability/
    # dependencies.py) and the group has handed this worker its partitions.
    health = worker_health(settings, app, group_names)
    install_worker_ops(app, holder, settings, consumer_group(settings, group_names))
    ops = OpsServer(settings.metrics.host, settings.metrics.port, ready=health.ready)

    @app.task
    async def _serve_ops() -> None:
        await ops.start()

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
