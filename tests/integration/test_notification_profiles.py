"""Parental controls on watchlist alerts (docs/AUTH.md, "Profiles and parental controls"):
the sync, notifications and accounts workers and a gateway as processes on the real broker,
PostgreSQL and Redis. Alice's watchlist holds an R-rated horror title and a PG one; both
arrive on her service. Her own stream hears both; a stream bound to her kids profile (a token
with the `profile` claim, or a ticket issued acting as that profile) hears only the PG one,
and the kids inbox lists only it (an alert stored without its title's facts neither)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import httpx
import pytest
import redis.asyncio as aioredis

from agreements.notifications_read_model import add_many
from core.publisher import Publisher
from devtools.bench.sync_clients import SocketDevice, SseDevice
from schemas.envelope import wrap
from schemas.notifications import AlertKind, Notification
from tests.auth.helpers import bearer, user_token
from tests.conftest import Isolated
from tests.helpers import wait_for
from tests.integration.test_notifications import SCOPES, Account, Stack, arrived
from topics.registry import CONTENT_AVAILABILITY_CHANGED

pytestmark = pytest.mark.slow

ALL_SCOPES = [*SCOPES, "profiles:read", "profiles:write"]
KIDS = {
    "name": "Kid",
    "kind": "kids",
    "limits": {"content_rating_limit": "PG", "blocked_genres": ["horror"]},
}


@pytest.fixture
async def stack(spawn, isolated: Isolated) -> AsyncIterator[Stack]:  # type: ignore[no-untyped-def]
    spawn("worker", "sync", "notifications", "accounts", extra_env=isolated.env)
    gateway = spawn("gateway", extra_env={**isolated.env, "RATE_LIMIT_ENABLED": "false"})
    publisher = Publisher(isolated.settings.kafka, source="test-catalog")
    await publisher.start()
    async with httpx.AsyncClient(base_url=gateway.url, timeout=10) as http:
        yield Stack(http, gateway.url, publisher)
    await publisher.stop()


async def _titles(isolated: Isolated) -> tuple[uuid.UUID, uuid.UUID]:
    shining, shrek = uuid.uuid4(), uuid.uuid4()
    async with isolated.pool.acquire() as conn:
        for cid, title, rating, genres in [
            (shining, "The Shining", "R", ["horror", "thriller"]),
            (shrek, "Shrek", "PG", ["animation", "family"]),
        ]:
            await conn.execute(
                "INSERT INTO content (canonical_id, content_type, title, doc, "
                "source_updated_at, last_event_id) VALUES ($1, 'movie', $2, $3, now(), $1)",
                cid,
                title,
                {"maturity_rating": rating, "genres": genres},
            )
    return shining, shrek


def _ticket_stream(stack: Stack, user_id: str, ticket: str) -> SseDevice:
    """A stream opened as EventSource does: `?ticket=`, no Authorization header."""
    device = SseDevice(stack.url, user_id, "unused", channels="notifications")
    device._headers = {}
    device._params["ticket"] = ticket
    return device


async def test_a_kids_stream_and_inbox_never_get_an_r_rated_titles_alert(
    stack: Stack, isolated: Isolated
) -> None:
    alice = Account(stack, isolated, "alice")
    alice.token = user_token(isolated.settings, subject=alice.user_id, scopes=ALL_SCOPES)
    alice.headers = bearer(alice.token)
    kid_token = user_token(
        isolated.settings,
        subject=alice.user_id,
        scopes=ALL_SCOPES,
        extra_claims={"profile": "kid"},
    )
    as_kid = {**alice.headers, "X-Profile-ID": "kid"}
    shining, shrek = await _titles(isolated)
    put = await stack.http.put(alice.url("/profiles/kid"), json=KIDS, headers=alice.headers)
    assert put.status_code == 202, put.text

    async def kid_applied() -> bool:
        got = await stack.http.get(alice.url("/profiles"), headers=alice.headers)
        return any(p["profile_id"] == "kid" for p in got.json()["profiles"])

    await wait_for(kid_applied, timeout=20, interval=0.1)
    await alice.prefer(services=["netflix"], region="US")
    for title in (shining, shrek):
        await alice.watch(title)
    for device in ("tv-adult", "tv-kid", "tv-browser", "tv-socket", "tv-socket-ticket"):
        await alice.register(device)
    asked = await stack.http.post(
        alice.url("/stream/ticket"), headers={**as_kid, "X-Device-ID": "tv-browser"}
    )
    assert asked.status_code == 200, asked.text
    # A ticket asked for with the bound token carries its profile too.
    socket_ticket = await stack.http.post(
        alice.url("/stream/ticket"),
        headers={**bearer(kid_token), "X-Device-ID": "tv-socket-ticket"},
    )
    assert socket_ticket.status_code == 200, socket_ticket.text
    adult_tv = SseDevice(stack.url, alice.user_id, alice.token, "tv-adult", "notifications")
    kid_tv = SseDevice(stack.url, alice.user_id, kid_token, "tv-kid", "notifications")
    kid_browser = _ticket_stream(stack, alice.user_id, asked.json()["ticket"])
    streams = [adult_tv, kid_tv, kid_browser]
    for stream in streams:
        await stream.start()
        assert stream.status == 200
    kid_socket = SocketDevice(stack.url, alice.user_id, kid_token, "tv-socket", "notifications")
    kid_ticket_socket = SocketDevice(
        stack.url,
        alice.user_id,
        None,
        "tv-socket-ticket",
        "notifications",
        ticket=socket_ticket.json()["ticket"],
    )
    sockets = [kid_socket, kid_ticket_socket]
    for socket in sockets:
        await socket.start()
        assert socket.status == 101, socket.refusal
    devices: list[SseDevice | SocketDevice] = [*streams, *sockets]
    try:
        # One key: the R-rated title's alert is handled (and passed over) before the PG one.
        for title in (shining, shrek):
            cause = wrap(arrived(title, "netflix", "US"), key="one", source="test-catalog")
            await stack.publisher.send_envelope(CONTENT_AVAILABILITY_CHANGED, cause)

        def heard(device: SseDevice | SocketDevice) -> list[str]:
            return [m["notification"]["title"] for m in device.inbox.messages("notification")]

        await wait_for(lambda: len(heard(adult_tv)) >= 2, timeout=20)
        assert heard(adult_tv) == ["The Shining", "Shrek"]
        note = adult_tv.inbox.messages("notification")[0]["notification"]
        assert (note["content_rating"], note["genres"]) == ("R", ["horror", "thriller"])
        for kid_device in (kid_tv, kid_browser, *sockets):
            await wait_for(lambda d=kid_device: heard(d), timeout=20)
            assert heard(kid_device) == ["Shrek"]

        # An alert stored before notifications carried their title's facts: unknown, so the
        # kids inbox leaves it out too.
        legacy = Notification(
            notification_id=uuid.uuid4(),
            kind=AlertKind.arrived,
            content_id=uuid.uuid4(),
            title="Old Alert",
            platform="netflix",
            region="US",
            offer_types=["subscription"],
            created_at=datetime.now(UTC),
        )
        redis = aioredis.from_url(isolated.settings.redis.require_url())
        try:
            await add_many(
                redis, isolated.settings.redis.key_prefix, [(alice.user_id, legacy, False)]
            )
        finally:
            await redis.aclose()
        adult = await alice.inbox()
        assert [i["title"] for i in adult["items"]] == ["Old Alert", "Shrek", "The Shining"]
        assert adult["unread"] == 3
        for headers in (as_kid, bearer(kid_token)):
            kid = await stack.http.get(alice.url("/notifications"), headers=headers)
            assert kid.status_code == 200, kid.text
            assert [i["title"] for i in kid.json()["items"]] == ["Shrek"]
            assert kid.json()["unread"] == 1 and kid.json()["next_cursor"] is None
        # Paged: the cursor walks the entries the profile may see.
        first = await stack.http.get(
            alice.url("/notifications"), params={"limit": 1}, headers=alice.headers
        )
        assert first.json()["next_cursor"] is not None
        kid_first = await stack.http.get(
            alice.url("/notifications"), params={"limit": 1}, headers=as_kid
        )
        assert [i["title"] for i in kid_first.json()["items"]] == ["Shrek"]
        assert kid_first.json()["next_cursor"] is None
    finally:
        for device in devices:
            await device.close()
