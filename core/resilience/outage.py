"""One warning per outage of an optional dependency, and a bounded rate of re-tries.

Users of Redis that can do without it (the response cache, the breaker state) ask
`should_try()` before each call: while Redis is down they skip it, and only every
`recheck_s` seconds one call is let through to find out whether it is back. Without this,
every request would pay a connection attempt (or a timeout) to a dead server, and every
failed call would log.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from loguru import logger


class OutageGate:
    def __init__(
        self, what: str, recheck_s: float = 5.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.what = what
        self.recheck_s = recheck_s
        self._clock = clock
        self._down_since: float | None = None
        self._next_try = 0.0

    @property
    def down(self) -> bool:
        return self._down_since is not None

    def should_try(self) -> bool:
        return self._down_since is None or self._clock() >= self._next_try

    def failed(self, exc: BaseException, fallback: str) -> None:
        """Record a failed call; the first failure of an outage logs one warning."""
        now = self._clock()
        self._next_try = now + self.recheck_s
        if self._down_since is None:
            self._down_since = now
            logger.bind(dependency=self.what).warning(
                "{} unreachable ({}: {}); {} until it answers again (re-checked every {:g} s)",
                self.what,
                type(exc).__name__,
                exc,
                fallback,
                self.recheck_s,
            )

    def succeeded(self) -> None:
        if self._down_since is not None:
            lasted = self._clock() - self._down_since
            self._down_since = None
            logger.bind(dependency=self.what).info(
                "{} answers again after {:.1f} s; back to normal operation", self.what, lasted
            )
