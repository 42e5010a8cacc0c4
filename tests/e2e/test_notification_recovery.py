"""The notifications worker SIGKILLed mid-fan-out (issue 28, item 3): a title arrives on the
service of thousands of users who watch it, the worker dies while it raises their pages, and
its successor finishes. Every eligible user gets exactly one notification: one row, one inbox
entry (unread), one realtime message delivered (by id); users of another region none."""

from __future__ import annotations

import asyncio
import signal
import time
import uuid
from collections import Counter

import orjson
import pytest
import redis.asyncio as aioredis

from agents.notifications.handlers import FIRST_PAGE, PAGE
from agreements.sync_realtime import log_key
from core.publisher import Publisher
from schemas.content import AvailabilityChanged, AvailabilityRow, AvailabilityType
from tests.conftest import Isolated
from tests.helpers import wait_for
from topics.registry import CONTENT_AVAILABILITY_CHANGED

pytestmark = pytest.mark.slow

# A first page of FIRST_PAGE and two of PAGE (agents/notifications/handlers.py): a fan-out of
# seconds on this machine, so the kill lands between pages, with some delivered and some not
# yet raised.
ELIGIBLE = FIRST_PAGE + 2 * PAGE
ELSEWHERE = 1000

_SEED_PREFERENCES = """
INSERT INTO notification_preferences
    (user_id, services, region, time_zone, alerts, offer_types, changed_at)
SELECT $1 || g, '{netflix}', CASE WHEN g <= $3 THEN 'US' ELSE 'FR' END, 'UTC', '{arrived}',
       '{subscription}', now()
FROM generate_series(1, $2) g
"""
_SEED_WATCHLISTS = """
INSERT INTO sync_watchlist (user_id, content_id, state, visible)
SELECT $1 || g, $2, '{}'::jsonb, true FROM generate_series(1, $3) g
"""


async def test_a_worker_killed_mid_fan_out_notifies_every_eligible_user_exactly_once(
    spawn,
    isolated: Isolated,  # type: ignore[no-untyped-def]
) -> None:
    pool, settings = isolated.pool, isolated.settings
    prefix = settings.redis.key_prefix
    title, run = uuid.uuid4(), f"k{uuid.uuid4().hex[:6]}-"
    users = [f"{run}{g}" for g in range(1, ELIGIBLE + 1)]
    await pool.execute(_SEED_PREFERENCES, run, ELIGIBLE + ELSEWHERE, ELIGIBLE)
    await pool.execute(_SEED_WATCHLISTS, run, title, ELIGIBLE + ELSEWHERE)

    # No sync worker: the notifications worker sends the device messages itself, through its
    # realtime sink (docs/NOTIFICATIONS.md, "Scale"); a message left on sync.realtime would
    # not be heard here.
    first = await asyncio.to_thread(spawn, "worker", "notifications", extra_env=isolated.env)
    publisher = Publisher(settings.kafka, source="test-catalog")
    await publisher.start()
    try:
        row = AvailabilityRow(
            platform="netflix", region="US", availability_type=AvailabilityType.subscription
        )
        arrival = AvailabilityChanged(canonical_id=title, platform="netflix", appeared=[row])
        await publisher.publish(CONTENT_AVAILABILITY_CHANGED, arrival, key=str(title))
    finally:
        await publisher.stop()

    async def stored() -> int:
        return int(
            await pool.fetchval("SELECT count(*) FROM notifications WHERE content_id = $1", title)
        )

    async def raising() -> bool:
        return 0 < await stored() < ELIGIBLE

    await wait_for(raising, timeout=60, interval=0.005)
    first.popen.send_signal(signal.SIGKILL)
    first.popen.wait(10)
    at_kill = await stored()
    # Otherwise this test would test nothing: the fan-out had to be cut short.
    assert 0 < at_kill < ELIGIBLE, at_kill

    await asyncio.to_thread(spawn, "worker", "notifications", extra_env=isolated.env)
    restarted = time.perf_counter()
    redis = aioredis.from_url(settings.redis.require_url())
    try:

        async def all_delivered() -> dict[str, list[dict[str, object]]] | None:
            if await stored() < ELIGIBLE or await pool.fetchval("SELECT count(*) FROM outbox"):
                return None
            heard = await _notifications_heard(redis, prefix, users)
            return heard if all(heard.values()) else None

        heard = await wait_for(all_delivered, timeout=300, interval=1)
        # The figure (pytest -s shows it): where the kill fell, how long the successor took.
        took = time.perf_counter() - restarted
        print(f"killed at {at_kill}/{ELIGIBLE} stored; all delivered {took:.1f} s after restart")
        # Let anything still in flight (a redelivered batch) land before counting.
        await asyncio.sleep(3)
        heard = await _notifications_heard(redis, prefix, users)

        rows = await pool.fetch(
            "SELECT user_id, notification_id, deliver_at FROM notifications WHERE content_id = $1",
            title,
        )
        ids = {r["user_id"]: str(r["notification_id"]) for r in rows}
        # One row per eligible user (the unique key), none for the users of another region,
        # none held back.
        assert len(rows) == ELIGIBLE and set(ids) == set(users)
        assert all(r["deliver_at"] is None for r in rows)

        inboxes = await _inboxes(redis, prefix, users)
        for user in users:
            members, items, unread = inboxes[user]
            assert members == items == unread == [ids[user]], (user, inboxes[user])
            messages = Counter(
                str(m["notification"]["notification_id"])  # type: ignore[index]
                for m in heard[user]
            )
            assert messages == Counter({ids[user]: 1}), (user, heard[user])
        elsewhere = [f"{run}{g}" for g in range(ELIGIBLE + 1, ELIGIBLE + ELSEWHERE + 1)]
        assert await redis.exists(*(f"{prefix}:notify:inbox:{u}" for u in elsewhere)) == 0
        assert not any((await _notifications_heard(redis, prefix, elsewhere)).values())
    finally:
        await redis.aclose()


async def _notifications_heard(
    redis: aioredis.Redis, prefix: str, users: list[str]
) -> dict[str, list[dict[str, object]]]:
    """Each user's notification messages as their devices receive them (the delivery log)."""
    async with redis.pipeline(transaction=False) as pipe:
        for user in users:
            pipe.xrange(log_key(prefix, user))
        logs = await pipe.execute()
    out = {}
    for user, entries in zip(users, logs, strict=True):
        messages = [orjson.loads(fields[b"m"]) for _, fields in entries]
        out[user] = [m for m in messages if m.get("kind") == "notification"]
    return out


async def _inboxes(
    redis: aioredis.Redis, prefix: str, users: list[str]
) -> dict[str, tuple[list[str], list[str], list[str]]]:
    """Each user's inbox read model: the sorted set's ids, the hash's, the unread set's."""
    async with redis.pipeline(transaction=False) as pipe:
        for user in users:
            base = f"{prefix}:notify"
            pipe.zrange(f"{base}:inbox:{user}", 0, -1)
            pipe.hkeys(f"{base}:items:{user}")
            pipe.smembers(f"{base}:unread:{user}")
        found = await pipe.execute()
    out = {}
    for n, user in enumerate(users):
        members, items, unread = found[3 * n : 3 * n + 3]
        out[user] = (
            sorted(m.decode() for m in members),
            sorted(i.decode() for i in items),
            sorted(u.decode() for u in unread),
        )
    return out
