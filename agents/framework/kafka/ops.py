"""A worker's operational side: readiness, consumer lag, pool gauges and shared breakers."""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from typing import Any

import faust
from loguru import logger

from agents.framework.context import ContextHolder
from agents.framework.quarantine import quarantine_check
from agents.framework.timers import timer_health
from core.config import Settings
from core.observability.dependencies import KAFKA, OPTIONAL, dependencies_for, process_kind
from core.observability.health import HealthChecker, standard_checker
from core.observability.metrics import CONSUMER_LAG, DB_POOL_CONNECTIONS
from core.observability.probes import DEFAULT_TIMEOUT_S, CheckFailed, kafka_check
from core.resilience.breaker import breakers

TIMERS, QUARANTINE = "timers", "quarantine"
# How often lag and pool gauges are refreshed; Prometheus scrapes every 15 s by default. The
# lag is also refreshed for each scrape (it is read from memory): `mgw up` reads it the moment
# its broker dies, to count what the broker took with it.
GAUGE_INTERVAL_S = 5.0


def worker_health(settings: Settings, app: faust.App, group_names: list[str]) -> HealthChecker:
    """Readiness from the dependency table; Kafka also needs this worker's partitions."""
    probe = kafka_check(settings.kafka.bootstrap)

    async def kafka_ready() -> Mapping[str, Any]:
        # Before the group hands this worker its partitions, nothing published now would be
        # processed by it; a worker with partitions but no broker is not ready either.
        try:
            assigned = len(app.consumer.assignment())
        except Exception:  # the consumer does not exist until the worker has started
            assigned = 0
        if not assigned:
            raise CheckFailed("no partitions assigned to this worker yet")
        return {"assigned_partitions": assigned, **(await probe() or {})}

    # Besides services: the worker's own work. Optional, so a poison row or a failing sweep
    # makes the worker "degraded" (200) rather than taking it out of rotation.
    needs = {**dependencies_for(process_kind(group_names)), TIMERS: OPTIONAL}
    checks: dict[str, Any] = {KAFKA: kafka_ready, TIMERS: timer_health.check}
    if settings.postgres.url:
        needs[QUARANTINE] = OPTIONAL
        checks[QUARANTINE] = quarantine_check(settings.postgres.url, DEFAULT_TIMEOUT_S, group_names)
    return standard_checker(settings, needs, checks)


def partition_lag(highwater: int | None, committed: int | None) -> int | None:
    """Records of a partition not yet committed; None when the high watermark is unknown."""
    if highwater is None:
        return None
    return max(0, highwater - (committed or 0))


def _position(consumer: Any, tp: Any) -> int | None:
    """The consumer's fetch position, read from memory as Faust's own checks do: never a
    request (a scrape must answer while the broker is away)."""
    try:
        aio = consumer._thread._ensure_consumer()
        state = aio._fetcher._subscriptions.subscription.assignment.state_value(tp)
        return int(state.position) if state.has_valid_position else None
    except Exception:  # not assigned any more, or the consumer is stopping
        return None


class GaugeUpdater:
    """Consumer lag per partition (from the fetch high watermark, not ListOffsets, which
    under-reports on Tansu: docs/GUARANTEES.md) and the PostgreSQL pool's connections."""

    def __init__(
        self, app: faust.App, holder: ContextHolder, group: str, topic_prefix: str
    ) -> None:
        self._app = app
        self._holder = holder
        self._group = group
        self._prefix = f"{topic_prefix}." if topic_prefix else ""
        self._shown: set[tuple[str, str, str]] = set()

    async def update(self) -> None:
        await self.update_lag()
        ctx = self._holder.current
        if ctx is not None:
            size, idle = ctx.pool.get_size(), ctx.pool.get_idle_size()
            DB_POOL_CONNECTIONS.labels("active").set(size - idle)
            DB_POOL_CONNECTIONS.labels("idle").set(idle)
        await breakers.refresh_gauges()

    async def update_lag(self) -> None:
        try:
            consumer = self._app.consumer
            assignment = consumer.assignment()
        except Exception:  # not started yet, or stopping
            return
        # Faust's own record of what this worker committed (Kafka convention: next offset).
        committed_offsets = getattr(consumer, "_committed_offset", {})
        shown: set[tuple[str, str, str]] = set()
        for tp in assignment:
            highwater = consumer.highwater(tp)
            committed = committed_offsets.get(tp)
            if committed is None and highwater:  # nothing committed yet on a non-empty log
                committed = _position(consumer, tp)
            lag = partition_lag(highwater, committed)
            if lag is None:
                continue
            labels = (tp.topic.removeprefix(self._prefix), str(tp.partition), self._group)
            CONSUMER_LAG.labels(*labels).set(lag)
            shown.add(labels)
        # Partitions that moved to another worker are that worker's to report.
        for labels in self._shown - shown:
            with contextlib.suppress(KeyError):
                CONSUMER_LAG.remove(*labels)
        self._shown = shown


def install_worker_ops(
    app: faust.App, holder: ContextHolder, settings: Settings, group: str
) -> GaugeUpdater:
    """Share breaker state through Redis and keep the gauges fresh while the worker runs;
    returns the updater, whose `update_lag` the ops server runs before each scrape."""
    updater = GaugeUpdater(app, holder, group, settings.kafka.topic_prefix)

    @app.task
    async def _share_breakers() -> None:
        await breakers.connect(settings.redis.url, settings.redis.key_prefix)

    @app.timer(GAUGE_INTERVAL_S)
    async def _update_gauges() -> None:
        try:
            await updater.update()
        except Exception as exc:  # a gauge is never worth a crashed worker
            logger.warning("could not update lag/pool gauges: {!r}", exc)

    @app.on_before_shutdown.connect
    async def _close_breakers(app: faust.App, **kwargs: object) -> None:
        await breakers.close()

    return updater
