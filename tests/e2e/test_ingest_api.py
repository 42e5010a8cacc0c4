"""The producers' batch endpoint: per-item results, API keys only, size limits."""

from __future__ import annotations

from typing import Any

import pytest

from core.config import Settings
from gateway.auth.key_store import KeyStore
from tests.auth.helpers import bearer, running_gateway, user_token
from tests.helpers import read_topic


def item(n: int, **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "platform_item_id": f"api-{n}",
        "title": f"Batch Title {n}",
        "content_type": "Movie",
        "year": "2001",
        "genres": ["Sci-Fi & Fantasy"],
        "availability": [{"availability_type": "subscription", "regions": ["us", "gb"]}],
        "source_updated_at": "2026-11-01T00:00:00Z",
    }
    body.update(overrides)
    return body


@pytest.fixture(scope="module")
async def producer(settings: Settings) -> str:
    async with KeyStore.open(settings) as store:
        _, key = await store.create("batch-producer", ["ingest:write"], "enterprise")
    return key


async def test_a_batch_gets_one_result_per_item_and_only_valid_items_are_published(
    settings: Settings, producer: str
) -> None:
    topic = f"{settings.kafka.topic_prefix}.content.raw"
    before = len(await read_topic(settings.kafka.bootstrap, topic))
    items = [item(1), item(2, year="nineteen"), item(3, platform="hulu"), item(4, title="")]
    async with running_gateway(settings) as (_, http):
        resp = await http.post(
            "/api/v1/ingest/netflix/items", json={"items": items}, headers={"X-API-Key": producer}
        )
    assert resp.status_code == 202, resp.text
    body = resp.json()
    assert body["topic"] == topic
    assert (body["accepted"], body["rejected"]) == (1, 3)
    results = body["results"]
    assert [r["index"] for r in results] == [0, 1, 2, 3]
    assert results[0]["status"] == "accepted" and results[0]["offset"] >= 0
    assert results[0]["key"] == "netflix:api-1"
    assert results[1]["errors"][0]["field"] == "year"
    assert "batch is for 'netflix'" in results[2]["errors"][0]["reason"]
    assert results[3]["errors"][0]["field"] == "title"
    after = await read_topic(settings.kafka.bootstrap, topic)
    assert len(after) == before + 1 and after[-1].key == b"netflix:api-1"


async def test_all_rejected_is_422_and_oversized_is_413(settings: Settings, producer: str) -> None:
    headers = {"X-API-Key": producer}
    async with running_gateway(settings) as (_, http):
        bad = await http.post(
            "/api/v1/ingest/netflix/items", json={"items": [item(9, year="x")]}, headers=headers
        )
        assert bad.status_code == 422 and bad.json()["rejected"] == 1
        many = await http.post(
            "/api/v1/ingest/netflix/items",
            json={"items": [item(n) for n in range(1001)]},
            headers=headers,
        )
        assert many.status_code == 413 and "at most 1000" in many.json()["message"]
        huge = await http.post(
            "/api/v1/ingest/netflix/items",
            content=b'{"items": [' + b" " * (settings.gateway.max_body_bytes + 10) + b"]}",
            headers={**headers, "content-type": "application/json"},
        )
        assert huge.status_code == 413 and huge.json()["error"] == "payload_too_large"


async def test_only_api_keys_with_ingest_scope_may_send_batches(settings: Settings) -> None:
    async with running_gateway(settings) as (_, http):
        url = "/api/v1/ingest/netflix/items"
        anonymous = await http.post(url, json={"items": [item(1)]})
        assert anonymous.status_code == 401 and "WWW-Authenticate" in anonymous.headers
        person = await http.post(
            url,
            json={"items": [item(1)]},
            headers=bearer(user_token(settings, scopes=["ingest:write"])),
        )
        assert person.status_code == 403
        async with KeyStore.open(settings) as store:
            _, wrong = await store.create("content-only", ["content:write"], "enterprise")
        scoped = await http.post(url, json={"items": [item(1)]}, headers={"X-API-Key": wrong})
        assert scoped.status_code == 403
