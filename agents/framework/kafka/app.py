"""The Faust app factory: one app per worker process, agents of the chosen groups."""

from __future__ import annotations

import tempfile
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import faust
from loguru import logger

from agents.framework import outbox
from agents.framework.context import AgentContext, ContextHolder
from agents.framework.kafka.broadcast import BroadcastReader, broadcast_task
from agents.framework.kafka.take import take_batches
from agents.framework.runtime import AgentSpec, BroadcastSpec, TimerSpec, consume, record_of
from agents.framework.timers import timer_health
from core.config import Settings


def consumer_group(settings: Settings, group_names: list[str]) -> str:
    return f"{settings.kafka.topic_prefix}-{'+'.join(sorted(group_names))}"


def create_app(
    settings: Settings,
    group_names: list[str],
    specs: list[AgentSpec],
    timers: Sequence[TimerSpec] = (),
    broadcasts: Sequence[BroadcastSpec] = (),
) -> tuple[faust.App, ContextHolder]:
    kafka = settings.kafka
    # Faust wants a data directory even with memory stores; keep it out of the work tree.
    datadir = Path(tempfile.gettempdir()) / "mgw-faust" / consumer_group(settings, group_names)
    datadir.parent.mkdir(parents=True, exist_ok=True)
    app = faust.App(
        consumer_group(settings, group_names),
        broker=[f"kafka://{b}" for b in kafka.brokers],
        # Timeouts short enough that a join or a takeover takes seconds, not half a minute.
        broker_session_timeout=kafka.session_timeout_s,
        broker_rebalance_timeout=kafka.rebalance_timeout_s,
        broker_heartbeat_interval=kafka.heartbeat_interval_s,
        broker_commit_interval=kafka.commit_interval_s,
        consumer_auto_offset_reset="earliest",
        producer_acks=-1,
        # Authoritative state lives in Postgres, not in Faust tables (docs/BROKER.md).
        store="memory://",
        datadir=str(datadir),
        web_enabled=False,
        topic_allow_declare=False,
        topic_disable_leader=True,
        stream_wait_empty=False,
    )
    holder = ContextHolder(settings, source="+".join(sorted(group_names)))
    for spec in specs:
        topic = app.topic(
            spec.topic.full_name(kafka.topic_prefix),
            key_serializer="raw",
            value_serializer="raw",
            partitions=kafka.partitions(spec.topic.partitions),
        )
        app.agent(topic, name=spec.name)(_agent_fn(spec, holder))
    for timer in [*timers, OUTBOX_SWEEP]:
        app.timer(timer.interval_s, name=timer.name)(_timer_fn(timer, holder))
        if timer.at_start:
            app.task(_timer_fn(timer, holder))
    for broadcast in broadcasts:
        reader = BroadcastReader(kafka.bootstrap, broadcast, kafka.topic_prefix)
        app.task(broadcast_task(reader, _context_of(broadcast.name, holder)))

    @app.on_before_shutdown.connect
    async def _close(app: Any, **kwargs: Any) -> None:
        await holder.close()

    return app, holder


async def _sweep_outbox(ctx: AgentContext) -> int:
    return await outbox.sweep(ctx.pool, ctx.publisher)


# Every worker may have staged events; any of them publishes what a crashed one left behind.
OUTBOX_SWEEP = TimerSpec("outbox-sweep", "*", 15.0, _sweep_outbox)


def _timer_fn(timer: TimerSpec, holder: ContextHolder):  # type: ignore[no-untyped-def]
    async def run() -> None:
        try:
            await timer.run((await holder.get()).for_agent(timer.name))
        except Exception as exc:
            # A failing periodic task must not stop the worker; it simply runs again next time.
            # One that keeps failing shows in readiness (agents/framework/timers.py).
            timer_health.failed(timer.name, exc)
            logger.exception("{} failed; retrying in {:.0f}s", timer.name, timer.interval_s)
        else:
            timer_health.succeeded(timer.name)

    run.__name__ = timer.name.replace("-", "_")
    run.__qualname__ = run.__name__
    return run


def _context_of(name: str, holder: ContextHolder) -> Callable[[], Awaitable[AgentContext]]:
    async def context() -> AgentContext:
        return (await holder.get()).for_agent(name)

    return context


def _agent_fn(spec: AgentSpec, holder: ContextHolder):  # type: ignore[no-untyped-def]
    context = _context_of(spec.name, holder)

    async def run(stream: faust.StreamT) -> None:
        # Events are acked by us, after their effects are durable; batch_within_s=0: take what
        # is ready, never wait for more (agents/framework/kafka/take.py).
        batches = take_batches(stream, spec.batch_size, spec.batch_within_s)
        await consume(spec, context, batches, record_of, stream.ack)

    run.__name__ = spec.name.replace("-", "_")
    run.__qualname__ = run.__name__
    return run
