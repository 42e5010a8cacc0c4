"""Which of several versions of one thing wins. Pure.

One rule for every versioned write of the catalog (catalog items, availability-only updates,
trusted canonical records), within a batch and across batches alike: the newest by its
producer's clock wins; of two versions with the same clock, the one applied first (the earlier
in its topic's order) keeps. A later batch can only keep what an earlier one applied, so a
batch keeps the first of its own ties too: how far apart two POSTs arrive must not decide.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable
from datetime import datetime
from typing import TypeVar

T = TypeVar("T")
K = TypeVar("K", bound=Hashable)


def supersedes(clock: datetime, applied: datetime | None) -> bool:
    """Whether a version stamped `clock` replaces the one applied at `applied` (None: nothing
    applied yet). Only a strictly newer clock does: a tie keeps what was applied first."""
    return applied is None or clock > applied


def newest_per_key(
    versions: Iterable[T], key: Callable[[T], K], clock: Callable[[T], datetime]
) -> dict[K, T]:
    """The winning version of each key, in `versions` order (the topic's order)."""
    best: dict[K, T] = {}
    for version in versions:
        k = key(version)
        held = best.get(k)
        if held is None or supersedes(clock(version), clock(held)):
            best[k] = version
    return best
