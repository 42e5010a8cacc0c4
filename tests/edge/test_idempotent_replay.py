"""Idempotency-Key as the IETF draft specifies, against real Redis and a real broker: a retry
gets the first answer replayed (one event on the topic), the key on another request is 422, a
retry while the first runs is 409, a 503 `outcome_unknown` is not stored (the retry after
recovery runs, applied once, and its 202 is then replayed), and no Redis is a 503."""

from __future__ import annotations

import asyncio
import os
import signal
import uuid
from typing import Any

import redis.asyncio as aioredis

from core.config import Settings
from core.embedded import ServiceProcess, free_port
from gateway.auth.key_store import KeyStore
from gateway.problems import MEDIA_TYPE
from tests.auth.helpers import bearer, running_gateway, user_token
from tests.conftest import Isolated
from tests.helpers import read_topic

REPLAYED = "Idempotent-Replayed"


def content(title: str) -> dict[str, Any]:
    return {
        "canonical_id": str(uuid.uuid4()),
        "content_type": "movie",
        "title": title,
        "genres": ["drama"],
        "updated_at": "2026-11-01T00:00:00Z",
    }


def writer(settings: Settings, key: str, subject: str = "alice") -> dict[str, str]:
    token = user_token(settings, subject=subject, scopes=["content:write"])
    return {**bearer(token), "Idempotency-Key": key}


async def events_titled(settings: Settings, title: str, topic: str = "content.submitted") -> list:
    records = await read_topic(
        settings.kafka.bootstrap, f"{settings.kafka.topic_prefix}.{topic}", settle_s=0.5
    )
    return [r for r in records if f'"{title}"'.encode() in r.value]


def event_id(record: Any) -> str:
    return dict(record.headers)["event_id"].decode()


async def test_a_retry_gets_the_first_answer_and_the_event_is_published_once(
    settings: Settings,
) -> None:
    key, title = f"replay-{uuid.uuid4()}", f"Replay {uuid.uuid4()}"
    body = content(title)
    async with running_gateway(settings) as (_, http):
        first = await http.post("/api/v1/content", json=body, headers=writer(settings, key))
        retry = await http.post("/api/v1/content", json=body, headers=writer(settings, key))
        # Another caller's key of the same name is another operation.
        bob = await http.post("/api/v1/content", json=body, headers=writer(settings, key, "bob"))
    assert first.status_code == 202, first.text
    assert REPLAYED not in first.headers
    assert retry.status_code == 202 and retry.headers[REPLAYED] == "true"
    assert retry.content == first.content
    assert retry.headers["content-type"] == first.headers["content-type"]
    assert retry.headers["X-Request-ID"] != first.headers["X-Request-ID"]  # the retry's own
    assert bob.status_code == 202 and REPLAYED not in bob.headers
    assert bob.json()["event_id"] != first.json()["event_id"]
    published = await events_titled(settings, title)
    assert sorted(event_id(r) for r in published) == sorted(
        [first.json()["event_id"], bob.json()["event_id"]]
    )


async def test_final_refusals_are_replayed_and_passing_ones_are_not(settings: Settings) -> None:
    key = f"final-{uuid.uuid4()}"
    reader = {**bearer(user_token(settings, scopes=["content:read"])), "Idempotency-Key": key}
    async with running_gateway(settings) as (_, http):
        invalid = [
            await http.post("/api/v1/content", json={"title": ""}, headers=writer(settings, key))
            for _ in range(2)
        ]
        # 403 depends on the credential, which may gain the scope: never stored.
        forbidden = [
            await http.post("/api/v1/content", json=content("F"), headers=reader) for _ in range(2)
        ]
        # No route for the method: a 405 (never a replay, and the key stays free).
        unrouted = [
            await http.patch("/api/v1/content", json=content("P"), headers=writer(settings, key))
            for _ in range(2)
        ]
    assert [r.status_code for r in unrouted] == [405, 405]
    assert all(REPLAYED not in r.headers for r in unrouted)
    assert [r.status_code for r in invalid] == [422, 422]
    assert invalid[0].json()["error"] == "validation_failed"
    assert REPLAYED not in invalid[0].headers and invalid[1].headers[REPLAYED] == "true"
    assert invalid[1].content == invalid[0].content
    assert [r.status_code for r in forbidden] == [403, 403]
    assert all(REPLAYED not in r.headers for r in forbidden)
    assert forbidden[0].json()["request_id"] != forbidden[1].json()["request_id"]


async def test_the_key_on_another_request_is_422(settings: Settings) -> None:
    key = f"reuse-{uuid.uuid4()}"
    headers = writer(settings, key)
    async with running_gateway(settings) as (_, http):
        first = await http.post("/api/v1/content", json=content("One"), headers=headers)
        other_body = await http.post("/api/v1/content", json=content("Two"), headers=headers)
        other_path = await http.put(
            f"/api/v1/users/alice/watchlist/{uuid.uuid4()}",
            headers={
                **bearer(user_token(settings, subject="alice", scopes=["watchlist:write"])),
                "Idempotency-Key": key,
                "X-Device-ID": "phone-1",
            },
        )
    assert first.status_code == 202
    for refused in (other_body, other_path):
        assert refused.status_code == 422, refused.text
        assert refused.headers["content-type"] == MEDIA_TYPE
        assert refused.json()["error"] == "idempotency_key_reused"
        assert refused.json()["type"] == "/problems/idempotency_key_reused"
        assert REPLAYED not in refused.headers


async def test_a_batch_takes_the_key_too(isolated: Isolated) -> None:
    # Topics of its own: the session's catalog topic is read by other tests' workers.
    settings = isolated.settings
    async with KeyStore.open(settings) as store:
        _, api_key = await store.create("replay-producer", ["ingest:write"], "enterprise")
    title = f"Batch {uuid.uuid4()}"
    item = {
        "platform_item_id": f"b-{uuid.uuid4()}",
        "title": title,
        "content_type": "Movie",
        "year": "2001",
        "availability": [{"availability_type": "subscription", "regions": ["us"]}],
        "source_updated_at": "2026-11-01T00:00:00Z",
    }
    headers = {"X-API-Key": api_key, "Idempotency-Key": "batch-1"}
    async with running_gateway(settings) as (_, http):
        sent = [
            await http.post("/api/v1/ingest/netflix/items", json={"items": [item]}, headers=headers)
            for _ in range(2)
        ]
    assert [r.status_code for r in sent] == [202, 202], sent[0].text
    assert sent[1].headers[REPLAYED] == "true" and sent[1].content == sent[0].content
    assert len(await events_titled(settings, title, "content.raw")) == 1


async def test_a_retry_while_the_first_is_in_flight_is_409(
    own_broker: tuple[ServiceProcess, Settings],
) -> None:
    broker, settings = own_broker
    assert broker.process is not None
    headers = writer(settings, "in-flight-1")
    body = content("Slow")
    async with running_gateway(settings) as (_, http):
        warm = await http.post(
            "/api/v1/content",
            json=content("Warm"),
            headers=bearer(user_token(settings, scopes=["content:write"])),
        )
        assert warm.status_code == 202, warm.text
        os.kill(broker.process.pid, signal.SIGSTOP)  # holds the first request's publish
        try:
            first = asyncio.create_task(http.post("/api/v1/content", json=body, headers=headers))
            await asyncio.sleep(0.3)
            assert not first.done()
            retry = await http.post("/api/v1/content", json=body, headers=headers)
        finally:
            os.kill(broker.process.pid, signal.SIGCONT)
        await first
    assert retry.status_code == 409, retry.text
    assert retry.json()["error"] == "idempotency_in_flight"
    assert int(retry.headers["Retry-After"]) >= 1


async def test_outcome_unknown_is_not_stored_and_the_retry_after_recovery_is_replayed(
    own_broker: tuple[ServiceProcess, Settings],
) -> None:
    broker, settings = own_broker
    assert broker.process is not None
    title = f"Unknown {uuid.uuid4()}"
    body, headers = content(title), writer(settings, "unknown-1")
    async with running_gateway(settings) as (_, http):
        warm = await http.post(
            "/api/v1/content",
            json=content("Warm"),
            headers=bearer(user_token(settings, scopes=["content:write"])),
        )
        assert warm.status_code == 202, warm.text
        os.kill(broker.process.pid, signal.SIGSTOP)
        try:
            lost = await http.post("/api/v1/content", json=body, headers=headers)
        finally:
            os.kill(broker.process.pid, signal.SIGCONT)
        assert lost.status_code == 503 and lost.json()["error"] == "outcome_unknown"
        await asyncio.sleep(1.5)  # the paused publish may still land after SIGCONT
        recovered = await http.post("/api/v1/content", json=body, headers=headers)
        again = await http.post("/api/v1/content", json=body, headers=headers)
    assert recovered.status_code == 202, recovered.text
    assert REPLAYED not in recovered.headers  # it ran: the 503 was not stored
    assert again.status_code == 202 and again.headers[REPLAYED] == "true"
    assert again.content == recovered.content
    # Every copy published (the lost one may have landed, the producer may retry it) is the
    # same event, so consumers apply it once.
    copies = await events_titled(settings, title)
    assert copies and {event_id(r) for r in copies} == {recovered.json()["event_id"]}


async def test_without_redis_a_keyed_write_is_503_and_does_not_run(settings: Settings) -> None:
    title = f"NoRedis {uuid.uuid4()}"
    async with running_gateway(settings) as (app, http):
        live = app.state.redis
        app.state.redis = aioredis.from_url(f"redis://127.0.0.1:{free_port()}/0")
        try:
            resp = await http.post(
                "/api/v1/content", json=content(title), headers=writer(settings, "no-redis")
            )
        finally:
            await app.state.redis.aclose()
            app.state.redis = live
    assert resp.status_code == 503, resp.text
    assert resp.json()["error"] == "redis_unavailable"
    assert int(resp.headers["Retry-After"]) >= 1
    assert await events_titled(settings, title) == []
