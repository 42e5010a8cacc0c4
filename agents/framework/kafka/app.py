"""The Faust app factory: one app per worker process, agents of the chosen groups, each agent
taking its records in batches (`take_batches`).

An agent's batches are made as Faust's `noack_take` makes them, but costing nothing while idle
and, for agents someone waits on, never waiting to fill.

Faust's take wakes every `within` seconds whether records came or not (every agent of a worker,
every 5 to 50 ms: most of an idle worker's CPU), and waits up to `within` for a batch to fill
even when nothing more is coming. Here the stream sleeps while its buffer is empty, and:

- with `within` > 0, a batch is handed over at the next tick of a `within` grid after its first
  record arrived (so a record waits as long as under Faust's fixed period: up to `within`, half
  of it on average), or as soon as it holds `max_` records;
- with `within` == 0 (`AgentSpec(batch_within_s=TAKE_WHAT_IS_READY)`), as soon as the agent's
  queue is empty: an idle agent handles a lone record (a remote command, a watchlist add) the
  moment it arrives, and a busy one still gets big batches, since records that arrive while a
  batch is being handled queue up and are taken together.
"""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import faust
from loguru import logger
from mode.utils.futures import notify

from agents.framework.context import AgentContext, ContextHolder
from agents.framework.kafka.broadcast import BroadcastReader, broadcast_task
from agents.framework.runtime import AgentSpec, BroadcastSpec, TimerSpec, consume, record_of
from agents.framework.timers import timer_health
from agents.framework.unit_of_work import sweep_outbox
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
    return await sweep_outbox(ctx.pool, ctx.publisher)


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
        # is ready, never wait for more (`take_batches`).
        batches = take_batches(stream, spec.batch_size, spec.batch_within_s)
        await consume(spec, context, batches, record_of, stream.ack)

    run.__name__ = spec.name.replace("-", "_")
    run.__qualname__ = run.__name__
    return run


# Only a guard against a missed wake-up: batches are handed over by `ready`. Long, since each
# wake of each agent of an idle worker costs a few tasks.
_IDLE_WAKE_S = 30.0


async def take_batches(stream: faust.StreamT, max_: int, within: float) -> AsyncIterator[list[Any]]:
    """Yield lists of at most `max_` events (unacked: the caller acks after its effects)."""
    loop = asyncio.get_running_loop()
    buffer: list[Any] = []
    ready = asyncio.Event()
    consumed = asyncio.Event()
    consuming: asyncio.Future[None] | None = None
    due: asyncio.TimerHandle | None = None
    channel = stream.channel.__aiter__()
    queue = channel.queue
    previous_acks = stream.enable_acks

    async def add_to_buffer(value: Any) -> Any:
        nonlocal consuming, due
        try:
            if consuming is not None:
                try:
                    await consuming
                finally:
                    consuming = None
            event = stream.current_event
            if event is None:
                raise RuntimeError("take_batches found no current event")
            buffer.append(event)
            if len(buffer) >= max_:
                ready.set()
                consumed.clear()
                await stream.wait(consumed)  # type: ignore[arg-type]
            elif within == 0:
                if queue.empty():
                    # Nothing else is waiting right now: do not hold this batch back for more.
                    ready.set()
            elif due is None:
                now = loop.time()
                due = loop.call_at(now + within - now % within, ready.set)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            stream.log.exception("Error adding to take buffer: %r", exc)
            await stream.crash(exc)
        return value

    stream.enable_acks = False
    stream.add_processor(add_to_buffer)
    stream._enable_passive(channel)  # type: ignore[attr-defined]
    try:
        while not stream.should_stop:
            await stream.wait_for_stopped(ready, timeout=_IDLE_WAKE_S)  # type: ignore[arg-type]
            if not buffer:
                ready.clear()
                continue
            consuming = loop.create_future()
            try:
                yield list(buffer)
            finally:
                buffer.clear()
                if due is not None:
                    due.cancel()
                    due = None
                notify(consuming)
                ready.clear()
                consumed.set()
    finally:
        if due is not None:
            due.cancel()
        stream.enable_acks = previous_acks
        stream._processors.remove(add_to_buffer)  # type: ignore[attr-defined]
