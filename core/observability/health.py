"""Readiness: check each dependency a process uses, at once, each with its own timeout.

The answer is `{"status": "healthy|degraded|unhealthy", "components": {name: {"status",
"latency_ms", "error", "required"}}, "failing": ["redis: unreachable", ...]}`: `error` is a
short reason (core/observability/reasons.py), never an exception's text, which may name hosts
and addresses (the body is served on the public port; the log has the text). Unhealthy
(HTTP 503) when a required dependency is down, degraded (200) when only optional ones are,
healthy (200) otherwise. What is required for which process is declared in
core/observability/dependencies.py. A component that answers but is not usable yet says what
it is doing instead of "unhealthy" (the read model: "missing", "being rebuilt"; a check raises
NotUsableYet).

The probe of each service (an async callable that raises when the dependency is not usable and
may return extra fields for its component) is in core/observability/probes.py.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from loguru import logger

from core.config import Settings, secret_value
from core.observability.dependencies import (
    KAFKA,
    POSTGRES,
    PUBNUB,
    QDRANT,
    READ_MODEL,
    REDIS,
    Need,
)
from core.observability.probes import (
    DEFAULT_TIMEOUT_S,
    PUBNUB_ORIGIN,
    Check,
    CheckFailed,
    NotUsableYet,
    embedded_qdrant,
    kafka_check,
    postgres_check,
    pubnub_check,
    qdrant_check,
    read_model_check,
    redis_check,
)
from core.observability.reasons import short_reason
from core.redaction import redact_text
from core.resilience.fastredis import fast_fail_client

HEALTHY, DEGRADED, UNHEALTHY = "healthy", "degraded", "unhealthy"


@dataclass(frozen=True)
class ComponentResult:
    name: str
    ok: bool
    latency_ms: float
    required: bool
    error: str | None = None
    details: Mapping[str, Any] = field(default_factory=dict)
    state: str | None = None  # what a component not usable yet is doing

    def as_dict(self) -> dict[str, Any]:
        return {
            **self.details,
            "status": HEALTHY if self.ok else self.state or UNHEALTHY,
            "latency_ms": round(self.latency_ms, 1),
            "error": self.error,
            "required": self.required,
        }


def aggregate(results: list[ComponentResult]) -> tuple[int, dict[str, Any]]:
    """HTTP status and body for these component results."""
    if any(not r.ok and r.required for r in results):
        status, code = UNHEALTHY, 503
    elif any(not r.ok for r in results):
        status, code = DEGRADED, 200
    else:
        status, code = HEALTHY, 200
    failing = [f"{r.name}: {r.error}" for r in results if not r.ok]
    components = {r.name: r.as_dict() for r in results}
    return code, {"status": status, "components": components, "failing": failing}


async def run_check(
    name: str, check: Check | None, required: bool, timeout_s: float
) -> ComponentResult:
    started = time.perf_counter()
    if check is None:
        return ComponentResult(name, False, 0.0, required, "not configured for this process")
    state = None
    try:
        details = await asyncio.wait_for(check(), timeout_s)
    except TimeoutError:
        error = f"no answer within {timeout_s:g} s"
    except NotUsableYet as exc:
        # Our own words (what the component is doing), safe to show.
        state, error = exc.state, str(exc)[:500]
    except CheckFailed as exc:
        error = str(exc)[:500]
    except Exception as exc:
        # The body is served on the public port: a short reason only. The exception's text
        # (hostnames, addresses, a driver's message) goes to the log.
        error = short_reason(exc)
        _log_failure(name, error, exc)
    else:
        _failures.pop(name, None)
        elapsed = (time.perf_counter() - started) * 1000
        return ComponentResult(name, True, elapsed, required, None, dict(details or {}))
    elapsed = (time.perf_counter() - started) * 1000
    return ComponentResult(name, False, elapsed, required, error, state=state)


# The last failure logged per component: a probe polled every few seconds logs a failure
# when it starts or changes, not on every poll.
_failures: dict[str, str] = {}


def _log_failure(name: str, reason: str, exc: BaseException) -> None:
    detail = redact_text(f"{type(exc).__name__}: {exc}")[:1000]
    if _failures.get(name) != detail:
        _failures[name] = detail
        logger.warning("readiness: {} {} ({})", name, reason, detail)


class HealthChecker:
    """The readiness of one process: its dependency table and a check for each entry."""

    def __init__(
        self,
        needs: Mapping[str, Need],
        checks: Mapping[str, Check],
        timeout_s: float = DEFAULT_TIMEOUT_S,
        close: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self.needs = dict(needs)
        self.checks = dict(checks)
        self.timeout_s = timeout_s
        self._close = close

    async def ready(self) -> tuple[int, dict[str, Any]]:
        results = await asyncio.gather(
            *(
                run_check(name, self.checks.get(name), need == Need.REQUIRED, self.timeout_s)
                for name, need in self.needs.items()
            )
        )
        return aggregate(list(results))

    async def close(self) -> None:
        if self._close is not None:
            await self._close()


def standard_checker(
    settings: Settings,
    needs: Mapping[str, Need],
    overrides: Mapping[str, Check] | None = None,
    timeout_s: float = DEFAULT_TIMEOUT_S,
) -> HealthChecker:
    """Checks built from settings for the dependencies in `needs`; `overrides` win."""
    if PUBNUB in needs and not settings.pubnub.subscribe_key:
        # Without its keys the sync workers deliver through the built-in fan-out: PubNub is
        # then no dependency of this process, not a missing one that makes it "degraded".
        needs = {name: need for name, need in needs.items() if name != PUBNUB}
    checks: dict[str, Check] = {}
    redis_client = None
    if KAFKA in needs:
        checks[KAFKA] = kafka_check(settings.kafka.bootstrap, timeout_s)
    if POSTGRES in needs and settings.postgres.url:
        checks[POSTGRES] = postgres_check(settings.postgres.url, timeout_s)
    if REDIS in needs and settings.redis.url:
        redis_client = fast_fail_client(settings.redis.url, timeout_s)
        checks[REDIS] = redis_check(redis_client)
        if READ_MODEL in needs:
            checks[READ_MODEL] = read_model_check(redis_client, settings.redis.key_prefix)
    if QDRANT in needs:
        q = settings.qdrant
        checks[QDRANT] = (
            qdrant_check(q.url, secret_value(q.api_key), timeout_s) if q.url else embedded_qdrant
        )
    if PUBNUB in needs and settings.pubnub.subscribe_key:
        pn = settings.pubnub
        checks[PUBNUB] = pubnub_check(pn.origin or PUBNUB_ORIGIN, pn.ssl, timeout_s)
    checks.update(overrides or {})

    async def close() -> None:
        if redis_client is not None:
            await redis_client.aclose()

    return HealthChecker(needs, checks, timeout_s, close)
