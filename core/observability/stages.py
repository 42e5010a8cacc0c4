"""Where an agent's batch spends its time: one histogram series per (agent, step).

Operators read it as `mgw_agent_stage_duration_seconds`; `mgw bench ingest` reads the sums of
its own worker to print a breakdown per item.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

from prometheus_client import REGISTRY

from core.observability.metrics import AGENT_STAGE_SECONDS

_SUM = "mgw_agent_stage_duration_seconds_sum"


@contextmanager
def timed(agent: str, stage: str) -> Iterator[None]:
    """Observe the wall time of the block, also when it raises (a failed write took time too)."""
    started = time.perf_counter()
    try:
        yield
    finally:
        observe(agent, stage, time.perf_counter() - started)


def observe(agent: str, stage: str, seconds: float) -> None:
    """For a step that does not fit a block (a commit happens as a `with` ends)."""
    AGENT_STAGE_SECONDS.labels(agent, stage).observe(seconds)


def stage_totals(agent: str) -> dict[str, float]:
    """Seconds spent so far in each stage of `agent` by this process, in first-seen order."""
    totals: dict[str, float] = {}
    for metric in REGISTRY.collect():
        for sample in metric.samples:
            if sample.name == _SUM and sample.labels.get("agent") == agent:
                totals[sample.labels["stage"]] = sample.value
    return totals
