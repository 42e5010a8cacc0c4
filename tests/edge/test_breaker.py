"""Circuit breakers: the rules as plain functions, then shared state on a real Redis.

Fault tests use a throw-away redis-server (core.embedded.start_redis), never the shared one.
"""

from __future__ import annotations

import asyncio
import sys
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis
from prometheus_client import REGISTRY

from core.config import Settings
from core.embedded import start_redis
from core.resilience.breaker import (
    ACQUIRE,
    CLOSED,
    FAILURE,
    HALF_OPEN,
    OPEN,
    STATE_TTL_S,
    SUCCESS,
    THRESHOLDS,
    BreakerConfig,
    BreakerRegistry,
    CircuitOpen,
    Snapshot,
    state_key,
    transition,
)
from core.resilience.fastredis import fast_fail_client
from tests.helpers import ROOT

NewProcess = Callable[[], BreakerRegistry]
CFG = BreakerConfig(failure_threshold=3, open_timeout_s=0.4, trial_timeout_s=0.8)
WARNING_TEXT = "Redis (circuit breaker state) unreachable"


class Boom(RuntimeError):
    pass


async def fail() -> None:
    raise Boom("dependency down")


async def ok() -> str:
    return "ok"


def run(snap: Snapshot, ops: list[tuple[str, int]]) -> tuple[Snapshot, list[Any]]:
    outcomes = []
    for op, now in ops:
        snap, outcome = transition(snap, op, now, CFG)
        outcomes.append(outcome)
    return snap, outcomes


# ------------------------------------------------------------------ the rules alone


def test_opens_after_threshold_consecutive_failures() -> None:
    snap, outs = run(Snapshot(), [(FAILURE, 0), (FAILURE, 1)])
    assert snap.state == CLOSED and snap.failures == 2
    snap, outs = run(snap, [(FAILURE, 2)])
    assert snap.state == OPEN and outs[-1].transitioned and snap.opened_at_ms == 2


def test_success_resets_the_consecutive_count() -> None:
    ops = [(FAILURE, 0), (FAILURE, 1), (SUCCESS, 2), (FAILURE, 3), (FAILURE, 4)]
    snap, _ = run(Snapshot(), ops)
    assert snap.state == CLOSED and snap.failures == 2


def test_open_rejects_with_the_time_left_then_allows_one_trial() -> None:
    snap = Snapshot(state=OPEN, failures=3, opened_at_ms=1000)
    snap, out = transition(snap, ACQUIRE, 1100, CFG)
    assert not out.allowed and out.retry_in_ms == 300 and snap.state == OPEN
    snap, trial = transition(snap, ACQUIRE, 1400, CFG)
    assert trial.allowed and trial.transitioned and snap.state == HALF_OPEN
    snap, second = transition(snap, ACQUIRE, 1401, CFG)
    assert not second.allowed, "half-open lets exactly one trial through"


def test_half_open_success_closes_and_failure_reopens() -> None:
    half = Snapshot(state=HALF_OPEN, failures=3, opened_at_ms=0, trial_at_ms=500)
    closed, out = transition(half, SUCCESS, 600, CFG)
    assert closed.state == CLOSED and closed.failures == 0 and out.transitioned
    reopened, out = transition(half, FAILURE, 600, CFG)
    assert reopened.state == OPEN and reopened.opened_at_ms == 600 and out.transitioned


def test_a_lost_trial_is_replaced_after_the_trial_timeout() -> None:
    half = Snapshot(state=HALF_OPEN, failures=3, trial_at_ms=1000)
    _, early = transition(half, ACQUIRE, 1000 + 799, CFG)
    snap, late = transition(half, ACQUIRE, 1000 + 800, CFG)
    assert not early.allowed and late.allowed and snap.trial_at_ms == 1800


def test_straggler_success_does_not_close_an_open_breaker() -> None:
    snap, _ = transition(Snapshot(state=OPEN, failures=3, opened_at_ms=5), SUCCESS, 6, CFG)
    assert snap.state == OPEN


def test_domain_thresholds_are_in_the_table() -> None:
    expected = {
        "discovery": (20, 3),
        "sona": (10, 2),
        "playback": (15, 3),
        "sync": (15, 3),
        "default": (10, 2),
    }
    for service, (count, seconds) in expected.items():
        assert (THRESHOLDS[service].failure_threshold, THRESHOLDS[service].open_timeout_s) == (
            count,
            seconds,
        )
    registry = BreakerRegistry()
    assert registry.get("no-such-service").config == THRESHOLDS["default"]
    assert registry.get("openai") is registry.get("openai")


# ------------------------------------------------------------------ on real Redis


@pytest.fixture
def service() -> str:
    return f"svc-{uuid.uuid4().hex[:8]}"


@pytest.fixture
async def new_process(redis_url: str, settings: Settings) -> AsyncIterator[NewProcess]:
    """Registries standing for separate processes: each has its own Redis client."""
    made: list[tuple[BreakerRegistry, aioredis.Redis]] = []

    def make() -> BreakerRegistry:
        reg = BreakerRegistry({"default": CFG})
        client = fast_fail_client(redis_url)
        reg.share_through(client, settings.redis.key_prefix)
        made.append((reg, client))
        return reg

    yield make
    for reg, client in made:
        await reg.close()
        await client.aclose()


async def open_breaker(reg: BreakerRegistry, service: str) -> None:
    breaker = reg.get(service)
    for _ in range(CFG.failure_threshold):
        with pytest.raises(Boom):
            await breaker.call(fail)


async def test_opens_in_redis_and_rejects_fast(
    new_process: NewProcess, service: str, redis_client: aioredis.Redis, settings: Settings
) -> None:
    reg = new_process()
    await open_breaker(reg, service)
    key = state_key(service, settings.redis.key_prefix)
    assert key == f"{settings.redis.key_prefix}:circuit_breaker:{service}:state"
    stored = await redis_client.hgetall(key)
    assert stored[b"state"] == b"open" and stored[b"failures"] == b"3"
    assert 0 < await redis_client.ttl(key) <= STATE_TTL_S

    calls = 0

    async def counted() -> str:
        nonlocal calls
        calls += 1
        return "ok"

    rejected_before = (
        REGISTRY.get_sample_value("circuit_breaker_rejections_total", {"service": service}) or 0
    )
    with pytest.raises(CircuitOpen) as info:
        await reg.get(service).call(counted)
    assert calls == 0, "an open breaker must not call the dependency"
    assert 0 < info.value.retry_after_s <= CFG.open_timeout_s
    assert (
        REGISTRY.get_sample_value("circuit_breaker_rejections_total", {"service": service})
        == rejected_before + 1
    )
    assert REGISTRY.get_sample_value("circuit_breaker_state", {"service": service}) == 2


async def test_half_open_trial_success_closes(new_process: NewProcess, service: str) -> None:
    reg = new_process()
    await open_breaker(reg, service)
    await asyncio.sleep(CFG.open_timeout_s + 0.1)
    assert await reg.get(service).call(ok) == "ok"
    assert await reg.get(service).state() == CLOSED
    # Closed again: the full threshold is needed to open it once more.
    with pytest.raises(Boom):
        await reg.get(service).call(fail)
    assert await reg.get(service).state() == CLOSED


async def test_half_open_trial_failure_reopens(new_process: NewProcess, service: str) -> None:
    reg = new_process()
    await open_breaker(reg, service)
    await asyncio.sleep(CFG.open_timeout_s + 0.1)
    with pytest.raises(Boom):
        await reg.get(service).call(fail)  # the one trial
    assert await reg.get(service).state() == OPEN
    with pytest.raises(CircuitOpen):
        await reg.get(service).call(ok)


async def test_only_one_trial_across_processes(new_process: NewProcess, service: str) -> None:
    a, b = new_process(), new_process()
    await open_breaker(a, service)
    await asyncio.sleep(CFG.open_timeout_s + 0.1)
    release = asyncio.Event()
    entered = asyncio.Event()

    async def slow_trial() -> str:
        entered.set()
        await release.wait()
        return "ok"

    trial = asyncio.create_task(a.get(service).call(slow_trial))
    await entered.wait()
    with pytest.raises(CircuitOpen) as info:
        await b.get(service).call(ok)
    assert info.value.state == HALF_OPEN
    release.set()
    assert await trial == "ok"
    assert await b.get(service).call(ok) == "ok"


async def test_state_is_shared_between_processes(new_process: NewProcess, service: str) -> None:
    a, b = new_process(), new_process()
    # Failures from both processes add up: one process alone never reached the threshold.
    with pytest.raises(Boom):
        await a.get(service).call(fail)
    with pytest.raises(Boom):
        await b.get(service).call(fail)
    with pytest.raises(Boom):
        await a.get(service).call(fail)
    with pytest.raises(CircuitOpen):
        await b.get(service).call(ok)
    assert await b.get(service).state() == OPEN


async def test_open_state_survives_a_process_restart(
    redis_url: str, settings: Settings, service: str
) -> None:
    first = BreakerRegistry({"default": BreakerConfig(3, 30.0)})
    await first.connect(redis_url, settings.redis.key_prefix)
    for _ in range(3):
        with pytest.raises(Boom):
            await first.get(service).call(fail)
    await first.close()  # the "process" ends

    restarted = BreakerRegistry({"default": BreakerConfig(3, 30.0)})
    await restarted.connect(redis_url, settings.redis.key_prefix)
    try:
        with pytest.raises(CircuitOpen) as info:
            await restarted.get(service).call(ok)
        assert info.value.retry_after_s > 25
    finally:
        await restarted.close()


async def test_ignored_exceptions_count_as_the_dependency_answering(
    new_process: NewProcess, service: str
) -> None:
    reg = new_process()
    for _ in range(CFG.failure_threshold + 2):
        with pytest.raises(KeyError):
            async with reg.get(service).guard(ignore=(KeyError,)):
                raise KeyError("not found: the dependency answered")
    assert await reg.get(service).state() == CLOSED


# ------------------------------------------------------------- Redis goes away


async def test_redis_outage_falls_back_to_memory_and_resumes_sharing(
    tmp_path: Path, settings: Settings, service: str, warnings_seen: list[str]
) -> None:
    prefix = settings.redis.key_prefix
    redis_server = start_redis(tmp_path / "redis-1")
    port = redis_server.port
    client = fast_fail_client(redis_server.url)
    reg = BreakerRegistry({"default": CFG})
    reg.share_through(client, prefix, recheck_s=0.5)
    breaker = reg.get(service)
    try:
        assert await breaker.call(ok) == "ok"
        with pytest.raises(Boom):
            await breaker.call(fail)
        assert await client.hget(state_key(service, prefix), "failures") == b"1"

        redis_server.stop()
        # Calls still work, and the breaker still breaks, in memory.
        for _ in range(20):
            assert await breaker.call(ok) == "ok"
        for _ in range(CFG.failure_threshold):
            with pytest.raises(Boom):
                await breaker.call(fail)
        with pytest.raises(CircuitOpen):
            await breaker.call(ok)
        outage_lines = [m for m in warnings_seen if WARNING_TEXT in m]
        assert len(outage_lines) == 1, warnings_seen

        # A new Redis on the same port: after the re-check interval state is shared again.
        redis_server = start_redis(tmp_path / "redis-2", port=port)
        await asyncio.sleep(0.6)
        other_client = fast_fail_client(redis_server.url)
        other = BreakerRegistry({"default": CFG})
        other.share_through(other_client, prefix)
        try:
            # The empty new Redis is authoritative again: closed, whatever memory said.
            assert await breaker.call(ok) == "ok"
            for _ in range(CFG.failure_threshold):
                with pytest.raises(Boom):
                    await breaker.call(fail)
            with pytest.raises(CircuitOpen):
                await other.get(service).call(ok)  # the other process sees it open
            assert await other_client.hget(state_key(service, prefix), "state") == b"open"
        finally:
            await other.close()
            await other_client.aclose()
        assert len([m for m in warnings_seen if WARNING_TEXT in m]) == 1
    finally:
        await reg.close()
        await client.aclose()
        redis_server.stop()


async def test_another_os_process_sees_the_open_breaker(
    redis_url: str, settings: Settings, service: str
) -> None:
    """Not just two clients: a separate interpreter refuses the call this process tripped."""
    here = BreakerRegistry({"default": BreakerConfig(2, 30.0)})
    await here.connect(redis_url, settings.redis.key_prefix)
    try:
        for _ in range(2):
            with pytest.raises(Boom):
                await here.get(service).call(fail)
    finally:
        await here.close()
    script = f"""
import asyncio
from core.resilience import BreakerConfig, BreakerRegistry, CircuitOpen

async def main() -> None:
    reg = BreakerRegistry({{"default": BreakerConfig(2, 30.0)}})
    await reg.connect({redis_url!r}, {settings.redis.key_prefix!r})
    breaker = reg.get({service!r})
    try:
        async with breaker.guard():
            print("called")
    except CircuitOpen as exc:
        print("refused", await breaker.state(), round(exc.retry_after_s))
    await reg.close()

asyncio.run(main())
"""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", script, cwd=ROOT, stdout=asyncio.subprocess.PIPE
    )
    out, _ = await proc.communicate()
    verdict, state, retry = out.decode().split()
    assert (verdict, state) == ("refused", OPEN) and int(retry) > 20
