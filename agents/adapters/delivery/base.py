"""The delivery interface (its two implementations are fanout.py and pubnub.py) and the
failures every implementation reports the same way."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from schemas.sync import RealtimeEvent


class RealtimeUnavailable(ConnectionError):
    """The realtime service did not take a message; retrying later may succeed (transient:
    the agent loop waits and retries the batch without acknowledging it)."""


class DeliveryRejected(ValueError):
    """The realtime service refused a message for good (too large, bad channel): the agent
    loop sets that record aside in the dead-letter topic."""


class RealtimeSink(Protocol):
    name: str

    async def deliver(self, events: Sequence[RealtimeEvent]) -> int:
        """Send in order, skipping message ids sent before; how many were sent now."""
        ...

    async def close(self) -> None: ...
