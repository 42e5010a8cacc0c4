"""Batches that never wait to fill while records are ready: Faust's `noack_take`, except that
a batch is handed over as soon as the agent's queue is empty, not after `within` seconds.

Faust's take waits up to `within` for a batch to fill even when nothing more is coming, so a
lone record (a remote command, a watchlist add) sat there for half that time on average. Here
an idle agent handles a record the moment it arrives, and a busy one still gets big batches:
records that arrive while a batch is being handled queue up and are taken together. Agents
ask for this with `AgentSpec(batch_within_s=0)` (agents/framework/app.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import faust
from mode.utils.futures import notify

# Only a guard against a missed wake-up: batches are handed over by the queue running empty.
_IDLE_WAKE_S = 1.0


async def take_ready(stream: faust.StreamT, max_: int) -> AsyncIterator[list[Any]]:
    """Yield lists of at most `max_` events (unacked: the caller acks after its effects)."""
    buffer: list[Any] = []
    ready = asyncio.Event()
    consumed = asyncio.Event()
    consuming: asyncio.Future[None] | None = None
    channel = stream.channel.__aiter__()
    queue = channel.queue
    previous_acks = stream.enable_acks

    async def add_to_buffer(value: Any) -> Any:
        nonlocal consuming
        try:
            if consuming is not None:
                try:
                    await consuming
                finally:
                    consuming = None
            event = stream.current_event
            if event is None:
                raise RuntimeError("take_ready found no current event")
            buffer.append(event)
            if len(buffer) >= max_:
                ready.set()
                consumed.clear()
                await stream.wait(consumed)  # type: ignore[arg-type]
            elif queue.empty():
                # Nothing else is waiting right now: do not hold this batch back for more.
                ready.set()
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
            consuming = asyncio.get_running_loop().create_future()
            try:
                yield list(buffer)
            finally:
                buffer.clear()
                notify(consuming)
                ready.clear()
                consumed.set()
    finally:
        stream.enable_acks = previous_acks
        stream._processors.remove(add_to_buffer)  # type: ignore[attr-defined]
