"""A worker that stops (SIGTERM: a drain) closes its resources last: its agents and timers are
stopped first, and whatever they still do meanwhile finds the pool, Redis and the producer open.

Found by hand: a SIGTERM of `mgw worker all` under load logged `notifications-availability:
transient failure, retrying: InterfaceError('pool is closing')` and a second `worker resources
open` while it stopped. Faust's `on_before_shutdown`, where the resources were closed, fires
before the app stops its agents and timers; an agent still on its batch then retried on a
closed pool, and a timer's `holder.get()` opened a second pool and producer nobody closed."""

from __future__ import annotations

import asyncio

import pytest

from agents.framework.kafka.app import create_app
from core.config import Settings


async def test_work_still_running_when_the_worker_stops_finds_its_resources_open(
    settings: Settings, topics_created: None
) -> None:
    app, holder = create_app(settings, ["stoptest"], [])
    ctx = await holder.get()
    running = asyncio.Event()
    seen: list[object] = []

    async def timer_in_flight() -> None:
        running.set()
        try:
            await asyncio.sleep(3600)
        finally:
            # Stopped mid-run, it finishes what it was doing: one more query.
            try:
                seen.append(await ctx.pool.fetchval("SELECT 1"))
            except Exception as exc:  # the pool closed under it
                seen.append(exc)
            seen.append(holder.current)

    app.add_future(timer_in_flight())
    await asyncio.wait_for(running.wait(), 10)
    await asyncio.wait_for(app.stop(), 30)

    assert seen[0] == 1, f"the timer's query failed while the worker stopped: {seen[0]!r}"
    assert seen[1] is ctx, "the resources were closed before the timers stopped"
    # ... and closed once everything stopped; a late caller gets no second set.
    assert holder.current is None and ctx.pool.is_closing()
    with pytest.raises(RuntimeError, match="stopped"):
        await holder.get()
