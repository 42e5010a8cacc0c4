"""The restart rules of `mgw up` (cli/restart_policy.py) and the backlog arithmetic of its drain
(cli/backlog.py)."""

from __future__ import annotations

import pytest

from cli.backlog import (
    ENRICHMENT_DUE,
    OUTBOX,
    Backlog,
    OffsetPastEnd,
    describe,
    left_by_topic,
    up_consumer_group,
)
from cli.restart_policy import (
    RestartHistory,
    RestartPolicy,
    backoff_delay,
    failed_at_start,
    on_failure,
)

POLICY = RestartPolicy(
    initial_delay_s=0.5, factor=2.0, max_delay_s=8.0, stable_after_s=10, give_up_after=3
)


def test_backoff_doubles_up_to_the_ceiling() -> None:
    delays = [backoff_delay(POLICY, n) for n in range(1, 8)]
    assert delays == [0.5, 1.0, 2.0, 4.0, 8.0, 8.0, 8.0]


@pytest.mark.parametrize(("ready_for", "at_start"), [(None, True), (9.9, True), (10.0, False)])
def test_a_child_that_never_got_ready_or_died_soon_after_failed_at_start(
    ready_for: float | None, at_start: bool
) -> None:
    assert failed_at_start(POLICY, ready_for) is at_start


def test_a_crash_loop_backs_off_and_gives_up_after_n_failures_in_the_window() -> None:
    history = RestartHistory()
    decisions = []
    for now in (0.0, 1.0, 3.0):
        history, decision = on_failure(POLICY, history, now, ready_for_s=None)
        decisions.append(decision)
    assert [d.delay_s for d in decisions] == [0.5, 1.0, 2.0]
    assert [d.give_up for d in decisions] == [False, False, True]
    assert all(d.failed_at_start for d in decisions)


def test_failures_outside_the_window_are_forgotten() -> None:
    history = RestartHistory()
    history, _ = on_failure(POLICY, history, 0.0, ready_for_s=None)
    history, _ = on_failure(POLICY, history, 1.0, ready_for_s=None)
    later = 0.5 + POLICY.window_s  # the first failure has left the window, the second not
    history, decision = on_failure(POLICY, history, later, ready_for_s=None)
    assert not decision.give_up
    assert history.start_failures == (1.0, later)


def test_a_death_after_a_stable_run_restarts_at_once_and_clears_the_record() -> None:
    history = RestartHistory()
    history, _ = on_failure(POLICY, history, 0.0, ready_for_s=None)
    history, _ = on_failure(POLICY, history, 1.0, ready_for_s=2.0)
    history, decision = on_failure(POLICY, history, 100.0, ready_for_s=60.0)
    assert decision.delay_s == POLICY.initial_delay_s
    assert not decision.failed_at_start and not decision.give_up
    assert history == RestartHistory(consecutive=1, start_failures=())
    # Killed over and over after good runs (a kill drill): never a reason to give up.
    for i in range(10):
        history, decision = on_failure(POLICY, history, 200.0 + i * 30, ready_for_s=25.0)
        assert not decision.give_up


def test_backlog_is_counted_per_topic_never_charged_to_every_agent_of_it() -> None:
    # Under `mgw up` one consumer group runs every agent: its committed offset on a topic is
    # where the slowest agent of the topic is, so a count per worker group would charge the
    # read model with the enrichment's backlog on content.ingested.
    backlog = Backlog({"content.raw": 7, "content.ingested": 3, "sync.watchlist": 0}, outbox=2)
    assert backlog.total == 12 and not backlog.drained
    assert left_by_topic(backlog) == {"content.ingested": 3, "content.raw": 7, OUTBOX: 2}
    assert describe(backlog) == "12 events left: content.ingested 3, content.raw 7, outbox 2"


def test_titles_due_for_enrichment_are_work_left_though_their_events_are_acknowledged() -> None:
    # An event is acknowledged once the sweep claimed its title: the lag says 0 while the
    # sweep still embeds; stopping then would leave the title unenriched until the next start.
    due = Backlog({"content.ingested": 0}, enrichment_due=54)
    assert due.total == 0 and not due.drained
    assert left_by_topic(due) == {ENRICHMENT_DUE: 54}
    assert describe(due) == "0 events left; 54 title(s) due for enrichment"
    assert describe(Backlog({"content.raw": 0})) == "0 events left"
    assert Backlog({"content.raw": 0}).drained


def test_an_offset_past_the_log_end_is_reported_and_never_drained() -> None:
    lost = OffsetPastEnd("content.submitted", 3, committed=157, end=66)
    backlog = Backlog({"content.submitted": 0}, past_end=(lost,))
    assert backlog.total == 0
    assert not backlog.drained
    assert describe(backlog) == (
        "0 events left; committed offsets past the log end (the broker lost records; the "
        "worker reads these partitions again from their start): content.submitted[3] 157 > 66"
    )


def test_the_drained_consumer_group_is_the_one_the_worker_joins() -> None:
    from agents.framework.kafka.app import consumer_group
    from core.config import load_settings

    settings = load_settings()
    prefix = settings.kafka.topic_prefix
    assert up_consumer_group(prefix, ["all"]) == consumer_group(settings, ["all"])
    assert up_consumer_group(prefix, ["sync", "ingestion"]) == consumer_group(
        settings, ["sync", "ingestion"]
    )
