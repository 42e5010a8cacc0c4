"""Parental controls on watchlist alerts (docs/AUTH.md, "Profiles and parental controls"):
the sync, notifications and accounts workers and a gateway as processes on the real broker,
PostgreSQL and Redis. Alice's watchlist holds an R-rated horror title and a PG one; both
arrive on her service. Her own stream hears both; a stream bound to her kids profile (a token
with the `profile` claim, or a ticket issued acting as that profile) hears only the PG one,
and the kids inbox lists only it (an alert stored without its title's facts neither).

Through PubNub (the real SDK against the loopback server, Access Manager on, each TV with the
token the gateway granted it): the account's channel is heard by every TV of the account, so
the R-rated title's alert goes out as a `notification_ping` naming it without its title; the
kids TV never hears the title's facts, the parent's TV finds the alert in its inbox. Bob, whose
account has no limited profile, hears the same title's alert whole."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import httpx
import orjson
import pytest
import redis.asyncio as aioredis

from agreements.notifications_read_model import add_page, raw_entry
from core.publisher import Publisher
from devtools.bench.sync_clients import PubNubDevice, SocketDevice, SseDevice
from devtools.bench.sync_pubnub import LoopbackPubNub, PamKeys
from schemas.envelope import wrap
from schemas.notifications import AlertKind, Notification
from schemas.sync import notifications_channel
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
            await add_page(
                redis,
                isolated.settings.redis.key_prefix,
                [raw_entry(alice.user_id, legacy)],
                only_present=False,
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


async def _with_kid(stack: Stack, isolated: Isolated, name: str) -> tuple[Account, str]:
    """An account with every scope and a kids profile `kid`, and a token bound to `kid`."""
    account = Account(stack, isolated, name)
    account.token = user_token(isolated.settings, subject=account.user_id, scopes=ALL_SCOPES)
    account.headers = bearer(account.token)
    kid_token = user_token(
        isolated.settings,
        subject=account.user_id,
        scopes=ALL_SCOPES,
        extra_claims={"profile": "kid"},
    )
    put = await stack.http.put(account.url("/profiles/kid"), json=KIDS, headers=account.headers)
    assert put.status_code == 202, put.text

    async def kid_applied() -> bool:
        got = await stack.http.get(account.url("/profiles"), headers=account.headers)
        return any(p["profile_id"] == "kid" for p in got.json()["profiles"])

    await wait_for(kid_applied, timeout=20, interval=0.1)
    return account, kid_token


async def _pubnub_tv(
    stack: Stack, server: LoopbackPubNub, account: Account, device: str, token: str
) -> PubNubDevice:
    """A TV of `account` registered, granted a PubNub token with `token` (its credential) and
    subscribed to the account's notifications channel."""
    await account.register(device)

    async def registered() -> bool:
        got = await stack.http.get(account.url("/devices"), headers=account.headers)
        return device in {d["device_id"] for d in got.json()["devices"]}

    await wait_for(registered, timeout=20, interval=0.1)
    granted = await stack.http.post(
        account.url("/realtime/token"), headers={**bearer(token), "X-Device-ID": device}
    )
    assert granted.status_code == 200, granted.text
    channel = granted.json()["channels"]["notifications"]
    assert channel == notifications_channel(account.user_id)
    body = granted.json()
    tv = PubNubDevice(server.origin, body["subscribe_key"], device, token=body["token"])
    tv.subscribe(channel)
    return tv


def _bodies(tv: PubNubDevice) -> list[dict[str, Any]]:
    return [h.body for h in tv.inbox.heard if isinstance(h.body, dict)]


async def test_through_pubnub_a_kids_tv_never_hears_an_r_rated_titles_facts(
    spawn,  # type: ignore[no-untyped-def]
    isolated: Isolated,
) -> None:
    keys = PamKeys("pub-kids", "sub-kids", f"sec-kids-{uuid.uuid4().hex}")
    async with LoopbackPubNub(keys) as server:
        env = {
            **isolated.env,
            **server.client_env(),
            "RATE_LIMIT_ENABLED": "false",
        }
        # In a thread: readiness probes the loopback PubNub, which runs on this event loop.
        await asyncio.to_thread(
            spawn, "worker", "sync", "notifications", "accounts", extra_env=env, ready_timeout=120
        )
        gateway = await asyncio.to_thread(spawn, "gateway", extra_env=env)
        publisher = Publisher(isolated.settings.kafka, source="test-catalog")
        await publisher.start()
        tvs: list[PubNubDevice] = []
        try:
            async with httpx.AsyncClient(base_url=gateway.url, timeout=10) as http:
                stack = Stack(http, gateway.url, publisher)
                shining, shrek = await _titles(isolated)
                alice, kid_token = await _with_kid(stack, isolated, "alice")
                bob = Account(stack, isolated, "bob")
                for account in (alice, bob):
                    await account.prefer(services=["netflix"], region="US")
                    for title in (shining, shrek):
                        await account.watch(title)
                adult_tv = await _pubnub_tv(stack, server, alice, "tv-adult", alice.token)
                tvs.append(adult_tv)
                kid_tv = await _pubnub_tv(stack, server, alice, "tv-kid", kid_token)
                tvs.append(kid_tv)
                bob_tv = await _pubnub_tv(stack, server, bob, "tv-bob", bob.token)
                tvs.append(bob_tv)
                # Each TV's handshake and first long-poll: from here on each hears every publish.
                await wait_for(lambda: server.subscribes >= 2 * len(tvs), timeout=10)

                for title in (shining, shrek):
                    cause = wrap(arrived(title, "netflix", "US"), key="one", source="test-catalog")
                    await publisher.send_envelope(CONTENT_AVAILABILITY_CHANGED, cause)
                for tv in tvs:
                    await wait_for(lambda tv=tv: len(_bodies(tv)) >= 2, timeout=30)
                await asyncio.sleep(0.5)  # nothing more is on its way

                # Bob's account has no limited profile: both alerts whole, facts and all.
                bobs = [b["notification"]["title"] for b in _bodies(bob_tv)]
                assert sorted(bobs) == ["Shrek", "The Shining"]
                # Alice's TVs share her channel: the same two messages reach both.
                heard = _bodies(kid_tv)
                assert heard == _bodies(adult_tv) and len(heard) == 2
                kinds = {b["kind"]: b for b in heard}
                assert set(kinds) == {"notification", "notification_ping"}
                # The PG title every profile may see comes whole...
                assert kinds["notification"]["notification"]["title"] == "Shrek"
                # ...the R-rated one only by its id and kind.
                wire = orjson.dumps(heard).decode()
                for fact in ("Shining", "horror", "thriller", str(shining), '"R"'):
                    assert fact not in wire, fact
                (ping,) = kinds["notification_ping"]["notifications"]
                assert ping["kind"] == "arrived"
                # The parent's inbox has it with its facts; the kid's inbox leaves it out.
                adult = {i["notification_id"]: i for i in (await alice.inbox())["items"]}
                assert adult[ping["notification_id"]]["title"] == "The Shining"
                assert adult[ping["notification_id"]]["content_rating"] == "R"
                kid = await http.get(alice.url("/notifications"), headers=bearer(kid_token))
                assert kid.status_code == 200, kid.text
                assert [i["title"] for i in kid.json()["items"]] == ["Shrek"]
                # Every publish was signed and every subscribe carried its granted token.
                assert server.refusals == []
        finally:
            for tv in tvs:
                await tv.close()
            await publisher.stop()
