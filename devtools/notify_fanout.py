"""A rough fan-out figure for watchlist alerts on a running `mgw up` (not `mgw bench notify`,
which is not written): seed USERS users who all watch one title, WATCHERS of them in the
region of its arrival (the rest elsewhere), publish the arrival, and time until every
notification is stored and every inbox written (the devices' messages are staged with it).

    set -a; . .mgw/stack.env; set +a
    python -m devtools.notify_fanout 1000000 100000

It writes rows of its own (users `m<run>-<n>`) into the stack's PostgreSQL: use a throw-away
stack.
"""

from __future__ import annotations

import asyncio
import sys
import time
import uuid
from pathlib import Path

import asyncpg
import redis.asyncio as aioredis

from core.config import KafkaSettings
from core.publisher import Publisher
from schemas.content import AvailabilityChanged, AvailabilityRow, AvailabilityType
from topics.registry import CONTENT_AVAILABILITY_CHANGED

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


async def fan_out(users: int, watchers: int, env: dict[str, str]) -> None:
    db = await asyncpg.connect(env["DATABASE_URL"])
    redis = aioredis.from_url(env["REDIS_URL"])
    publisher = Publisher(KafkaSettings(), source="notify-fanout")
    await publisher.start()
    try:
        title, run = uuid.uuid4(), f"m{uuid.uuid4().hex[:6]}-"
        began = time.perf_counter()
        await db.execute(_SEED_PREFERENCES, run, users, watchers)
        await db.execute(_SEED_WATCHLISTS, run, title, users)
        await db.execute("ANALYZE sync_watchlist; ANALYZE notification_preferences")
        seeded = time.perf_counter() - began
        print(f"seeded {users} users ({watchers} in the region) in {seeded:.1f} s")
        row = AvailabilityRow(
            platform="netflix", region="US", availability_type=AvailabilityType.subscription
        )
        event = AvailabilityChanged(canonical_id=title, platform="netflix", appeared=[row])
        sent = time.perf_counter()
        await publisher.publish(CONTENT_AVAILABILITY_CHANGED, event, str(title))
        prefix = env.get("REDIS_KEY_PREFIX", "mgw")
        keys = [f"{prefix}:notify:inbox:{run}{g}" for g in range(1, watchers + 1)]
        stored = False
        while True:
            if not stored:
                count = await db.fetchval(
                    "SELECT count(*) FROM notifications WHERE content_id = $1", title
                )
                if count >= watchers:
                    stored = True
                    print(f"stored {count} notifications in {time.perf_counter() - sent:.1f} s")
            if stored:
                written = 0
                for i in range(0, len(keys), 5000):
                    written += await redis.exists(*keys[i : i + 5000])
                if written >= watchers:
                    took = time.perf_counter() - sent
                    print(f"all {watchers} inboxes written (messages staged) in {took:.1f} s")
                    return
            await asyncio.sleep(0.5)
    finally:
        await publisher.stop()
        await redis.aclose()
        await db.close()


def stack_env(path: Path = Path(".mgw/stack.env")) -> dict[str, str]:
    lines = path.read_text().splitlines()
    return dict(line.strip().split("=", 1) for line in lines if "=" in line)


if __name__ == "__main__":
    asyncio.run(fan_out(int(sys.argv[1]), int(sys.argv[2]), stack_env()))
