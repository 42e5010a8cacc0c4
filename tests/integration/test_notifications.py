"""Watchlist alerts end to end: the sync and notifications workers and a gateway as processes
on the real broker, PostgreSQL and Redis. A title on Alice's watchlist arriving on her service
in her region notifies her once, in her inbox and on her device's stream; Bob (another region,
another service) hears nothing; a redelivered availability event notifies nobody again; an inbox
Redis lost is refilled from PostgreSQL (on the next GET, or the next alert); an alert in quiet
hours waits for their end."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis

from agents.framework.context import ContextHolder
from agents.notifications import bursts
from agents.notifications.handlers import overdue_gauge, releaser
from core.observability.metrics import NOTIFICATIONS_OVERDUE
from core.publisher import Publisher
from devtools.bench.sync_clients import SseDevice
from schemas.content import (
    AvailabilityChanged,
    AvailabilityRow,
    AvailabilityType,
    ContentExpiring,
)
from schemas.envelope import wrap
from schemas.sync import notifications_channel
from tests.auth.helpers import bearer, user_token
from tests.conftest import Isolated
from tests.helpers import in_catalog, wait_for
from topics.registry import CONTENT_AVAILABILITY_CHANGED, CONTENT_EXPIRING

pytestmark = pytest.mark.slow

SCOPES = [
    "devices:read",
    "devices:write",
    "watchlist:read",
    "watchlist:write",
    "notifications:read",
    "notifications:write",
]


@dataclass
class Stack:
    http: httpx.AsyncClient
    url: str
    publisher: Publisher


@pytest.fixture
async def stack(spawn, isolated: Isolated) -> AsyncIterator[Stack]:  # type: ignore[no-untyped-def]
    spawn("worker", "sync", "notifications", extra_env=isolated.env)
    gateway = spawn("gateway", extra_env={**isolated.env, "RATE_LIMIT_ENABLED": "false"})
    publisher = Publisher(isolated.settings.kafka, source="test-catalog")
    await publisher.start()
    async with httpx.AsyncClient(base_url=gateway.url, timeout=10) as http:
        yield Stack(http, gateway.url, publisher)
    await publisher.stop()


class Account:
    def __init__(self, stack: Stack, isolated: Isolated, name: str) -> None:
        self.http = stack.http
        self.user_id = f"{name}-{uuid.uuid4().hex[:6]}"
        self.token = user_token(isolated.settings, subject=self.user_id, scopes=SCOPES)
        self.headers = bearer(self.token)
        self.settings = isolated.settings

    def url(self, path: str) -> str:
        return f"/api/v1/users/{self.user_id}{path}"

    async def prefer(self, **preferences: Any) -> None:
        put = await self.http.put(self.url("/preferences"), json=preferences, headers=self.headers)
        assert put.status_code == 202, put.text

        async def applied() -> bool:
            got = await self.http.get(self.url("/preferences"), headers=self.headers)
            return (
                got.status_code == 200
                and got.json()["preferences"]["region"] == (preferences["region"])
            )

        await wait_for(applied, timeout=20, interval=0.1)

    async def watch(self, content_id: uuid.UUID) -> None:
        # No catalog agent runs here: the title is put into the read model the add checks.
        await in_catalog(self.settings, [content_id])
        put = await self.http.put(self.url(f"/watchlist/{content_id}"), headers=self.headers)
        assert put.status_code == 202, put.text

        async def listed() -> bool:
            got = await self.http.get(self.url("/watchlist"), headers=self.headers)
            return got.status_code == 200 and str(content_id) in {
                i["content_id"] for i in got.json()["items"]
            }

        await wait_for(listed, timeout=20, interval=0.1)

    async def register(self, device_id: str) -> None:
        body = {"device_type": "tv", "platform": "tizen", "app_version": "1.0", "device_name": "tv"}
        put = await self.http.put(
            self.url(f"/devices/{device_id}"), json=body, headers=self.headers
        )
        assert put.status_code == 202, put.text

    async def inbox(self) -> dict[str, Any]:
        got = await self.http.get(self.url("/notifications"), headers=self.headers)
        assert got.status_code == 200, got.text
        return got.json()  # type: ignore[no-any-return]


def arrived(content_id: uuid.UUID, platform: str, region: str) -> AvailabilityChanged:
    row = AvailabilityRow(
        platform=platform, region=region, availability_type=AvailabilityType.subscription
    )
    return AvailabilityChanged(canonical_id=content_id, platform=platform, appeared=[row])


def _priced(cents: int, kind: AvailabilityType) -> AvailabilityRow:
    return AvailabilityRow(
        platform="netflix", region="US", availability_type=kind, price_cents=cents, currency="USD"
    )


def notices(device: SseDevice) -> list[dict[str, Any]]:
    return [m["notification"] for m in device.inbox.messages("notification")]


async def test_a_title_arriving_on_her_service_notifies_alice_once_and_not_bob(
    stack: Stack, isolated: Isolated
) -> None:
    alice, bob = Account(stack, isolated, "alice"), Account(stack, isolated, "bob")
    title = uuid.uuid4()
    await alice.prefer(
        # "max" as a user names it; the catalog's offers say hbo_max (the one alias rule).
        services=["netflix", "max"],
        region="US",
        time_zone="America/New_York",
        alerts=["arrived", "leaving_soon", "price_drop"],
    )
    await bob.prefer(services=["hulu"], region="FR")
    for account in (alice, bob):
        await account.watch(title)
        await account.register("tv-1")
    alice_tv = await SseDevice(
        stack.url, alice.user_id, alice.token, "tv-1", channels="notifications"
    ).start()
    bob_tv = await SseDevice(
        stack.url, bob.user_id, bob.token, "tv-1", channels="notifications"
    ).start()
    try:
        cause = wrap(arrived(title, "netflix", "US"), key=str(title), source="test-catalog")
        await stack.publisher.send_envelope(CONTENT_AVAILABILITY_CHANGED, cause)
        heard = await alice_tv.inbox.wait_for(
            lambda h: isinstance(h.body, dict) and h.body.get("kind") == "notification", 20
        )
        assert heard.channel == notifications_channel(alice.user_id)
        note = heard.body["notification"]
        assert (note["kind"], note["content_id"], note["platform"], note["region"]) == (
            "arrived",
            str(title),
            "netflix",
            "US",
        )
        inbox = await alice.inbox()
        assert inbox["unread"] == 1
        assert [i["notification_id"] for i in inbox["items"]] == [note["notification_id"]]

        # Redelivered (a producer's retry, a replay): the same cause notifies nobody again.
        # Then, on the same partition (same key), the title arrives on her other service: once
        # that alert is here, the redelivery was handled before it.
        await stack.publisher.send_envelope(CONTENT_AVAILABILITY_CHANGED, cause)
        other = wrap(arrived(title, "hbo_max", "US"), key=str(title), source="test-catalog")
        await stack.publisher.send_envelope(CONTENT_AVAILABILITY_CHANGED, other)
        await wait_for(lambda: len(notices(alice_tv)) >= 2, timeout=20)
        assert sorted(n["platform"] for n in notices(alice_tv)) == ["hbo_max", "netflix"]
        inbox = await alice.inbox()
        assert inbox["unread"] == 2 and len(inbox["items"]) == 2
        # Newest first, paged.
        first = await alice.http.get(
            alice.url("/notifications"), params={"limit": 1}, headers=alice.headers
        )
        assert first.json()["items"][0]["platform"] == "hbo_max"
        rest = await alice.http.get(
            alice.url("/notifications"),
            params={"limit": 1, "cursor": first.json()["next_cursor"]},
            headers=alice.headers,
        )
        assert [i["platform"] for i in rest.json()["items"]] == ["netflix"]
        assert rest.json()["next_cursor"] is None

        async with isolated.pool.acquire() as conn:
            rows = await conn.fetchval(
                "SELECT count(*) FROM notifications WHERE content_id = $1", title
            )
        assert rows == 2  # Alice's two, none of Bob's
        assert notices(bob_tv) == [] and (await bob.inbox())["items"] == []

        # Read: the unread count drops.
        read = await alice.http.post(
            alice.url(f"/notifications/{note['notification_id']}/read"), headers=alice.headers
        )
        assert read.status_code == 202, read.text
        await wait_for(lambda: _unread(alice, 1), timeout=20, interval=0.1)

        # Redis loses her inbox: her next GET has the agents refill it from PostgreSQL
        # (notifications.lookup), the read one still read.
        prefix = isolated.settings.redis.key_prefix
        redis = aioredis.from_url(isolated.settings.redis.require_url())
        inbox_keys = [
            f"{prefix}:notify:{part}:{alice.user_id}" for part in ("inbox", "items", "unread")
        ]
        try:
            await redis.delete(*inbox_keys)
            refilled = await alice.inbox()
            assert [(i["platform"], i["read"]) for i in refilled["items"]] == [
                ("hbo_max", False),
                ("netflix", True),
            ]
            assert refilled["unread"] == 1
            # Bob was never notified: the agents said so, and his GETs stop asking a while.
            assert (await bob.inbox())["items"] == []
            assert await redis.exists(f"{prefix}:notify:none:{bob.user_id}")
            # Redis loses her preferences too: her GET has the agents render them again.
            await redis.delete(f"{prefix}:notify:prefs:{alice.user_id}")
            again = await alice.http.get(alice.url("/preferences"), headers=alice.headers)
            assert again.status_code == 200, again.text
            assert sorted(again.json()["preferences"]["services"]) == ["hbo_max", "netflix"]
            # Lost again: the next alert (the title leaves netflix) refills it before it adds
            # itself.
            await redis.delete(*inbox_keys)
        finally:
            await redis.aclose()
        leaving = ContentExpiring(
            canonical_id=title,
            platform="netflix",
            region="US",
            expires_at=datetime.now(UTC) + timedelta(days=7),
            window_days=7,
            availability_type=AvailabilityType.subscription,
        )
        await stack.publisher.send_envelope(
            CONTENT_EXPIRING, wrap(leaving, key=str(title), source="test-catalog")
        )
        await wait_for(lambda: len(notices(alice_tv)) >= 3, timeout=20)
        assert notices(alice_tv)[-1]["kind"] == "leaving_soon"
        inbox = await alice.inbox()
        assert [(i["kind"], i["platform"], i["read"]) for i in inbox["items"]] == [
            ("leaving_soon", "netflix", False),
            ("arrived", "hbo_max", False),
            ("arrived", "netflix", True),
        ]
        assert inbox["unread"] == 2

        # A fourth alert within the burst window is held to the end of the slot (then released
        # with whatever else the burst brings, as one digest: the test below).
        rental = AvailabilityType.rental
        cheaper = AvailabilityChanged(
            canonical_id=title,
            platform="netflix",
            changed=[_priced(299, rental)],
            previous=[_priced(399, rental)],
        )
        await stack.publisher.send_envelope(
            CONTENT_AVAILABILITY_CHANGED, wrap(cheaper, key=str(title), source="test-catalog")
        )

        async def held() -> list[Any]:
            async with isolated.pool.acquire() as conn:
                return await conn.fetch(  # type: ignore[no-any-return]
                    "SELECT created_at, deliver_at FROM notifications "
                    "WHERE user_id = $1 AND kind = 'price_drop'",
                    alice.user_id,
                )

        [row] = await wait_for(held, timeout=20, interval=0.1)
        assert row["deliver_at"] == bursts.slot_end(row["created_at"])
        assert len(notices(alice_tv)) == 3
    finally:
        await alice_tv.close()
        await bob_tv.close()


async def _unread(account: Account, count: int) -> bool:
    return (await account.inbox())["unread"] == count


async def test_bad_preferences_are_refused_naming_the_field(
    stack: Stack, isolated: Isolated
) -> None:
    alice = Account(stack, isolated, "alice")
    for body, field in (
        ({"services": ["netflix"], "region": "usa"}, "region"),
        ({"region": "US", "time_zone": "Mars/Olympus"}, "time_zone"),
        ({"region": "US", "alerts": ["everything"]}, "alerts.0"),
        ({"region": "US", "quiet_hours": {"start": "25:00", "end": "07:00"}}, "quiet_hours.start"),
    ):
        put = await alice.http.put(alice.url("/preferences"), json=body, headers=alice.headers)
        assert put.status_code == 422, put.text
        assert field in {f["field"] for f in put.json()["fields"]}, put.text
    missing = await alice.http.get(alice.url("/preferences"), headers=alice.headers)
    assert missing.status_code == 404
    # The agents were asked and found none: the next GETs answer from the mark, not them.
    redis = aioredis.from_url(isolated.settings.redis.require_url())
    try:
        prefix = isolated.settings.redis.key_prefix
        assert await redis.exists(f"{prefix}:notify:noprefs:{alice.user_id}")
    finally:
        await redis.aclose()


async def test_alerts_in_quiet_hours_wait_until_they_end_and_come_as_one_digest(
    stack: Stack, isolated: Isolated
) -> None:
    alice = Account(stack, isolated, "alice")
    title = uuid.uuid4()
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    quiet = {
        "start": (now - timedelta(hours=1)).strftime("%H:%M"),
        "end": (now + timedelta(hours=1)).strftime("%H:%M"),
    }
    await alice.prefer(services=["netflix", "max"], region="US", time_zone="UTC", quiet_hours=quiet)
    await alice.watch(title)
    await alice.register("tv-1")
    tv = await SseDevice(
        stack.url, alice.user_id, alice.token, "tv-1", channels="notifications"
    ).start()
    try:
        for platform in ("netflix", "hbo_max"):
            await stack.publisher.send_envelope(
                CONTENT_AVAILABILITY_CHANGED,
                wrap(arrived(title, platform, "US"), key=str(title), source="test-catalog"),
            )

        async def queued() -> list[datetime | None]:
            async with isolated.pool.acquire() as conn:
                rows = await conn.fetch(
                    "SELECT deliver_at FROM notifications WHERE user_id = $1", alice.user_id
                )
            return [r["deliver_at"] for r in rows]

        held = await wait_for(lambda: _count(queued, 2), timeout=20, interval=0.1)
        assert held == [now + timedelta(hours=1)] * 2
        assert (await alice.inbox())["items"] == [] and tv.inbox.messages() == []

        holder = ContextHolder(isolated.settings, source="test")
        ctx = (await holder.get()).for_agent("notifications-release")
        try:
            # Not due yet: nothing overdue; due 5 minutes ago and not released: 300 s late.
            assert await overdue_gauge(lambda: now + timedelta(minutes=59))(ctx) == 0
            late = await overdue_gauge(lambda: now + timedelta(hours=1, minutes=5))(ctx)
            assert late == 300 and NOTIFICATIONS_OVERDUE._value.get() == 300
            assert await releaser(lambda: now + timedelta(minutes=59))(ctx) == 0
            assert await releaser(lambda: now + timedelta(hours=1))(ctx) == 2
        finally:
            await holder.close()
        digest = await tv.inbox.wait_for(
            lambda h: isinstance(h.body, dict) and h.body.get("kind") == "notification_digest",
            20,
        )
        assert sorted(n["platform"] for n in digest.body["notifications"]) == ["hbo_max", "netflix"]
        await wait_for(lambda: _unread(alice, 2), timeout=20, interval=0.1)
        assert await queued() == [None, None]
        assert tv.inbox.messages("notification") == []  # not also one by one
    finally:
        await tv.close()


async def _count(
    rows: Callable[[], Awaitable[list[datetime | None]]], n: int
) -> list[datetime | None] | None:
    found = await rows()
    return found if len(found) == n else None


async def test_a_later_season_arriving_alerts_the_watchers_of_its_series_once(
    stack: Stack, isolated: Isolated
) -> None:
    alice = Account(stack, isolated, "alice")
    series = uuid.uuid4()
    episodes = {(2, 1): uuid.uuid4(), (2, 2): uuid.uuid4(), (3, 1): uuid.uuid4()}
    async with isolated.pool.acquire() as conn:
        for cid, kind, title in [
            (series, "series", "The Long Series"),
            *[(e, "episode", f"S{s}E{n}") for (s, n), e in episodes.items()],
        ]:
            await conn.execute(
                "INSERT INTO content (canonical_id, content_type, title, doc, "
                "source_updated_at, last_event_id) VALUES ($1, $2, $3, $4, now(), $1)",
                cid,
                kind,
                title,
                {},
            )
        for (season, number), episode in episodes.items():
            await conn.execute(
                "INSERT INTO episodes (canonical_id, series_id, season_number, episode_number) "
                "VALUES ($1, $2, $3, $4)",
                episode,
                series,
                season,
                number,
            )
    await alice.prefer(services=["netflix"], region="US", alerts=["new_season"])
    await alice.watch(series)
    # Season 2 arrives an episode at a time, then season 3: one alert per season. Keyed by
    # the series here (the catalog keys by title) so all three share a partition: once the
    # season 3 alert is in, the second episode of season 2 was handled before it.
    for key in [(2, 1), (2, 2), (3, 1)]:
        await stack.publisher.send_envelope(
            CONTENT_AVAILABILITY_CHANGED,
            wrap(arrived(episodes[key], "netflix", "US"), key=str(series), source="test-catalog"),
        )

    async def two() -> list[Any] | None:
        items = (await alice.inbox())["items"]
        return items if len(items) == 2 else None

    items = await wait_for(two, timeout=20, interval=0.1)
    assert sorted((i["kind"], i["season_number"], i["content_id"], i["title"]) for i in items) == [
        ("new_season", 2, str(series), "The Long Series"),
        ("new_season", 3, str(series), "The Long Series"),
    ]
    async with isolated.pool.acquire() as conn:
        count = await conn.fetchval(
            "SELECT count(*) FROM notifications WHERE user_id = $1", alice.user_id
        )
    assert count == 2
