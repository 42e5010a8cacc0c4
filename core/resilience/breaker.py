"""Circuit breakers whose state every process shares through Redis.

A breaker per external dependency. Closed: calls go through, and N consecutive failures open
it. Open: calls are refused at once (`CircuitOpen`, with the time to wait) until the open
timeout has passed. Then half-open: exactly one caller, in any process, gets a trial call;
its success closes the breaker, its failure opens it again.

The state is a Redis hash `circuit_breaker:{service}:state` (under the process's Redis key
prefix) with a one-hour TTL, changed only by one Lua script, so concurrent processes cannot
interleave a read and a write, and the clock is Redis's own (TIME), so hosts whose clocks
disagree still agree on when a breaker may be tried again. A process restarted mid-outage
therefore finds the breaker open.

When Redis does not answer, each process falls back to an in-memory breaker of its own (one
warning per outage), re-checks Redis every few seconds and shares state again as soon as it
answers; Redis's state is then authoritative again (what the process learnt alone is not
merged back).

`transition()` is the state machine in plain Python (the in-memory store runs it, unit tests
call it); `_LUA` is the same machine for Redis. Keep the two in step.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, replace
from typing import Any, Protocol, TypeVar

import redis.asyncio as aioredis
from loguru import logger

from core.observability.metrics import CIRCUIT_BREAKER_REJECTIONS, CIRCUIT_BREAKER_STATE
from core.resilience.fastredis import REDIS_ERRORS, fast_fail_client
from core.resilience.outage import OutageGate

T = TypeVar("T")

CLOSED, HALF_OPEN, OPEN = "closed", "half_open", "open"
STATE_VALUES = {CLOSED: 0, HALF_OPEN: 1, OPEN: 2}
ACQUIRE, SUCCESS, FAILURE = "acquire", "success", "failure"

# docs/RULES.md: a breaker's state is kept in Redis for 1 h.
STATE_TTL_S = 3600
# How often a process whose Redis is down tries it again (one call, not every call).
DEFAULT_RECHECK_S = 5.0


@dataclass(frozen=True)
class BreakerConfig:
    failure_threshold: int
    open_timeout_s: float
    # How long a half-open trial may run before another caller may try instead: the trial's
    # process may have died mid-call. Longer than the dependency's own call timeout.
    trial_timeout_s: float = 10.0


DEFAULT = "default"

# The one table of thresholds. The first five are docs/RULES.md's; the rest are ours:
# - openai: calls are slow (10 s client timeout) and billed, outages last minutes, and every
#   caller has a fallback (keyword intents, cached embeddings): give up after 5 and wait 30 s.
# - pubnub: fan-out of live updates, clients resync on reconnect: default count, 5 s pause.
# - qdrant: in-cluster and fast to fail, and search has other strategies: the default.
# - agent_reply: gateway request/reply to agents over Kafka, user-facing like playback/sync.
THRESHOLDS: dict[str, BreakerConfig] = {
    "discovery": BreakerConfig(20, 3.0),
    "sona": BreakerConfig(10, 2.0),
    "playback": BreakerConfig(15, 3.0),
    "sync": BreakerConfig(15, 3.0),
    DEFAULT: BreakerConfig(10, 2.0),
    "openai": BreakerConfig(5, 30.0, trial_timeout_s=15.0),
    "pubnub": BreakerConfig(10, 5.0),
    "qdrant": BreakerConfig(10, 2.0),
    "agent_reply": BreakerConfig(15, 3.0),
}


def state_key(service: str, key_prefix: str = "") -> str:
    """docs/RULES.md's key, inside the deployment's Redis key prefix like every key we write."""
    key = f"circuit_breaker:{service}:state"
    return f"{key_prefix}:{key}" if key_prefix else key


class CircuitOpen(RuntimeError):
    """The breaker refused the call without trying it."""

    def __init__(self, service: str, retry_after_s: float, state: str = OPEN) -> None:
        self.service = service
        self.retry_after_s = retry_after_s
        self.state = state
        super().__init__(
            f"circuit breaker for {service} is {state.replace('_', '-')}; "
            f"retry in {retry_after_s:.2f} s"
        )


@dataclass(frozen=True)
class Snapshot:
    state: str = CLOSED
    failures: int = 0
    opened_at_ms: int = 0
    trial_at_ms: int = 0


@dataclass(frozen=True)
class Outcome:
    allowed: bool
    state: str
    failures: int
    retry_in_ms: int
    transitioned: bool


def transition(
    snap: Snapshot, op: str, now_ms: int, cfg: BreakerConfig
) -> tuple[Snapshot, Outcome]:
    """One step of the breaker: `acquire` before a call, `success` / `failure` after it."""
    open_ms = int(cfg.open_timeout_s * 1000)
    trial_ms = int(cfg.trial_timeout_s * 1000)
    new = snap
    allowed, retry, changed = True, 0, False
    if op == ACQUIRE:
        if snap.state == OPEN:
            if now_ms >= snap.opened_at_ms + open_ms:
                new, changed = replace(snap, state=HALF_OPEN, trial_at_ms=now_ms), True
            else:
                allowed, retry = False, snap.opened_at_ms + open_ms - now_ms
        elif snap.state == HALF_OPEN:
            if now_ms >= snap.trial_at_ms + trial_ms:
                new = replace(snap, trial_at_ms=now_ms)  # the earlier trial was lost
            else:
                allowed, retry = False, min(snap.trial_at_ms + trial_ms - now_ms, open_ms)
    elif op == SUCCESS:
        if snap.state == HALF_OPEN:
            new, changed = replace(snap, state=CLOSED, failures=0), True
        elif snap.state == CLOSED and snap.failures:
            new = replace(snap, failures=0)
        # OPEN: a straggler admitted before the breaker opened proves little; wait for a trial.
    elif op == FAILURE:
        failures = snap.failures + 1
        if snap.state == HALF_OPEN or (snap.state == CLOSED and failures >= cfg.failure_threshold):
            new, changed = replace(snap, state=OPEN, failures=failures, opened_at_ms=now_ms), True
        else:
            new = replace(snap, failures=failures)
    else:
        raise ValueError(f"unknown breaker operation {op!r}")
    return new, Outcome(allowed, new.state, new.failures, retry, changed)


# The same machine as transition(), run atomically inside Redis.
_LUA = """
local key = KEYS[1]
local op = ARGV[1]
local threshold = tonumber(ARGV[2])
local open_ms = tonumber(ARGV[3])
local trial_ms = tonumber(ARGV[4])
local ttl = tonumber(ARGV[5])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local h = redis.call('HMGET', key, 'state', 'failures', 'opened_at', 'trial_at')
local state = h[1] or 'closed'
local failures = tonumber(h[2]) or 0
local opened_at = tonumber(h[3]) or 0
local trial_at = tonumber(h[4]) or 0
local allowed, retry, changed, dirty = 1, 0, 0, false
if op == 'acquire' then
  if state == 'open' then
    if now >= opened_at + open_ms then
      state, trial_at, changed, dirty = 'half_open', now, 1, true
    else
      allowed, retry = 0, opened_at + open_ms - now
    end
  elseif state == 'half_open' then
    if now >= trial_at + trial_ms then
      trial_at, dirty = now, true
    else
      allowed, retry = 0, math.min(trial_at + trial_ms - now, open_ms)
    end
  end
elseif op == 'success' then
  if state == 'half_open' then
    state, failures, changed, dirty = 'closed', 0, 1, true
  elseif state == 'closed' and failures > 0 then
    failures, dirty = 0, true
  end
elseif op == 'failure' then
  failures, dirty = failures + 1, true
  if state == 'half_open' or (state == 'closed' and failures >= threshold) then
    state, opened_at, changed = 'open', now, 1
  end
else
  return redis.error_reply('unknown breaker operation ' .. op)
end
if dirty then
  redis.call('HSET', key, 'state', state, 'failures', failures, 'opened_at', opened_at,
             'trial_at', trial_at, 'updated_at', now)
  redis.call('EXPIRE', key, ttl)
end
return {allowed, state, failures, retry, changed}
"""


class BreakerStore(Protocol):
    async def apply(self, service: str, op: str, cfg: BreakerConfig) -> Outcome: ...

    async def peek(self, service: str) -> str | None: ...


class MemoryStore:
    """Breaker state of this process alone."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._snaps: dict[str, Snapshot] = {}

    async def apply(self, service: str, op: str, cfg: BreakerConfig) -> Outcome:
        now_ms = int(self._clock() * 1000)
        snap, outcome = transition(self._snaps.get(service, Snapshot()), op, now_ms, cfg)
        self._snaps[service] = snap
        return outcome

    async def peek(self, service: str) -> str | None:
        snap = self._snaps.get(service)
        return snap.state if snap else None


class RedisStore:
    """Breaker state shared by every process using this Redis and key prefix."""

    def __init__(self, client: aioredis.Redis, key_prefix: str = "") -> None:
        self._client = client
        self._prefix = key_prefix
        # register_script reloads the script on NOSCRIPT, i.e. after Redis restarted.
        self._script = client.register_script(_LUA)

    def key(self, service: str) -> str:
        return state_key(service, self._prefix)

    async def apply(self, service: str, op: str, cfg: BreakerConfig) -> Outcome:
        allowed, state, failures, retry, changed = await self._script(
            keys=[self.key(service)],
            args=[
                op,
                cfg.failure_threshold,
                int(cfg.open_timeout_s * 1000),
                int(cfg.trial_timeout_s * 1000),
                STATE_TTL_S,
            ],
        )
        state = state.decode() if isinstance(state, bytes) else str(state)
        return Outcome(bool(allowed), state, int(failures), int(retry), bool(changed))

    async def peek(self, service: str) -> str | None:
        raw = await self._client.hget(self.key(service), "state")
        return raw.decode() if isinstance(raw, bytes) else raw


class SharedStore:
    """Redis when it answers, this process's memory when it does not."""

    def __init__(self, redis_store: RedisStore, recheck_s: float = DEFAULT_RECHECK_S) -> None:
        self.redis = redis_store
        self.memory = MemoryStore()
        self.gate = OutageGate("Redis (circuit breaker state)", recheck_s)

    async def apply(self, service: str, op: str, cfg: BreakerConfig) -> Outcome:
        if self.gate.should_try():
            try:
                outcome = await self.redis.apply(service, op, cfg)
            except REDIS_ERRORS as exc:
                self.gate.failed(exc, "circuit breakers keep their state in this process's memory")
            else:
                self.gate.succeeded()
                return outcome
        return await self.memory.apply(service, op, cfg)

    async def peek(self, service: str) -> str | None:
        if self.gate.down:
            return await self.memory.peek(service)
        try:
            return await self.redis.peek(service)
        except REDIS_ERRORS:
            return await self.memory.peek(service)


class CircuitBreaker:
    def __init__(self, service: str, config: BreakerConfig, registry: BreakerRegistry) -> None:
        self.service = service
        self.config = config
        self._registry = registry
        # labels() takes a lock and builds a key; the publish path guards every record.
        self._state_gauge = CIRCUIT_BREAKER_STATE.labels(service)

    async def _apply(self, op: str) -> Outcome:
        outcome = await self._registry.store.apply(self.service, op, self.config)
        self._state_gauge.set(STATE_VALUES.get(outcome.state, 0))
        if outcome.transitioned:
            log = logger.bind(breaker=self.service, state=outcome.state)
            if outcome.state == OPEN:
                log.warning(
                    "circuit breaker {} opened after {} failure(s); calls refused for {:g} s",
                    self.service,
                    outcome.failures,
                    self.config.open_timeout_s,
                )
            elif outcome.state == HALF_OPEN:
                log.info("circuit breaker {} half-open: one trial call", self.service)
            else:
                log.info("circuit breaker {} closed: the trial call succeeded", self.service)
        return outcome

    async def state(self) -> str:
        return await self._registry.store.peek(self.service) or CLOSED

    @asynccontextmanager
    async def guard(self, ignore: tuple[type[BaseException], ...] = ()) -> AsyncIterator[None]:
        """Run the block through the breaker.

        Exceptions of the types in `ignore` are the dependency answering (a 404, a validation
        error) and count as success; cancellation counts as nothing (a lost half-open trial
        is retried after `trial_timeout_s`).
        """
        outcome = await self._apply(ACQUIRE)
        if not outcome.allowed:
            CIRCUIT_BREAKER_REJECTIONS.labels(self.service).inc()
            raise CircuitOpen(self.service, outcome.retry_in_ms / 1000, outcome.state)
        try:
            yield
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            await self._apply(SUCCESS if isinstance(exc, ignore) else FAILURE)
            raise
        await self._apply(SUCCESS)

    async def call(
        self,
        fn: Callable[..., Awaitable[T]],
        *args: Any,
        ignore: tuple[type[BaseException], ...] = (),
        **kwargs: Any,
    ) -> T:
        async with self.guard(ignore):
            return await fn(*args, **kwargs)


class BreakerRegistry:
    """The breakers of one process, by service name, all on one store."""

    def __init__(self, table: dict[str, BreakerConfig] | None = None) -> None:
        self._table = dict(THRESHOLDS if table is None else table)
        self._breakers: dict[str, CircuitBreaker] = {}
        self.store: BreakerStore = MemoryStore()
        self._client: aioredis.Redis | None = None

    def config_for(self, service: str) -> BreakerConfig:
        return self._table.get(service) or self._table.get(DEFAULT) or THRESHOLDS[DEFAULT]

    def get(self, service: str) -> CircuitBreaker:
        breaker = self._breakers.get(service)
        if breaker is None:
            breaker = self._breakers[service] = CircuitBreaker(
                service, self.config_for(service), self
            )
        return breaker

    def share_through(
        self, client: aioredis.Redis, key_prefix: str = "", recheck_s: float = DEFAULT_RECHECK_S
    ) -> None:
        """Keep state in this Redis (the caller owns the client)."""
        self.store = SharedStore(RedisStore(client, key_prefix), recheck_s)

    async def connect(
        self, redis_url: str | None, key_prefix: str = "", recheck_s: float = DEFAULT_RECHECK_S
    ) -> None:
        """Share state through Redis at `redis_url`; without a URL breakers stay per process."""
        await self.close()
        if not redis_url:
            logger.warning("REDIS_URL not set: circuit breakers are per process, not shared")
            return
        self._client = fast_fail_client(redis_url)
        self.share_through(self._client, key_prefix, recheck_s)

    async def close(self) -> None:
        client, self._client = self._client, None
        self.store = MemoryStore()
        if client is not None:
            await client.aclose()

    async def refresh_gauges(self) -> None:
        """Show in this process's metrics the state other processes gave its breakers."""
        for service in list(self._breakers):
            with suppress(*REDIS_ERRORS):
                state = await self.store.peek(service)
                CIRCUIT_BREAKER_STATE.labels(service).set(STATE_VALUES.get(state or CLOSED, 0))


# The process-wide registry: `breakers.get("openai")`.
breakers = BreakerRegistry()
