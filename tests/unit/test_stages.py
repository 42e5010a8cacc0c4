"""Stage timings: what an agent's batch spends per step, as Prometheus sums."""

from __future__ import annotations

import gc
import time
import uuid

import pytest

from core.gc_tuning import GEN0_THRESHOLD, tune_for_batches
from core.observability.stages import observe, stage_totals, timed


def test_timed_blocks_add_up_per_agent_and_stage() -> None:
    agent, other = f"a-{uuid.uuid4().hex[:6]}", f"b-{uuid.uuid4().hex[:6]}"
    with timed(agent, "load"):
        time.sleep(0.02)
    with timed(agent, "load"):
        time.sleep(0.01)
    observe(agent, "commit", 0.5)
    with timed(other, "load"):
        pass
    totals = stage_totals(agent)
    assert list(totals) == ["load", "commit"]
    assert 0.03 <= totals["load"] < 0.5
    assert totals["commit"] == pytest.approx(0.5)
    assert set(stage_totals(other)) == {"load"}


def test_a_failing_block_still_counts_its_time() -> None:
    agent = f"a-{uuid.uuid4().hex[:6]}"
    with pytest.raises(RuntimeError), timed(agent, "write"):
        time.sleep(0.01)
        raise RuntimeError("write failed")
    assert stage_totals(agent)["write"] >= 0.01


def test_gc_tuning_raises_the_young_threshold_and_freezes_startup_objects() -> None:
    before = gc.get_threshold()
    try:
        tune_for_batches()
        assert gc.get_threshold()[0] == GEN0_THRESHOLD
        assert gc.get_freeze_count() > 0
    finally:
        gc.set_threshold(*before)
        gc.unfreeze()
