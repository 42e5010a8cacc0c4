"""Browsers on the stream: a ticket opens it without an Authorization header (EventSource
sends none), once, for its user and device, within its 60 s; tickets are stored hashed and
never logged. CORS answers only the configured origins."""

from __future__ import annotations

import asyncio
import hashlib
import time
import uuid

import httpx
import pytest
import redis.asyncio as aioredis

from core.config import ConfigError, GatewaySettings, RealtimeSettings, Settings, settings_with
from core.observability.metrics import AUTH_FAILURES, REALTIME_TICKETS
from gateway.realtime.tickets import TicketClaims, TicketRefused, issue_ticket, redeem_ticket
from tests.auth.helpers import bearer, register_devices, remove_device, user_token
from tests.edge.stream_clients import EventSourceLike, served_gateway

SCOPES = ["devices:read", "watchlist:read"]


def counter(metric: object, *labels: str) -> float:
    return metric.labels(*labels)._value.get()  # type: ignore[attr-defined,no-any-return]


def with_realtime(settings: Settings, **values: object) -> Settings:
    realtime = RealtimeSettings(**{**settings.realtime.model_dump(), **values})  # type: ignore[arg-type]
    return settings.model_copy(update={"realtime": realtime})


async def ticket_for(
    http: httpx.AsyncClient, user: str, token: str, device: str = "web-1"
) -> dict[str, object]:
    answer = await http.post(
        f"/api/v1/users/{user}/stream/ticket",
        headers={**bearer(token), "X-Device-ID": device},
    )
    assert answer.status_code == 200, answer.text
    assert answer.headers["cache-control"] == "no-store"
    return answer.json()  # type: ignore[no-any-return]


async def refused(base: str, url: str) -> dict[str, object]:
    source = EventSourceLike(base + url)
    try:
        answer = await source.open()
        assert answer.status_code == 401, answer.text
        assert answer.headers["content-type"] == "application/problem+json"
        return answer.json()  # type: ignore[no-any-return]
    finally:
        await source.close()


async def test_an_eventsource_opens_the_stream_with_a_ticket_once(
    settings: Settings,
    topics_created: None,
    redis_client: aioredis.Redis,
    log_messages: list[str],
) -> None:
    user, other = f"web-{uuid.uuid4().hex[:8]}", f"web-{uuid.uuid4().hex[:8]}"
    token = user_token(settings, subject=user, scopes=SCOPES)
    async with served_gateway(settings) as (_, base), httpx.AsyncClient(base_url=base) as http:
        await register_devices(http, settings, user, "web-1")
        issued_before = counter(REALTIME_TICKETS, "issued")
        ticket = await ticket_for(http, user, token)
        assert counter(REALTIME_TICKETS, "issued") == issued_before + 1
        secret = str(ticket["ticket"])
        assert ticket["device_id"] == "web-1" and 55 <= int(ticket["expires_in_s"]) <= 60  # type: ignore[call-overload]
        assert ticket["stream_url"] == f"/api/v1/users/{user}/stream?ticket={secret}"
        # Stored as its hash only, with its 60 s.
        prefix = settings.redis.key_prefix
        digest = hashlib.sha256(secret.encode()).hexdigest()
        key = f"{prefix}:rt:ticket:{digest}"
        assert 55_000 <= await redis_client.pttl(key) <= 60_000
        async for stored in redis_client.scan_iter(match=f"{prefix}:rt:ticket:*"):
            assert secret.encode() not in stored
            assert secret.encode() not in (await redis_client.get(stored) or b"")

        source = EventSourceLike(base + str(ticket["stream_url"]))
        try:
            answer = await source.open()
            assert answer.status_code == 200
            assert answer.headers["content-type"].startswith("text/event-stream")
            ready = await source.wait_event("ready")
            assert ready.data["device_id"] == "web-1"  # type: ignore[index]
            assert sorted(ready.data["channels"]) == [  # type: ignore[index]
                f"user.{user}.devices",
                f"user.{user}.notifications",
                f"user.{user}.sync",
            ]
        finally:
            await source.close()
        assert await redis_client.exists(key) == 0

        # Used once: a second redemption (a replayed URL) is refused.
        again = await refused(base, str(ticket["stream_url"]))
        assert (again["error"], again["status"]) == ("invalid_ticket", 401)
        assert "already used" in str(again["detail"])
        assert again["fields"] == [{"field": "query.ticket", "reason": again["detail"]}]

        # Another user's path: refused, and the ticket is spent by the attempt.
        stolen = await ticket_for(http, user, token)
        wrong = await refused(base, f"/api/v1/users/{other}/stream?ticket={stolen['ticket']}")
        assert wrong["error"] == "invalid_ticket" and "another user" in str(wrong["detail"])
        spent = await refused(base, str(stolen["stream_url"]))
        assert "already used" in str(spent["detail"])

        malformed_before = counter(REALTIME_TICKETS, "malformed")
        failures_before = counter(AUTH_FAILURES, "invalid_ticket")
        bad = await refused(base, f"/api/v1/users/{user}/stream?ticket=not-a-ticket")
        assert bad["error"] == "invalid_ticket" and "malformed" in str(bad["detail"])
        assert counter(REALTIME_TICKETS, "malformed") == malformed_before + 1
        assert counter(AUTH_FAILURES, "invalid_ticket") == failures_before + 1

        # A ticket with a credential header too: one credential per request.
        both = await http.get(
            str(stolen["stream_url"]).replace(str(stolen["ticket"]), secret),
            headers=bearer(token),
        )
        assert both.status_code == 400 and both.json()["error"] == "invalid_request"

        # A POST without a device, or for another user, gets no ticket.
        no_device = await http.post(f"/api/v1/users/{user}/stream/ticket", headers=bearer(token))
        assert no_device.status_code == 422
        assert no_device.json()["fields"][0]["field"] == "header.X-Device-ID"
        foreign = await http.post(
            f"/api/v1/users/{other}/stream/ticket", headers={**bearer(token), "X-Device-ID": "w"}
        )
        assert foreign.status_code == 403

        # An Idempotency-Key does not make the gateway keep the answer (the ticket in clear).
        keyed = await http.post(
            f"/api/v1/users/{user}/stream/ticket",
            headers={**bearer(token), "X-Device-ID": "web-1", "Idempotency-Key": "k-1"},
        )
        rekeyed = await http.post(
            f"/api/v1/users/{user}/stream/ticket",
            headers={**bearer(token), "X-Device-ID": "web-1", "Idempotency-Key": "k-1"},
        )
        assert keyed.json()["ticket"] != rekeyed.json()["ticket"]
        assert "idempotent-replayed" not in rekeyed.headers
        document = (await http.get("/openapi.json")).json()
        operation = document["paths"]["/api/v1/users/{user_id}/stream/ticket"]["post"]
        assert "Idempotency-Key" not in [p["name"] for p in operation["parameters"]]
    # Never logged: not in any log line of the requests above.
    assert log_messages and not any(secret in line for line in log_messages)


async def test_an_expired_ticket_is_refused(settings: Settings, topics_created: None) -> None:
    user = f"web-{uuid.uuid4().hex[:8]}"
    token = user_token(settings, subject=user, scopes=SCOPES)
    quick = with_realtime(settings, ticket_ttl_s=1)
    async with served_gateway(quick) as (_, base), httpx.AsyncClient(base_url=base) as http:
        await register_devices(http, settings, user, "web-1")
        ticket = await ticket_for(http, user, token)
        await asyncio.sleep(1.2)
        expired = await refused(base, str(ticket["stream_url"]))
    assert expired["error"] == "invalid_ticket"
    assert "expired" in str(expired["detail"])


async def test_a_ticket_carries_the_tokens_scopes_and_lives_no_longer_than_the_token(
    settings: Settings, topics_created: None
) -> None:
    user = f"web-{uuid.uuid4().hex[:8]}"
    sync_only = user_token(settings, subject=user, scopes=["watchlist:read"], ttl_s=20)
    async with served_gateway(settings) as (_, base), httpx.AsyncClient(base_url=base) as http:
        await register_devices(http, settings, user, "web-1")
        ticket = await ticket_for(http, user, sync_only)
        # The token has 20 s left: so has the ticket.
        assert int(ticket["expires_in_s"]) <= 20  # type: ignore[call-overload]
        source = EventSourceLike(f"{base}{ticket['stream_url']}&channels=devices")
        try:
            answer = await source.open()
        finally:
            await source.close()
    assert answer.status_code == 403
    assert "devices:read" in answer.json()["detail"]


async def test_cors_answers_the_configured_origins_only(
    settings: Settings, topics_created: None
) -> None:
    origin = "https://app.example.com"
    with_cors = settings.model_copy(
        update={
            "gateway": settings.gateway.model_copy(update={"cors_origins": [origin]}),
        }
    )
    user = f"web-{uuid.uuid4().hex[:8]}"
    token = user_token(settings, subject=user, scopes=SCOPES)
    url = f"/api/v1/users/{user}/stream/ticket"
    preflight_headers = {
        "Origin": origin,
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization, x-device-id",
    }
    async with served_gateway(with_cors) as (_, base), httpx.AsyncClient(base_url=base) as http:
        await register_devices(http, settings, user, "web-1")
        preflight = await http.options(url, headers=preflight_headers)
        assert preflight.status_code == 200, preflight.text
        assert preflight.headers["access-control-allow-origin"] == origin
        allowed = preflight.headers["access-control-allow-headers"].lower()
        assert "authorization" in allowed and "x-device-id" in allowed
        assert "POST" in preflight.headers["access-control-allow-methods"]
        assert "access-control-allow-credentials" not in preflight.headers

        simple = await http.post(
            url, headers={**bearer(token), "X-Device-ID": "web-1", "Origin": origin}
        )
        assert simple.status_code == 200
        assert simple.headers["access-control-allow-origin"] == origin
        assert "x-request-id" in simple.headers["access-control-expose-headers"].lower()

        stranger = await http.options(
            url, headers={**preflight_headers, "Origin": "https://evil.example"}
        )
        assert stranger.status_code == 400
        assert "access-control-allow-origin" not in stranger.headers
    # Not configured (the default): no CORS header at all.
    async with served_gateway(settings) as (_, base), httpx.AsyncClient(base_url=base) as http:
        plain = await http.post(
            url, headers={**bearer(token), "X-Device-ID": "web-1", "Origin": origin}
        )
        assert plain.status_code == 200
        assert not [h for h in plain.headers if h.startswith("access-control-")]


async def test_only_a_registered_device_gets_a_ticket_and_opens_its_stream(
    settings: Settings, topics_created: None
) -> None:
    user = f"web-{uuid.uuid4().hex[:8]}"
    token = user_token(settings, subject=user, scopes=SCOPES)
    async with served_gateway(settings) as (_, base), httpx.AsyncClient(base_url=base) as http:
        # (A device never registered needs the sync agent to say so; one removed is known
        # from the register the gateway writes itself.)
        await register_devices(http, settings, user, "web-1", "old-1")
        await remove_device(http, settings, user, "old-1")
        gone = await http.post(
            f"/api/v1/users/{user}/stream/ticket",
            headers={**bearer(token), "X-Device-ID": "old-1"},
        )
        assert gone.status_code == 403, gone.text
        assert gone.json()["error"] == "unknown_device"
        assert gone.json()["fields"][0]["field"] == "header.X-Device-ID"

        ticket = await ticket_for(http, user, token)
        await remove_device(http, settings, user, "web-1")
        # Removed after its ticket was issued: the stream does not open.
        source = EventSourceLike(base + str(ticket["stream_url"]))
        try:
            answer = await source.open()
        finally:
            await source.close()
    assert answer.status_code == 403
    assert answer.json()["error"] == "unknown_device"
    assert answer.json()["fields"][0]["field"] == "query.ticket"


def test_credentials_for_every_origin_are_refused_at_start() -> None:
    with pytest.raises(ConfigError) as caught:
        settings_with({"GATEWAY_CORS_ORIGINS": "*", "GATEWAY_CORS_ALLOW_CREDENTIALS": "true"})
    assert "GATEWAY_CORS_ALLOW_CREDENTIALS" in str(caught.value)
    assert "every origin" in str(caught.value)
    with pytest.raises(ConfigError) as path:
        settings_with({"GATEWAY_CORS_ORIGINS": "https://a.example/app"})
    assert "GATEWAY_CORS_ORIGINS" in str(path.value)
    ok = GatewaySettings(cors_origins="https://a.example, http://localhost:3000")  # type: ignore[arg-type]
    assert ok.cors_origins == ["https://a.example", "http://localhost:3000"]


async def test_two_redemptions_racing_one_ticket_open_one_stream(
    settings: Settings, redis_client: aioredis.Redis
) -> None:
    prefix, user = settings.redis.key_prefix, f"race-{uuid.uuid4().hex[:8]}"
    for _ in range(20):
        issued = await issue_ticket(
            redis_client,
            prefix,
            user_id=user,
            device_id="web-1",
            scopes=frozenset({"devices:read"}),
            credential_expires_at=time.time() + 600,
            issued_by=user,
            ttl_s=60,
        )
        outcomes = await asyncio.gather(
            *(redeem_ticket(redis_client, prefix, issued.ticket, user) for _ in range(5)),
            return_exceptions=True,
        )
        won = [o for o in outcomes if isinstance(o, TicketClaims)]
        lost = [o for o in outcomes if isinstance(o, TicketRefused)]
        assert len(won) == 1 and len(lost) == 4, outcomes
        assert won[0].device_id == "web-1" and won[0].scopes == {"devices:read"}
        assert {o.reason for o in lost} == {"unknown"}
    # A token about to expire gets no ticket (it would open a stream that ends at once).
    with pytest.raises(TicketRefused):
        await issue_ticket(
            redis_client,
            prefix,
            user_id=user,
            device_id="web-1",
            scopes=frozenset(),
            credential_expires_at=time.time() + 0.5,
            issued_by=user,
            ttl_s=60,
        )


async def test_a_token_in_its_last_second_gets_no_ticket(
    settings: Settings, topics_created: None
) -> None:
    user = f"web-{uuid.uuid4().hex[:8]}"
    # Expired 5 s ago: still inside the verifier's 30 s leeway for clock skew.
    stale = user_token(settings, subject=user, scopes=SCOPES, now=time.time() - 65, ttl_s=60)
    async with served_gateway(settings) as (_, base), httpx.AsyncClient(base_url=base) as http:
        await register_devices(http, settings, user, "web-1")
        answer = await http.post(
            f"/api/v1/users/{user}/stream/ticket",
            headers={**bearer(stale), "X-Device-ID": "web-1"},
        )
    assert answer.status_code == 401, answer.text
    assert answer.json()["error"] == "unauthorized"
    assert "expire" in answer.json()["detail"]


async def test_ticketed_opens_spend_no_anonymous_budget_and_bad_tickets_spend_the_failure_one(
    settings: Settings, topics_created: None
) -> None:
    user = f"web-{uuid.uuid4().hex[:8]}"
    token = user_token(settings, subject=user, scopes=SCOPES)
    # Three failed authentications a minute per address, instead of 30, to reach the bound.
    limits = settings.rate_limit.model_copy(update={"auth_failures_per_minute": 3})
    strict = settings.model_copy(update={"rate_limit": limits})
    async with served_gateway(strict) as (_, base), httpx.AsyncClient(base_url=base) as http:
        await register_devices(http, settings, user, "web-1")
        tickets = [await ticket_for(http, user, token) for _ in range(8)]
        # More opens from this address within a second than the anonymous 5 per second: each
        # ticket was counted once, against its user, when it was issued.
        sources = [EventSourceLike(base + str(t["stream_url"])) for t in tickets]
        try:
            answers = await asyncio.gather(*(s.open() for s in sources))
            assert [a.status_code for a in answers] == [200] * 8
            assert all("x-ratelimit-limit" not in a.headers for a in answers)
        finally:
            await asyncio.gather(*(s.close() for s in sources))

        good = await ticket_for(http, user, token)
        wrong = f"/api/v1/users/{user}/stream?ticket=not-a-ticket"
        for _ in range(3):
            assert (await refused(base, wrong))["error"] == "invalid_ticket"
        # The address is past its failure budget: refused before the ticket is read, even a
        # good one, as any credential from it would be.
        for url in (wrong, str(good["stream_url"])):
            source = EventSourceLike(base + url)
            try:
                answer = await source.open()
                assert answer.status_code == 429, answer.text
                assert answer.json()["error"] == "too_many_auth_failures"
            finally:
                await source.close()
