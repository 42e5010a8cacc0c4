"""Faust's livelock detector, at a pace that fits its thresholds.

Faust checks every assigned partition every 2.5 commit intervals (2.5 s here) for a stream or
a commit that has not moved for `stream_processing_timeout` or
`broker_commit_livelock_soft_timeout`, both 5 minutes, yielding to the loop once per
partition. With the ~140 partitions of `worker all` that was a quarter of an idle worker's CPU
(py-spy, `mgw bench idle`), to detect a five-minute stall to within 2.5 s. Checked every
`LIVELOCK_CHECK_S` instead, a stall is still reported, within 5.5 minutes rather than 5.
"""

from __future__ import annotations

import time
from typing import Any

from faust.transport import consumer as faust_consumer

LIVELOCK_CHECK_S = 30.0

_original = faust_consumer.Consumer.verify_all_partitions_active


def pace_livelock_detector(every_s: float = LIVELOCK_CHECK_S) -> None:
    """Let Faust's detector of this process's consumers run at most once per `every_s`."""
    last: dict[int, float] = {}

    async def verify_all_partitions_active(self: Any) -> None:
        now = time.monotonic()
        if now - last.get(id(self), float("-inf")) < every_s:
            return
        last[id(self)] = now
        await _original(self)

    faust_consumer.Consumer.verify_all_partitions_active = verify_all_partitions_active  # type: ignore[method-assign]
