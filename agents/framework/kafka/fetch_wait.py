"""How a worker's consumer waits for records: briefly at the broker while records flow, on its
own side while idle.

Faust hard-codes a 1.5 s fetch wait. Apache Kafka answers a waiting fetch as soon as records
arrive, so the wait only bounds idle polling there. Tansu (the embedded and test broker) does
not: a record arriving during a fetch waits for the fetch to time out, which made every hop of
an agent cost up to ~0.75 s (measured with aiokafka alone: p50 270 ms at a 1000 ms wait, 8 ms at
20 ms; docs/SYNC.md). So the wait is a setting, KAFKA_FETCH_MAX_WAIT_MS (10 ms).

Fetching every 10 ms is a busy poll, though: an idle `mgw up` stack spent a third of a core on
it (the broker a quarter, the worker a tenth). So the consumer is gated (`FetchGate`): awake,
it fetches as aiokafka does; after `AWAKE_S` with neither a record nor a wake-up call from our
producers (core/broker_wakeup.py), each fetch first waits on this side for such a call, or
KAFKA_IDLE_FETCH_INTERVAL_MS at most. The gate sits in front of aiokafka's one fetch request
per broker (`Fetcher._proc_fetch_request`), so assignment changes cancel its wait like they
cancel a fetch, and a call that arrives during a fetch makes the next one go at once.

aiokafka's fetch routine also wakes every `consumer_timeout_ms` (200 ms) with nothing to do,
walking every assigned partition to find its fetch still in flight: a tenth of an idle
worker's CPU with ~140 partitions. Every event it acts on (a fetch answered, records consumed,
a partition resumed, an assignment or metadata change) wakes it anyway, so a gated consumer
sets that timeout to the idle interval (`ROUTINE_TIMEOUT_MS` without a gate).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiokafka import AIOKafkaConsumer
from faust.transport.drivers import aiokafka as faust_aiokafka

from core.broker_wakeup import AWAKE_S

_original = faust_aiokafka.AIOKafkaConsumerThread._create_worker_consumer
# aiokafka's own default: how long its fetch routine sleeps when no event wakes it.
ROUTINE_TIMEOUT_MS = 200
_wait_ms: int | None = None
_gate: FetchGate | None = None


class FetchGate:
    """Whether the next fetch goes now, or waits for a wake-up call or the idle interval.

    One gate serves every consumer of a process, whichever loop it runs on (Faust's on a thread
    and loop of its own, others on the worker's), and `wake()` may be called from any thread.
    """

    def __init__(self, idle_interval_s: float, awake_s: float = AWAKE_S) -> None:
        self.idle_interval_s = idle_interval_s
        # Fetches answered (the offset guard checks again only after one: offset_guard.py).
        self.answers = 0
        self.awake_s = awake_s
        self._last_activity = time.monotonic()
        # The wake-up call as each loop awaits it (an asyncio.Event belongs to one loop).
        self._called: dict[asyncio.AbstractEventLoop, asyncio.Event] = {}
        # Fetches sent, and those sent after an idle wait (for tests).
        self.fetches = 0
        self.idle_waits = 0

    def wake(self) -> None:
        self._last_activity = time.monotonic()
        for loop, called in list(self._called.items()):
            if not loop.is_closed():
                loop.call_soon_threadsafe(called.set)

    def saw_records(self) -> None:
        self._last_activity = time.monotonic()

    def idle(self) -> bool:
        return time.monotonic() - self._last_activity >= self.awake_s

    async def before_fetch(self) -> None:
        loop = asyncio.get_running_loop()
        called = self._called.get(loop)
        if called is None:
            called = self._called[loop] = asyncio.Event()
        self.fetches += 1
        if not self.idle():
            called.clear()
            return
        self.idle_waits += 1
        try:
            async with asyncio.timeout(self.idle_interval_s):
                await called.wait()
        except TimeoutError:
            pass
        called.clear()

    def gated(
        self, fetch: Callable[[Any, int, Any], Awaitable[bool]]
    ) -> Callable[[Any, int, Any], Awaitable[bool]]:
        """aiokafka's `Fetcher._proc_fetch_request`, waiting at this gate first; it returns
        whether the fetch added records."""

        async def fetch_when_due(assignment: Any, node_id: int, request: Any) -> bool:
            try:
                await self.before_fetch()
            except asyncio.CancelledError:
                # The fetch routine cancels its pending fetches on an assignment change and
                # on close, and expects them to return False then (aiokafka does the same).
                return False
            got_records = await fetch(assignment, node_id, request)
            self.answers += 1
            if got_records:
                self.saw_records()
            return got_records

        return fetch_when_due

    def install(self, consumer: AIOKafkaConsumer) -> None:
        """Gate a started consumer's fetches. Its fetch routine looks the method up on each
        round, so an instance attribute set now is used from the next fetch on."""
        fetcher = consumer._fetcher
        fetcher._proc_fetch_request = self.gated(fetcher._proc_fetch_request)
        # Read at each round of the routine (its timeout when no event wakes it).
        fetcher._fetcher_timeout = max(ROUTINE_TIMEOUT_MS / 1000, self.idle_interval_s)


def gate_fetches(consumer: AIOKafkaConsumer) -> None:
    """Gate a started consumer of this process like its agents' (no-op without a gate): for
    the other consumers a worker runs, e.g. broadcast.py."""
    if _gate is not None:
        _gate.install(consumer)


def _create_worker_consumer(self: Any, transport: Any) -> Any:
    consumer = _original(self, transport)
    if _wait_ms is not None:
        # Read by aiokafka when the consumer starts (its fetcher is made then).
        consumer._fetch_max_wait_ms = _wait_ms
    gate = _gate
    if gate is not None:
        start = consumer.start

        async def start_gated() -> None:
            await start()
            gate.install(consumer)

        consumer.start = start_gated
    return consumer


def use_fetch_max_wait(wait_ms: int, idle_interval_ms: int = 0) -> FetchGate | None:
    """Make this process's Faust consumers wait at most `wait_ms` per fetch at the broker and,
    with `idle_interval_ms`, gate them while idle; returns the gate to wake (None without)."""
    global _wait_ms, _gate
    _wait_ms = wait_ms
    _gate = FetchGate(idle_interval_ms / 1000) if idle_interval_ms > 0 else None
    faust_aiokafka.AIOKafkaConsumerThread._create_worker_consumer = _create_worker_consumer  # type: ignore[method-assign]
    return _gate
