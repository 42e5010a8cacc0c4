"""The pure parts around storage and serving: progress reports into viewings, the adapter
LRU and its version guard, the source scores, and the cache's time bucket."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest

from agents.sona.adapter_cache import AdapterCache, CachedAdapter
from agents.sona.context import time_bucket
from agents.sona.sources import TitleRow, genre_weights, graph_score, popularity_scores
from agents.sona.viewings import on_progress
from agreements.sona_cache import bucket_at

T0 = datetime(2026, 11, 2, 20, tzinfo=UTC)
CID = uuid.uuid4()


def test_a_title_played_paused_and_finished_is_one_viewing() -> None:
    state, viewing = on_progress(None, CID, 0.2, False, T0)
    assert viewing is None
    state, viewing = on_progress(state, CID, 0.5, False, T0 + timedelta(minutes=30))
    assert viewing is None  # playing, not stopped: not yet
    state, viewing = on_progress(state, CID, 0.95, False, T0 + timedelta(minutes=60))
    assert viewing is not None and viewing.completion == 0.95 and not viewing.rewatch
    state, again = on_progress(state, CID, 0.97, True, T0 + timedelta(minutes=61))
    assert again is None and state.finished_count == 1


def test_stopping_after_30_percent_counts_and_under_does_not() -> None:
    _, short = on_progress(None, CID, 0.29, True, T0)
    assert short is None
    state, viewing = on_progress(None, CID, 0.4, True, T0)
    assert viewing is not None and state.finished_count == 0


def test_starting_over_a_finished_title_and_finishing_is_a_rewatch() -> None:
    state, _ = on_progress(None, CID, 1.0, True, T0)
    state, none = on_progress(state, CID, 0.05, False, T0 + timedelta(days=1))
    assert none is None and not state.counted
    state, viewing = on_progress(state, CID, 1.0, True, T0 + timedelta(days=1, hours=2))
    assert viewing is not None and viewing.rewatch and state.finished_count == 2


def test_the_lru_is_bounded_and_refuses_versions_older_than_announced() -> None:
    cache = AdapterCache(max_entries=2)
    for user in ("a", "b", "c"):
        cache.put(user, CachedAdapter(1, None))
    assert cache.get("a") is None and len(cache) == 2
    cache.announce("b", 2)
    assert cache.get("b") is None
    assert not cache.put("b", CachedAdapter(1, None))  # a load that raced the new version
    assert cache.put("b", CachedAdapter(2, None))
    cache.announce("b", 2)  # hearing our own announcement again evicts nothing
    assert cache.get("b") == CachedAdapter(2, None)
    with pytest.raises(ValueError):
        AdapterCache(0)


def test_source_scores() -> None:
    rows = [TitleRow(uuid.uuid4(), "x", p, ("comedy",), 90) for p in (0.0, 9.0, 99.0)]
    scores = list(popularity_scores(rows).values())
    assert scores[0] == 0.0 and 0.4 < scores[1] < 0.6 and scores[2] == 1.0
    weights = genre_weights({"Comedy": 4, "drama": 1}, {"horror": 0.9})
    assert weights == {"comedy": 1.0, "drama": 0.25}
    assert genre_weights({}, {"horror": 0.9, "drama": 0.45}) == {"horror": 1.0, "drama": 0.5}
    assert graph_score(["drama", "crime"], weights) == (0.25, "drama")
    assert graph_score(["crime"], weights) == (0.0, None)
    assert graph_score(["drama"], {}) == (None, None)


@pytest.mark.parametrize("hour", range(24))
def test_the_cache_buckets_hours_as_the_context_rules_do(hour: int) -> None:
    at = datetime(2026, 11, 2, hour, tzinfo=timezone(timedelta(hours=-5)))
    assert bucket_at(at) is time_bucket(hour)
