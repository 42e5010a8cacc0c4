"""A fan-out page is sent (inboxes, device messages) after its commit, with no outbox row per
notification: a mark per page (migration 0061) committed with it says it is not sent yet. A
try killed between the commit and the sends leaves the mark, and the redelivered cause sends
those notifications, once; a replay of the cause, or another cause of the same alert within the
window, sends nobody anything again (docs/NOTIFICATIONS.md, "Scale")."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import orjson
import pytest
import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError

from agents.framework.context import AgentContext, ContextHolder
from agents.notifications import handlers
from agents.notifications.handlers import _of_change, alert_agent, overdue_gauge
from agreements.sync_realtime import CLAIM_TTL_S, log_key
from core.config import Settings
from core.observability.metrics import NOTIFICATION_PAGES_UNSENT
from schemas.content import AvailabilityChanged, AvailabilityRow, AvailabilityType
from schemas.envelope import Envelope, decode, wrap
from schemas.sync import RealtimeEvent
from tests.helpers import read_topic

NOW = datetime(2026, 12, 7, 6, 0, tzinfo=UTC)
USERS = 3

_SEED_PREFERENCES = """
INSERT INTO notification_preferences
    (user_id, services, region, time_zone, alerts, offer_types, changed_at)
SELECT $1 || lpad(g::text, 3, '0'), '{netflix}', 'US', 'UTC', '{arrived}', '{subscription}',
       now()
FROM generate_series(1, $2) g
"""
_SEED_WATCHLISTS = """
INSERT INTO sync_watchlist (user_id, content_id, state, visible)
SELECT $1 || lpad(g::text, 3, '0'), $2, '{}'::jsonb, true FROM generate_series(1, $3) g
"""


@pytest.fixture
async def ctx(settings: Settings, topics_created: None) -> AsyncIterator[AgentContext]:
    holder = ContextHolder(settings, source="test")
    yield (await holder.get()).for_agent("notifications-availability")
    await holder.close()


def arrival(title: uuid.UUID) -> Envelope[AvailabilityChanged]:
    row = AvailabilityRow(
        platform="netflix", region="US", availability_type=AvailabilityType.subscription
    )
    event = AvailabilityChanged(canonical_id=title, platform="netflix", appeared=[row])
    return wrap(event, key=str(title), source="test-catalog")


async def inbox(ctx: AgentContext, user: str) -> list[bytes]:
    return list(await ctx.redis.zrange(f"{ctx.prefix}:notify:inbox:{user}", 0, -1))


async def _watchers(ctx: AgentContext, count: int = USERS) -> tuple[uuid.UUID, list[str]]:
    """A title and `count` new users with it on their watchlist who want its arrival."""
    title, run = uuid.uuid4(), f"pg{uuid.uuid4().hex[:6]}-"
    await ctx.pool.execute(_SEED_PREFERENCES, run, count)
    await ctx.pool.execute(_SEED_WATCHLISTS, run, title, count)
    return title, [f"{run}{g:03d}" for g in range(1, count + 1)]


async def test_a_page_committed_but_not_sent_is_sent_once_by_the_redelivered_cause(
    ctx: AgentContext,
) -> None:
    title, users = await _watchers(ctx)
    raise_alerts = alert_agent(_of_change, lambda: NOW)
    cause = arrival(title)

    # The try that dies after the commit: Redis is cut off, so neither the inboxes nor the
    # device messages (which follow them) go out.
    unreachable = aioredis.from_url("redis://127.0.0.1:1", socket_connect_timeout=0.5)
    crashed = AgentContext(ctx.settings, ctx.pool, ctx.publisher, unreachable, ctx.agent)
    try:
        with pytest.raises(RedisConnectionError):
            await raise_alerts(crashed, [cause])
    finally:
        await unreachable.aclose()
    stored = await ctx.pool.fetchval(
        "SELECT count(*) FROM notifications WHERE content_id = $1", title
    )
    marks = await ctx.pool.fetchval(
        "SELECT count(*) FROM notification_pages_unsent WHERE cause_id = $1", cause.event_id
    )
    assert (stored, marks) == (USERS, 1)
    assert [await inbox(ctx, u) for u in users] == [[]] * USERS
    # Had the cause been dead-lettered here, the page would wait unsent: the gauge behind
    # MgwNotificationPagesUnsent shows its age (at least: another test's mark may be older).
    await overdue_gauge(lambda: NOW + timedelta(minutes=10))(ctx)
    assert NOTIFICATION_PAGES_UNSENT._value.get() >= 600

    # The redelivered cause sends the marked page; a replay of it, and another cause of the
    # same alert within the window, send nothing again.
    await raise_alerts(ctx, [cause])
    await raise_alerts(ctx, [cause])
    await raise_alerts(ctx, [arrival(title)])

    assert not await ctx.pool.fetchval(
        "SELECT count(*) FROM notification_pages_unsent WHERE cause_id = $1", cause.event_id
    )
    ids = {
        r["user_id"]: str(r["notification_id"]).encode()
        for r in await ctx.pool.fetch(
            "SELECT user_id, notification_id FROM notifications WHERE content_id = $1", title
        )
    }
    for user in users:
        assert await inbox(ctx, user) == [ids[user]]
    sent = await _sent_by_user(ctx, users)
    for user in users:
        assert sent[user] == Counter({ids[user].decode(): 1}), (user, sent[user])
    # Straight through the sink: no sync.realtime record for realtime-deliver to send again.
    assert await _on_sync_realtime(ctx, users) == 0


async def test_a_page_resent_after_its_claims_may_have_expired_goes_to_the_inboxes_only(
    ctx: AgentContext,
) -> None:
    """A cause redelivered long after its try died (a worker down for a while, a dead letter
    replayed later): the first try may have sent some device messages, whose claims have
    expired since, so sending again could reach a device twice. The inboxes get the page; the
    devices read it there."""
    title, users = await _watchers(ctx)
    cause = arrival(title)
    unreachable = aioredis.from_url("redis://127.0.0.1:1", socket_connect_timeout=0.5)
    crashed = AgentContext(ctx.settings, ctx.pool, ctx.publisher, unreachable, ctx.agent)
    try:
        with pytest.raises(RedisConnectionError):
            await alert_agent(_of_change, lambda: NOW)(crashed, [cause])
    finally:
        await unreachable.aclose()

    later = NOW + timedelta(seconds=CLAIM_TTL_S)
    await alert_agent(_of_change, lambda: later)(ctx, [cause])

    assert not await ctx.pool.fetchval(
        "SELECT count(*) FROM notification_pages_unsent WHERE cause_id = $1", cause.event_id
    )
    for user in users:
        assert len(await inbox(ctx, user)) == 1
    sent = await _sent_by_user(ctx, users)
    assert all(not sent[user] for user in users), sent


async def test_a_page_sent_leaves_no_mark_and_a_replay_sends_nothing(ctx: AgentContext) -> None:
    title, users = await _watchers(ctx)
    raise_alerts = alert_agent(_of_change, lambda: NOW)
    cause = arrival(title)
    await raise_alerts(ctx, [cause])
    assert not await ctx.pool.fetchval(
        "SELECT count(*) FROM notification_pages_unsent WHERE cause_id = $1", cause.event_id
    )
    await raise_alerts(ctx, [cause])
    for user in users:
        assert len(await inbox(ctx, user)) == 1
    sent = await _sent_by_user(ctx, users)
    assert all(sum(sent[user].values()) == 1 for user in users), sent


async def _sent_by_user(ctx: AgentContext, users: list[str]) -> dict[str, Counter[str]]:
    """The notification messages each user's devices were sent (by notification id): the
    realtime sink's per-user delivery log, which holds every message the fan-out published
    on the user's live channel (agreements/sync_realtime.py)."""
    async with ctx.redis.pipeline(transaction=False) as pipe:
        for user in users:
            pipe.xrange(log_key(ctx.prefix, user))
        logs = await pipe.execute()
    sent: dict[str, Counter[str]] = {}
    for user, entries in zip(users, logs, strict=True):
        messages = [orjson.loads(fields[b"m"]) for _, fields in entries]
        sent[user] = Counter(
            m["notification"]["notification_id"] for m in messages if m["kind"] == "notification"
        )
    return sent


async def _on_sync_realtime(ctx: AgentContext, users: list[str]) -> int:
    """How many sync.realtime records are keyed by one of these users."""
    topic = f"{ctx.settings.kafka.topic_prefix}.sync.realtime"
    records = await read_topic(ctx.settings.kafka.bootstrap, topic, settle_s=0.3)
    keys = {u.encode() for u in users}
    return sum(1 for r in records if r.key in keys and decode(r.value, RealtimeEvent))


async def test_overlapping_pages_and_chunks_send_each_user_once_even_across_a_failure(
    ctx: AgentContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Pages of 2 then 3 users and sends of 2 at a time: pages are planned, stored and sent
    overlapping, and a page's sends come in chunks. The inbox writes fail from the fourth
    call on (Redis gone mid-fan-out): the try fails with some pages sent, some stored and not
    sent, some not stored. The cause's next try sends the stored ones and stores the rest:
    every user is in the inbox once and sent one message."""
    monkeypatch.setattr(handlers, "FIRST_PAGE", 2)
    monkeypatch.setattr(handlers, "PAGE", 3)
    monkeypatch.setattr(handlers, "PAGE_CALL", 2)
    title, users = await _watchers(ctx, 14)
    raise_alerts = alert_agent(_of_change, lambda: NOW)
    cause = arrival(title)
    calls = 0
    real_add_page = handlers.add_page

    async def failing_add_page(*args: object, **kwargs: object) -> set[str]:
        nonlocal calls
        calls += 1
        if calls >= 4:
            raise RedisConnectionError("Redis went away")
        return await real_add_page(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(handlers, "add_page", failing_add_page)
    with pytest.raises(RedisConnectionError):
        await raise_alerts(ctx, [cause])
    stored = await ctx.pool.fetchval(
        "SELECT count(*) FROM notifications WHERE content_id = $1", title
    )
    marks = await ctx.pool.fetchval(
        "SELECT count(*) FROM notification_pages_unsent WHERE cause_id = $1", cause.event_id
    )
    in_inbox = [u for u in users if await inbox(ctx, u)]
    assert 0 < len(in_inbox) < stored < len(users) and marks >= 1, (in_inbox, stored, marks)

    monkeypatch.setattr(handlers, "add_page", real_add_page)
    await raise_alerts(ctx, [cause])
    await raise_alerts(ctx, [cause])

    assert not await ctx.pool.fetchval(
        "SELECT count(*) FROM notification_pages_unsent WHERE cause_id = $1", cause.event_id
    )
    ids = {
        r["user_id"]: str(r["notification_id"])
        for r in await ctx.pool.fetch(
            "SELECT user_id, notification_id FROM notifications WHERE content_id = $1", title
        )
    }
    assert sorted(ids) == users
    sent = await _sent_by_user(ctx, users)
    for user in users:
        assert await inbox(ctx, user) == [ids[user].encode()], user
        assert sent[user] == Counter({ids[user]: 1}), (user, sent[user])
