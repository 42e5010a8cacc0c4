"""The producers' batch endpoint: per-item results, API keys only, size limits."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from core.config import Settings
from gateway.auth.key_store import KeyStore
from tests.auth.helpers import bearer, running_gateway, user_token
from tests.conftest import Isolated
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


async def test_a_body_that_is_not_json_is_415_and_malformed_json_names_line_and_column(
    settings: Settings, producer: str
) -> None:
    url, key = "/api/v1/ingest/netflix/items", {"X-API-Key": producer}
    async with running_gateway(settings) as (_, http):
        plain = await http.post(
            url, content=b"items", headers={**key, "content-type": "text/plain"}
        )
        assert plain.status_code == 415 and "application/json" in plain.json()["message"]
        broken = await http.post(
            url,
            content=b'{"items": [\n  {"title": "x",}\n]}',
            headers={**key, "content-type": "application/json"},
        )
        assert broken.status_code == 422
        assert "line 2 column" in broken.json()["fields"][0]["reason"]


async def test_a_producer_looks_up_the_canonical_id_of_its_item_through_the_gateway(
    spawn, isolated: Isolated
) -> None:
    async with KeyStore.open(isolated.settings) as store:
        _, key = await store.create("lookup-producer", ["ingest:write"], "enterprise")
    spawn("worker", "ingestion", "readmodel", extra_env=isolated.env)
    gateway = spawn("gateway", extra_env={**isolated.env, "RATE_LIMIT_ENABLED": "false"})
    headers = {"X-API-Key": key}
    async with httpx.AsyncClient(base_url=gateway.url, timeout=10) as http:
        sent = await http.post(
            "/api/v1/ingest/netflix/items",
            json={"items": [item(7, year="1933", title="King Kong", maturity_rating="Open")]},
            headers=headers,
        )
        assert sent.status_code == 202, sent.text
        for _ in range(100):
            found = await http.get("/api/v1/ingest/netflix/items/api-7", headers=headers)
            if found.status_code == 200:
                break
            assert found.status_code == 404, found.text
            await asyncio.sleep(0.2)
        mapping = found.json()
        assert (mapping["platform"], mapping["platform_item_id"]) == ("netflix", "api-7")
        # The canonical id is the title's id in the read model.
        title = await http.get(f"/api/v1/content/{mapping['canonical_id']}")
        assert title.status_code == 200 and title.json()["title"] == "King Kong"
        assert "maturity_rating" in {w["field"] for w in mapping["warnings"]}
        # The platform as the producer's feed names it is normalized like its items.
        named = await http.get("/api/v1/ingest/Netflix/items/api-7", headers=headers)
        assert named.json()["canonical_id"] == mapping["canonical_id"]

        missing = await http.get("/api/v1/ingest/netflix/items/never-sent", headers=headers)
        assert missing.status_code == 404 and "stored" in missing.json()["message"]
        person = await http.get(
            "/api/v1/ingest/netflix/items/api-7",
            headers=bearer(user_token(isolated.settings, scopes=["ingest:write"])),
        )
        assert person.status_code == 403
