"""The fetch gate of a worker's consumers (agents/framework/kafka/fetch_wait.py): awake it lets each
fetch go at once; idle it holds a fetch until a wake-up call, from any thread, or its interval."""

from __future__ import annotations

import asyncio
import threading
import time

from agents.framework.kafka.fetch_wait import FetchGate


async def _timed(gate: FetchGate) -> float:
    began = time.monotonic()
    await gate.before_fetch()
    return time.monotonic() - began


async def test_awake_fetches_go_at_once_and_idle_ones_wait_their_interval() -> None:
    gate = FetchGate(idle_interval_s=0.3, awake_s=0.1)
    assert await _timed(gate) < 0.05  # just made: awake
    gate.saw_records()
    assert await _timed(gate) < 0.05
    await asyncio.sleep(0.15)
    assert gate.idle()
    assert 0.25 < await _timed(gate) < 1.0
    assert (gate.fetches, gate.idle_waits) == (3, 1)


async def test_a_wake_up_call_from_another_thread_releases_an_idle_fetch() -> None:
    gate = FetchGate(idle_interval_s=30, awake_s=0.05)
    await gate.before_fetch()  # binds this loop
    await asyncio.sleep(0.1)
    threading.Timer(0.2, gate.wake).start()
    took = await _timed(gate)
    assert 0.15 < took < 5
    assert not gate.idle()  # awake for awake_s after the call
    assert await _timed(gate) < 0.05


async def test_a_call_during_a_fetch_makes_the_next_one_go_at_once() -> None:
    gate = FetchGate(idle_interval_s=30, awake_s=0.05)
    await asyncio.sleep(0.1)
    pending = asyncio.create_task(gate.before_fetch())
    await asyncio.sleep(0.05)  # waiting at the gate
    gate.wake()
    await asyncio.wait_for(pending, 5)
    await asyncio.sleep(0.1)  # idle again, but a call came meanwhile
    gate.wake()
    assert await _timed(gate) < 1


async def test_a_gated_fetch_cancelled_while_waiting_reports_no_records() -> None:
    gate = FetchGate(idle_interval_s=30, awake_s=0.0)
    sent: list[object] = []

    async def fetch(assignment: object, node_id: int, request: object) -> bool:
        sent.append(request)
        return True

    gated = gate.gated(fetch)
    task = asyncio.create_task(gated(None, 0, "request"))
    await asyncio.sleep(0.05)
    task.cancel()
    assert await task is False
    assert sent == []
    gate.wake()
    assert await gated(None, 0, "request") is True
    assert sent == ["request"]


async def test_an_installed_gate_counts_answers_and_slows_the_idle_fetch_routine() -> None:
    gate = FetchGate(idle_interval_s=3.0, awake_s=30)

    async def fetch(assignment: object, node_id: int, request: object) -> bool:
        return False

    class Fetcher:
        _fetcher_timeout = 0.2  # aiokafka's default (consumer_timeout_ms=200)
        _proc_fetch_request = staticmethod(fetch)

    class Consumer:
        _fetcher = Fetcher()

    consumer = Consumer()
    gate.install(consumer)  # type: ignore[arg-type]
    assert consumer._fetcher._fetcher_timeout == 3.0
    assert gate.answers == 0
    await consumer._fetcher._proc_fetch_request(None, 0, "request")
    assert gate.answers == 1
