"""How a worker's periodic tasks are doing, for readiness and metrics.

A timer that raises runs again at its next interval, so one failure is noise; a timer that
keeps failing (a sweep stuck on something) is work silently not done. Readiness reports every
timer, and the `timers` component fails (the worker is degraded) once one has failed
FAILING_AFTER times in a row.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from core.observability.metrics import TIMER_CONSECUTIVE_FAILURES, TIMER_FAILURES
from core.observability.probes import CheckFailed

FAILING_AFTER = 3


@dataclass
class TimerState:
    runs: int = 0
    consecutive_failures: int = 0
    last_success_at: datetime | None = None
    last_failure_at: datetime | None = None
    last_error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "runs": self.runs,
            "consecutive_failures": self.consecutive_failures,
            "last_success_at": self.last_success_at.isoformat() if self.last_success_at else None,
            "last_error": self.last_error,
        }


class TimerHealth:
    def __init__(self) -> None:
        self.states: dict[str, TimerState] = {}

    def succeeded(self, name: str) -> None:
        state = self.states.setdefault(name, TimerState())
        state.runs += 1
        state.consecutive_failures = 0
        state.last_success_at = datetime.now(UTC)
        TIMER_CONSECUTIVE_FAILURES.labels(name).set(0)

    def failed(self, name: str, exc: BaseException) -> None:
        state = self.states.setdefault(name, TimerState())
        state.runs += 1
        state.consecutive_failures += 1
        state.last_failure_at = datetime.now(UTC)
        state.last_error = f"{type(exc).__name__}: {exc}"[:500]
        TIMER_FAILURES.labels(name).inc()
        TIMER_CONSECUTIVE_FAILURES.labels(name).set(state.consecutive_failures)

    async def check(self) -> dict[str, Any]:
        """Readiness component: every timer's state; raises while one keeps failing."""
        failing = {
            name: state
            for name, state in self.states.items()
            if state.consecutive_failures >= FAILING_AFTER
        }
        if failing:
            # Names and counts only: the errors themselves are logged at each failure, and
            # their text (addresses, a driver's message) stays out of readiness bodies.
            raise CheckFailed(
                "; ".join(
                    f"{name} failed {s.consecutive_failures} times in a row (the log has why)"
                    for name, s in sorted(failing.items())
                )
            )
        return {"timers": {name: s.as_dict() for name, s in sorted(self.states.items())}}


# One per worker process: the timers of every group it runs.
timer_health = TimerHealth()
