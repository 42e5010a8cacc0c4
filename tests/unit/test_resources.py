"""Per-worker resources (agents/framework/resources.py): opened once per worker context on first
use, shared by every agent's view of it, closed newest first, one failing close not keeping the
others open."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from agents.framework.resources import OpenResources, Resource


@dataclass
class Handle:
    name: str
    log: list[str] = field(default_factory=list)


def resource(name: str, log: list[str], fail_close: bool = False) -> Resource[Handle]:
    def open_(ctx: Any) -> Handle:
        log.append(f"open {name} for {ctx}")
        return Handle(name, log)

    async def close(handle: Handle) -> None:
        log.append(f"close {handle.name}")
        if fail_close:
            raise RuntimeError("will not close")

    return Resource(name, open=open_, close=close)


async def test_opened_once_per_worker_and_closed_newest_first() -> None:
    log: list[str] = []
    first, second = resource("first", log, fail_close=True), resource("second", log)
    held = OpenResources()
    a = held.use(first, "worker-1")
    assert held.use(first, "worker-1") is a
    held.use(second, "worker-1")
    assert log == ["open first for worker-1", "open second for worker-1"]

    await held.close()
    # The first one's failure came last and kept nothing else open; a second close is a no-op.
    assert log[2:] == ["close second", "close first"]
    await held.close()
    assert len(log) == 4


async def test_two_workers_in_one_process_get_one_each() -> None:
    log: list[str] = []
    shared = resource("cache", log)
    one, two = OpenResources(), OpenResources()
    assert one.use(shared, "w1") is not two.use(shared, "w2")
    assert log == ["open cache for w1", "open cache for w2"]
