"""Run one worker process: the agents of the named groups, plus health and metrics."""

from __future__ import annotations

import faust
from loguru import logger

from agents.app import consumer_group, create_app
from agents.registry import agents_for
from core.config import Settings
from core.observability.logging import init_logging
from core.observability.ops_server import OpsServer


def run_worker(settings: Settings, group_names: list[str]) -> None:
    init_logging(settings.log.level, settings.log.format, process=f"worker:{'+'.join(group_names)}")
    specs = agents_for(group_names)
    app, _holder = create_app(settings, group_names, specs)
    ops = OpsServer(settings.metrics.host, settings.metrics.port)

    @app.task
    async def _serve_ops() -> None:
        await ops.start()

    @app.on_before_shutdown.connect
    async def _stop_ops(app: faust.App, **kwargs: object) -> None:
        await ops.stop()

    logger.info(
        "worker starting: groups={} consumer_group={} agents={}",
        ",".join(group_names),
        consumer_group(settings, group_names),
        ",".join(s.name for s in specs),
    )
    worker = faust.Worker(
        app,
        loglevel="INFO",
        override_logging=False,
        redirect_stdouts=False,
        quiet=True,
    )
    worker.execute_from_commandline()
