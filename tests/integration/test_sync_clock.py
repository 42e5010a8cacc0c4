"""The users' clocks (gateway/sync_clock.py) in the real Redis, stamped from several gateway
processes (each its own Redis client) for users whose devices send skewed stamps.

Properties, over generated sequences of operations:
- a later operation of a user, stamped by the gateway, comes after every earlier one of the
  same user, whichever process took each and whatever the user's devices sent;
- no user's clock moves another's: a gateway stamp is never ahead of both Redis's time and
  the user's own latest stamp, however far ahead other users' devices run;
- a client stamp is the operation's stamp as sent, or refused when it leads by more than
  MAX_CLOCK_AHEAD_S, and a refused stamp moves no clock.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
import redis.asyncio as aioredis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.config import Settings
from gateway.sync_clock import ClockTooFarAhead, clock_key, stamp
from schemas.sync import HLC, MAX_CLOCK_AHEAD_S

PROCESSES = 3
USERS = 3


@pytest.fixture
async def processes(redis_url: str) -> AsyncIterator[list[aioredis.Redis]]:
    """One Redis client per gateway process."""
    clients = [aioredis.from_url(redis_url) for _ in range(PROCESSES)]
    yield clients
    for client in clients:
        await client.aclose()


def now_us() -> int:
    # Redis runs on this machine: its TIME and ours agree to well within the margins below.
    return time.time_ns() // 1000


@dataclass(frozen=True)
class Operation:
    user: int
    process: int
    # None: the client sends no stamp. Otherwise its clock's offset from real time, in s.
    skew_s: float | None
    logical: int = 0

    @property
    def refused(self) -> bool:
        return self.skew_s is not None and self.skew_s > MAX_CLOCK_AHEAD_S


# Kept clear of the 60 s limit, so the time the test takes cannot move a stamp across it.
SKEWS = st.one_of(
    st.none(),
    st.floats(min_value=-7 * 86400, max_value=-0.001),  # behind: an offline device replays
    st.floats(min_value=0, max_value=MAX_CLOCK_AHEAD_S - 5),  # ahead, tolerated
    st.floats(min_value=MAX_CLOCK_AHEAD_S + 5, max_value=10**9),  # too far ahead
)
OPERATIONS = st.lists(
    st.builds(
        Operation,
        user=st.integers(0, USERS - 1),
        process=st.integers(0, PROCESSES - 1),
        skew_s=SKEWS,
        logical=st.integers(0, 3),
    ),
    min_size=1,
    max_size=40,
)


def successor_bound(latest: HLC | None, wall_us: int) -> tuple[int, int]:
    """The latest a gateway stamp may be: Redis's time, or just past the user's own latest."""
    if latest is None:
        return (wall_us, 0)
    return max((wall_us, 0), (latest.physical_us + 1, 0))


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(operations=OPERATIONS)
async def test_a_users_later_operation_wins_and_no_users_clock_moves_anothers(
    processes: list[aioredis.Redis], settings: Settings, operations: list[Operation]
) -> None:
    prefix = settings.redis.key_prefix
    users = [f"clock-{uuid.uuid4().hex[:10]}" for _ in range(USERS)]
    latest: dict[int, HLC] = {}
    for op in operations:
        redis, user = processes[op.process], users[op.user]
        sent = None
        if op.skew_s is not None:
            sent = HLC(physical_us=now_us() + int(op.skew_s * 1_000_000), logical=op.logical)
        before = await redis.hgetall(clock_key(prefix, user))
        try:
            got = await stamp(redis, prefix, user, sent)
        except ClockTooFarAhead:
            assert op.refused, op
            assert await redis.hgetall(clock_key(prefix, user)) == before
            continue
        assert not op.refused, op
        wall_after = now_us()
        if sent is not None:
            assert got == sent
        else:
            held = latest.get(op.user)
            if held is not None:
                assert got.order() > held.order(), (op, held, got)
            assert got.order() <= successor_bound(held, wall_after), (op, held, got)
        latest[op.user] = max(latest.get(op.user, got), got, key=HLC.order)


async def test_concurrent_operations_of_one_user_from_every_process_get_distinct_stamps(
    processes: list[aioredis.Redis], settings: Settings
) -> None:
    prefix, user = settings.redis.key_prefix, f"clock-{uuid.uuid4().hex[:10]}"
    stamps = await asyncio.gather(
        *(stamp(processes[n % PROCESSES], prefix, user) for n in range(300))
    )
    assert len({s.order() for s in stamps}) == 300


async def test_a_clock_is_forgotten_only_after_any_accepted_lead_has_passed(
    processes: list[aioredis.Redis], settings: Settings
) -> None:
    prefix, user = settings.redis.key_prefix, f"clock-{uuid.uuid4().hex[:10]}"
    ahead = HLC(physical_us=now_us() + (MAX_CLOCK_AHEAD_S - 1) * 1_000_000)
    await stamp(processes[0], prefix, user, ahead)
    ttl = await processes[1].ttl(clock_key(prefix, user))
    assert ttl > MAX_CLOCK_AHEAD_S
    assert (await stamp(processes[1], prefix, user)).order() > ahead.order()
