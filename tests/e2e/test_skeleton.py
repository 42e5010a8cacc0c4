"""Gateway -> content.submitted -> content-store agent -> Postgres, on real broker and database."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx
import orjson
import pytest
from aiokafka import AIOKafkaProducer

from core.config import Settings
from core.embedded import free_port, start_broker
from gateway.auth.key_store import KeyStore
from tests.auth.helpers import auth_headers
from tests.helpers import read_topic, wait_for

pytestmark = pytest.mark.slow


def content_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "canonical_id": str(uuid.uuid4()),
        "content_type": "movie",
        "title": "Heat",
        "genres": ["crime", "thriller"],
        "release_year": 1995,
        "updated_at": "2026-11-01T00:00:00Z",
    }
    body.update(overrides)
    return body


async def stored_row(pool: asyncpg.Pool, canonical_id: str) -> asyncpg.Record | None:
    return await pool.fetchrow(
        "SELECT title, last_event_id, source_updated_at FROM content WHERE canonical_id = $1",
        uuid.UUID(canonical_id),
    )


@pytest.fixture(scope="module")
async def producer_key(settings: Settings) -> str:
    """An ingestion producer's API key (content:write), as `mgw keys create` would make it."""
    async with KeyStore.open(settings) as store:
        _, key = await store.create("e2e-producer", ["content:write"], "enterprise")
    return key


@pytest.fixture
async def http(producer_key: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=10, headers={"X-API-Key": producer_key}) as client:
        yield client


@pytest.fixture
def stack(spawn):  # type: ignore[no-untyped-def]
    worker = spawn("worker", "catalog")
    gateway = spawn("gateway")
    return worker, gateway


async def test_post_is_acknowledged_stored_and_traced(
    stack, pool, http, settings: Settings
) -> None:
    worker, gateway = stack
    body = content_body()
    request_id = f"req-{uuid.uuid4().hex[:10]}"
    started = time.monotonic()
    resp = await http.post(
        f"{gateway.url}/api/v1/content", json=body, headers={"X-Request-ID": request_id}
    )
    assert resp.status_code == 202, resp.text
    assert resp.headers["X-Request-ID"] == request_id
    accepted = resp.json()
    assert accepted["topic"] == f"{settings.kafka.topic_prefix}.content.submitted"
    assert accepted["offset"] >= 0 and 0 <= accepted["partition"] < 4

    row = await wait_for(lambda: stored_row(pool, body["canonical_id"]), timeout=10)
    elapsed = time.monotonic() - started
    assert row["title"] == "Heat"
    assert str(row["last_event_id"]) == accepted["event_id"]
    assert elapsed < 3, f"row took {elapsed:.2f}s to appear"

    def lines_with_id(proc) -> list[dict[str, Any]]:  # type: ignore[no-untyped-def]
        out = []
        for line in proc.log_lines():
            if line.startswith("{"):
                rec = orjson.loads(line)
                if rec.get("correlation_id") == request_id:
                    out.append(rec)
        return out

    await wait_for(lambda: lines_with_id(worker), timeout=5)
    assert any(r["msg"].startswith("POST /api/v1/content -> 202") for r in lines_with_id(gateway))
    assert any(body["canonical_id"] in r["msg"] for r in lines_with_id(worker))

    # The record on the topic carries the same id in its headers.
    records = await read_topic(settings.kafka.bootstrap, accepted["topic"])
    ours = [
        r
        for r in records
        if r.offset == accepted["offset"] and r.partition == accepted["partition"]
    ]
    assert ours and dict(ours[0].headers)["correlation_id"] == request_id.encode()


async def test_same_event_twice_leaves_one_row_and_older_never_wins(stack, pool, http) -> None:
    _, gateway = stack
    body = content_body(title="Ronin")
    first = await http.post(f"{gateway.url}/api/v1/content", json=body)
    second = await http.post(f"{gateway.url}/api/v1/content", json=body)
    assert first.status_code == second.status_code == 202
    newer = content_body(
        canonical_id=body["canonical_id"],
        title="Ronin (Director's Cut)",
        updated_at="2026-11-02T00:00:00Z",
    )
    older = content_body(
        canonical_id=body["canonical_id"], title="Ronin (old)", updated_at="2026-10-01T00:00:00Z"
    )
    third = await http.post(f"{gateway.url}/api/v1/content", json=newer)
    fourth = await http.post(f"{gateway.url}/api/v1/content", json=older)
    assert third.status_code == fourth.status_code == 202

    async def settled() -> asyncpg.Record | None:
        row = await stored_row(pool, body["canonical_id"])
        return row if row and row["title"] == "Ronin (Director's Cut)" else None

    await wait_for(settled, timeout=10)
    # Give the older event time to arrive and be (correctly) ignored.
    await asyncio.sleep(1.0)
    count = await pool.fetchval(
        "SELECT count(*) FROM content WHERE canonical_id = $1", uuid.UUID(body["canonical_id"])
    )
    row = await stored_row(pool, body["canonical_id"])
    assert count == 1
    assert row["title"] == "Ronin (Director's Cut)"
    assert str(row["last_event_id"]) == third.json()["event_id"]


async def test_garbage_body_is_422_and_publishes_nothing(stack, http, settings: Settings) -> None:
    _, gateway = stack
    topic = f"{settings.kafka.topic_prefix}.content.submitted"
    before = len(await read_topic(settings.kafka.bootstrap, topic))
    bad = content_body(title="", release_year=1700, genres=[], content_type="opera")
    resp = await http.post(f"{gateway.url}/api/v1/content", json=bad)
    assert resp.status_code == 422
    fields = {f["field"]: f["reason"] for f in resp.json()["fields"]}
    assert {"title", "release_year", "genres", "content_type"} <= set(fields)
    assert "1800" in fields["release_year"]
    not_json = await http.post(
        f"{gateway.url}/api/v1/content",
        content=b"{nope",
        headers={"content-type": "application/json"},
    )
    assert not_json.status_code == 422
    assert len(await read_topic(settings.kafka.bootstrap, topic)) == before


async def test_garbage_on_the_topic_goes_to_the_dead_letter_topic(
    stack, pool, http, settings: Settings
) -> None:
    topic = f"{settings.kafka.topic_prefix}.content.submitted"
    dlq = f"{topic}.dlq"
    marker = uuid.uuid4().hex
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka.bootstrap)
    await producer.start()
    try:
        await producer.send_and_wait(
            topic,
            b"\x00not json " + marker.encode(),
            key=b"k1",
            headers=[("correlation_id", marker.encode())],
        )
        invalid = {
            "event_id": str(uuid.uuid4()),
            "event_type": "content.submitted",
            "version": 1,
            "source": "test",
            "key": "k2",
            "payload": {"content": {"title": marker}},
        }
        await producer.send_and_wait(topic, orjson.dumps(invalid), key=b"k2")
    finally:
        await producer.stop()

    async def dead_letters() -> list[Any]:
        records = await read_topic(settings.kafka.bootstrap, dlq, settle_s=0.5)
        return [r for r in records if marker.encode() in (r.value or b"")]

    async def both_dead_lettered() -> list[Any]:
        letters = await dead_letters()
        return letters if len(letters) >= 2 else []

    letters = await wait_for(both_dead_lettered, timeout=15)
    by_reason = {dict(r.headers)["dlq.reason"].decode(): dict(r.headers) for r in letters}
    assert set(by_reason) == {"undecodable", "invalid"}
    assert by_reason["undecodable"]["dlq.original_topic"].decode() == topic
    assert by_reason["undecodable"]["correlation_id"] == marker.encode()
    assert b"payload.content.canonical_id" in by_reason["invalid"]["dlq.error"]

    # The agent went on: a valid title posted after the garbage is stored.
    _, gateway = stack
    body = content_body(title=f"after-{marker}")
    assert (await http.post(f"{gateway.url}/api/v1/content", json=body)).status_code == 202
    await wait_for(lambda: stored_row(pool, body["canonical_id"]), timeout=10)


def test_broker_down_gives_503_and_recovers(spawn, tmp_path, settings: Settings) -> None:
    auth = auth_headers(settings)
    port = free_port()
    broker = start_broker(port=port, log_file=tmp_path / "b1.log")
    try:
        gateway = spawn(
            "gateway", extra_env={"KAFKA_BROKERS": broker.url, "KAFKA_PUBLISH_TIMEOUT_S": "2"}
        )
        url = f"{gateway.url}/api/v1/content"
        assert httpx.post(url, json=content_body(), headers=auth).status_code == 202
        broker.stop()
        resp = httpx.post(url, json=content_body(), headers=auth, timeout=10)
        assert resp.status_code == 503
        assert int(resp.headers["Retry-After"]) > 0
        # The record was handed to the producer before the broker was found gone: the gateway
        # cannot know it was not written, so it says so (gateway/idempotency.py).
        assert resp.json()["error"] == "outcome_unknown"
        assert "Idempotency-Key" in resp.json()["detail"]
        broker = start_broker(port=port, log_file=tmp_path / "b2.log")
        deadline = time.monotonic() + 30
        status = None
        while time.monotonic() < deadline:
            status = httpx.post(url, json=content_body(), headers=auth, timeout=10).status_code
            if status == 202:
                break
            time.sleep(0.5)
        assert status == 202
    finally:
        broker.stop()
