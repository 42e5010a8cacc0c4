"""Inbound frame budgets per device: a token bucket each (pure, no I/O).

A device may send `rate` frames a second on average and `burst` at once; a frame past that
closes its socket with 1008 (docs/DEVICE_PROTOCOL.md). The bucket is the device's, shared by
every socket it holds on this process, so opening a second socket buys no second budget.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field


@dataclass
class Bucket:
    rate: float
    burst: int
    tokens: float = field(init=False)
    at: float = field(default_factory=time.monotonic)
    holders: int = 0

    def __post_init__(self) -> None:
        self.tokens = float(self.burst)

    def take(self, now: float | None = None) -> bool:
        """One frame: True while within budget."""
        now = time.monotonic() if now is None else now
        self.tokens = min(self.burst, self.tokens + (now - self.at) * self.rate)
        self.at = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True


class Budgets:
    """The buckets of the devices holding sockets on this process."""

    def __init__(self, rate: float, burst: int) -> None:
        self.rate, self.burst = rate, burst
        self._buckets: dict[tuple[str, str], Bucket] = {}

    def hold(self, user_id: str, device_id: str) -> Bucket:
        bucket = self._buckets.setdefault((user_id, device_id), Bucket(self.rate, self.burst))
        bucket.holders += 1
        return bucket

    def release(self, user_id: str, device_id: str) -> None:
        bucket = self._buckets.get((user_id, device_id))
        if bucket is not None:
            bucket.holders -= 1
            if bucket.holders <= 0:
                del self._buckets[(user_id, device_id)]
