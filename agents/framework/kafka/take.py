"""An agent's batches, as Faust's `noack_take` makes them, but costing nothing while idle and, for
agents someone waits on, never waiting to fill.

Faust's take wakes every `within` seconds whether records came or not (every agent of a worker,
every 5 to 50 ms: most of an idle worker's CPU), and waits up to `within` for a batch to fill
even when nothing more is coming. Here the stream sleeps while its buffer is empty, and:

- with `within` > 0, a batch is handed over at the next tick of a `within` grid after its first
  record arrived (so a record waits as long as under Faust's fixed period: up to `within`, half
  of it on average), or as soon as it holds `max_` records;
- with `within` == 0 (`AgentSpec(batch_within_s=TAKE_WHAT_IS_READY)`, kafka/app.py),
  as soon as the agent's queue is empty: an idle agent handles a lone record (a remote
  command, a watchlist add) the moment it arrives, and a busy one still gets big batches, since
  records that arrive while a batch is being handled queue up and are taken together.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import faust
from mode.utils.futures import notify

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
