"""The producers' batch endpoint: per-item results, API keys only, size limits."""

from __future__ import annotations

import asyncio
import os
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import orjson
import pytest

from core.config import Settings
from gateway.auth.key_store import KeyStore
from tests.auth.helpers import auth_headers, bearer, running_gateway, user_token
from tests.conftest import Isolated
from tests.helpers import read_topic, run_cli


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
        assert many.status_code == 413 and "at most 1000" in many.json()["detail"]
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
        assert plain.status_code == 415 and "application/json" in plain.json()["detail"]
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
        assert missing.status_code == 404 and "stored" in missing.json()["detail"]
        person = await http.get(
            "/api/v1/ingest/netflix/items/api-7",
            headers=bearer(user_token(isolated.settings, scopes=["ingest:write"])),
        )
        assert person.status_code == 403


@pytest.mark.parametrize(
    ("named", "platform"),
    [
        ("prime", "prime_video"),
        ("hbo", "hbo_max"),
        ("disney", "disney_plus"),
        ("Disney+", "disney_plus"),
        ("Prime Video", "prime_video"),
        ("netflix", "netflix"),
    ],
)
async def test_the_ingest_url_takes_platform_aliases_as_the_items_and_the_lookup_do(
    settings: Settings, producer: str, named: str, platform: str
) -> None:
    items = [item(11), item(12, platform="Prime Video" if platform == "prime_video" else named)]
    async with running_gateway(settings) as (_, http):
        resp = await http.post(
            f"/api/v1/ingest/{quote(named)}/items",
            json={"items": items},
            headers={"X-API-Key": producer},
        )
    assert resp.status_code == 202, resp.text
    assert resp.json()["accepted"] == 2, resp.text
    assert [r["key"] for r in resp.json()["results"]] == [
        f"{platform}:api-11",
        f"{platform}:api-12",
    ]


async def test_a_path_that_names_no_platform_is_422_naming_the_path(
    settings: Settings, producer: str
) -> None:
    async with running_gateway(settings) as (_, http):
        resp = await http.post(
            f"/api/v1/ingest/{quote('-!*')}/items",
            json={"items": [item(1)]},
            headers={"X-API-Key": producer},
        )
    assert resp.status_code == 422
    assert resp.json()["fields"][0]["field"] == "path.platform"


async def test_an_item_that_is_not_an_object_is_one_rejected_item_not_a_rejected_batch(
    settings: Settings, producer: str
) -> None:
    async with running_gateway(settings) as (_, http):
        resp = await http.post(
            "/api/v1/ingest/netflix/items",
            json={"items": [5, item(21), "x", None, [item(22)]]},
            headers={"X-API-Key": producer},
        )
    assert resp.status_code == 202, resp.text
    body = resp.json()
    assert (body["accepted"], body["rejected"]) == (1, 4)
    statuses = [
        (r["status"], r["errors"][0]["field"] if r["errors"] else None) for r in body["results"]
    ]
    assert statuses == [
        ("rejected", "(item)"),
        ("accepted", None),
        ("rejected", "(item)"),
        ("rejected", "(item)"),
        ("rejected", "(item)"),
    ]
    assert "JSON object, not a number" in body["results"][0]["errors"][0]["reason"]


async def test_the_202_says_what_each_item_s_availability_was_understood_as(
    settings: Settings, producer: str
) -> None:
    listed = item(31)
    absent = {k: v for k, v in item(32).items() if k != "availability"}
    items = [listed, absent, item(33, availability=None), item(34, availability=[])]
    async with running_gateway(settings) as (_, http):
        resp = await http.post(
            "/api/v1/ingest/netflix/items", json={"items": items}, headers={"X-API-Key": producer}
        )
    assert resp.status_code == 202, resp.text
    readings = [r["availability"] for r in resp.json()["results"]]
    assert readings == ["replaced", "unchanged", "unchanged", "left_platform"]


async def test_mgw_ingest_summary_says_what_the_availability_of_the_items_was_understood_as(
    settings: Settings, service_env: dict[str, str], tmp_path: Path
) -> None:
    absent = {k: v for k, v in item(42).items() if k != "availability"}
    lines = [item(41, platform="netflix"), {**absent, "platform": "netflix"}]
    path = tmp_path / "feed.jsonl"
    path.write_bytes(b"".join(orjson.dumps(line) + b"\n" for line in lines))
    code, _, err = await run_cli("ingest", str(path), env={**os.environ, **service_env})
    assert code == 0, err
    assert "availability of the accepted items:" in err
    assert "1 x replaced" in err and "1 x unchanged (no `availability`" in err


async def test_genre_names_with_an_ampersand_are_taken_by_both_write_paths(
    settings: Settings, producer: str
) -> None:
    # Platform genres such as "Action & Adventure" are common: accepted, and mapped.
    genres = ["Action & Adventure", "Kids & Family"]
    async with running_gateway(settings) as (_, http):
        batch = await http.post(
            "/api/v1/ingest/netflix/items",
            json={"items": [item(51, genres=genres)]},
            headers={"X-API-Key": producer},
        )
        trusted = await http.post(
            "/api/v1/content",
            json={
                "canonical_id": str(uuid.uuid4()),
                "content_type": "movie",
                "title": "Ampersand Adventures",
                "genres": genres,
                "updated_at": "2026-11-01T00:00:00Z",
            },
            headers=auth_headers(settings),
        )
    assert batch.status_code == 202 and batch.json()["results"][0]["warnings"] == []
    assert trusted.status_code == 202, trusted.text
