"""Run one worker process: the agents of the named groups, plus health and metrics."""

from __future__ import annotations

from typing import Any

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

    async def ready() -> tuple[int, dict[str, Any]]:
        # Ready once the group has handed this worker its partitions: before that no record
        # published now would be processed by it.
        try:
            assigned = len(app.consumer.assignment())
        except Exception:  # the consumer does not exist until the worker has started
            assigned = 0
        kafka = {"status": "healthy" if assigned else "unhealthy", "assigned_partitions": assigned}
        status = "healthy" if assigned else "unhealthy"
        return (200 if assigned else 503), {"status": status, "components": {"kafka": kafka}}

    ops = OpsServer(settings.metrics.host, settings.metrics.port, ready=ready)

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
    # The startup spinner writes terminal escapes into what is otherwise a JSON log stream.
    worker.spinner = None
    worker.execute_from_commandline()
