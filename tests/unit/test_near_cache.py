"""The near cache's rules, without Redis: what it may serve and what it must refuse to keep."""

from __future__ import annotations

from gateway.middleware.near_cache import NearCache


def active(ttl_s: float = 1.0, max_entries: int = 100) -> NearCache[str]:
    near = NearCache[str](ttl_s, max_entries)
    near.active = True
    return near


def test_a_copy_is_served_until_the_near_ttl_with_the_seconds_left_in_redis() -> None:
    near = active(ttl_s=2.0)
    assert near.put("k", "body", "t1", redis_left_s=300, seen_invalidations=0, now=10.0)
    assert near.get("k", now=11.0) == ("body", 299.0)
    assert near.get("k", now=12.0) is None  # the near TTL is over
    assert len(near) == 0


def test_a_copy_never_outlives_its_redis_entry() -> None:
    near = active(ttl_s=5.0)
    near.put("k", "body", None, redis_left_s=1, seen_invalidations=0, now=0.0)
    assert near.get("k", now=0.5) is not None
    assert near.get("k", now=1.0) is None


def test_nothing_is_served_or_kept_while_invalidations_are_not_received() -> None:
    near = active()
    near.put("k", "body", "t1", 300, 0, now=0.0)
    near.active = False
    assert near.get("k", now=0.1) is None
    assert not near.put("k2", "body", "t1", 300, near.invalidations, now=0.1)


def test_an_invalidation_drops_every_copy_of_that_title_only() -> None:
    near = active()
    near.put("a", "A", "t1", 300, 0, now=0.0)
    near.put("b", "B", "t1", 300, 0, now=0.0)
    near.put("c", "C", "t2", 300, 0, now=0.0)
    near.invalidate("t1")
    assert near.get("a", now=0.1) is None and near.get("b", now=0.1) is None
    assert near.get("c", now=0.1) == ("C", 299.9)


def test_a_response_read_before_an_invalidation_is_not_kept_after_it() -> None:
    near = active()
    seen = near.invalidations  # the request read Redis here ...
    near.invalidate("t1")  # ... the title changed meanwhile ...
    assert not near.put("k", "stale", "t1", 300, seen, now=0.0)  # ... so its answer is not kept
    assert near.get("k", now=0.0) is None


def test_the_least_recently_used_copy_goes_first_when_full() -> None:
    near = active(max_entries=2)
    near.put("a", "A", None, 300, 0, now=0.0)
    near.put("b", "B", None, 300, 0, now=0.0)
    near.put("a", "A", None, 300, 0, now=0.0)  # used again
    near.put("c", "C", None, 300, 0, now=0.0)
    assert near.get("b", now=0.0) is None
    assert near.get("a", now=0.0) is not None and near.get("c", now=0.0) is not None
