"""When `mgw up` restarts a child that died, and when it gives up: pure rules, no processes.

A child that ran for a while and then died is restarted at once (after `initial_delay_s`): a
crash after a good run says nothing about the next start. A child that dies while starting, or
soon after it became ready, is in a crash loop: each further restart waits twice as long (up
to `max_delay_s`), and `give_up_after` such failures within `window_s` make `mgw up` give up
(and drain before it stops).
"""

from __future__ import annotations

from dataclasses import dataclass, replace


@dataclass(frozen=True)
class RestartPolicy:
    initial_delay_s: float = 0.5
    factor: float = 2.0
    max_delay_s: float = 30.0
    # Ready for this long: it started fine, whatever kills it later.
    stable_after_s: float = 10.0
    give_up_after: int = 5
    window_s: float = 120.0


@dataclass(frozen=True)
class RestartHistory:
    """What the policy remembers of one child."""

    # Failures since its last stable run (1 after a stable run died).
    consecutive: int = 0
    # Times (monotonic seconds) of failures at start inside the window.
    start_failures: tuple[float, ...] = ()


@dataclass(frozen=True)
class Decision:
    delay_s: float
    failed_at_start: bool
    give_up: bool


def failed_at_start(policy: RestartPolicy, ready_for_s: float | None) -> bool:
    """A child that never became ready (None), or died soon after it did, failed at start."""
    return ready_for_s is None or ready_for_s < policy.stable_after_s


def backoff_delay(policy: RestartPolicy, consecutive: int) -> float:
    """Seconds to wait before restart number `consecutive` of a run of failures (1-based)."""
    if consecutive <= 1:
        return policy.initial_delay_s
    return min(policy.max_delay_s, policy.initial_delay_s * policy.factor ** (consecutive - 1))


def recent(failures: tuple[float, ...], now: float, window_s: float) -> tuple[float, ...]:
    return tuple(t for t in failures if now - t < window_s)


def on_failure(
    policy: RestartPolicy, history: RestartHistory, now: float, ready_for_s: float | None
) -> tuple[RestartHistory, Decision]:
    """The history after a child died (or failed to start) at `now`, and what to do next.

    `ready_for_s` is how long it had been ready when it died; None if it never was.
    """
    at_start = failed_at_start(policy, ready_for_s)
    if at_start:
        failures = (*recent(history.start_failures, now, policy.window_s), now)
        history = replace(history, consecutive=history.consecutive + 1, start_failures=failures)
    else:
        history = RestartHistory(consecutive=1, start_failures=())
    decision = Decision(
        delay_s=backoff_delay(policy, history.consecutive),
        failed_at_start=at_start,
        give_up=len(history.start_failures) >= policy.give_up_after,
    )
    return history, decision
