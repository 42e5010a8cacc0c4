"""Failed authentications per client address, counted in this process.

A caller that guesses credentials (or a broken client retrying a dead token) causes a storm of
401s. Each failure is counted against the client's address in a one-minute fixed window; past
`RATE_LIMIT_AUTH_FAILURES_PER_MINUTE`, a request from that address carrying a credential is
answered 429 `too_many_auth_failures` before the credential is even parsed, so a storm costs
a dictionary lookup per request: no signature check, no Redis round trip (an API key's lookup
is the one credential check that needs Redis).

In process, not in Redis, on purpose: the point is to make refusing cheaper than checking, and
a Redis round trip per malformed credential is what the bound exists to avoid. With W gateway
processes an address may fail up to W x N times a minute before all of them refuse it; the
bound is against floods, not a precise quota (docs/OPERATIONS.md#bounds).

The address is the ASGI client address: whatever the server put there, which is the socket
peer unless the server was told to trust a proxy's forwarded headers.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

WINDOW_S = 60.0


class FailedAuthentications:
    """Failures per address in a fixed window that starts at the address's first failure."""

    # Expired windows are dropped when the table reaches this size, so an attacker rotating
    # addresses holds at most this many entries (plus those of one window's live addresses).
    PRUNE_AT = 10_000

    def __init__(self, per_minute: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.per_minute = per_minute
        self._clock = clock
        self._windows: dict[str, tuple[int, float]] = {}  # address -> (failures, window end)

    def retry_after_s(self, address: str) -> int | None:
        """Seconds until `address` may try a credential again; None when it may now."""
        held = self._windows.get(address)
        if held is None:
            return None
        count, ends = held
        now = self._clock()
        if ends <= now:
            del self._windows[address]
            return None
        if count < self.per_minute:
            return None
        return max(1, math.ceil(ends - now))

    def record(self, address: str) -> None:
        now = self._clock()
        if len(self._windows) >= self.PRUNE_AT:
            self._windows = {a: w for a, w in self._windows.items() if w[1] > now}
        count, ends = self._windows.get(address, (0, 0.0))
        if ends <= now:
            count, ends = 0, now + WINDOW_S
        self._windows[address] = (count + 1, ends)

    def __len__(self) -> int:
        return len(self._windows)
