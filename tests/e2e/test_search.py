"""Search through the stream: the gateway answers from the result cache, asks the discovery
worker over Kafka on a miss, answers 504 when nobody answers, a title that changes is dropped
from the cached pages by the content.updated event, and an offer that ends or comes back is
shown as it is."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from agents.adapters.embeddings.local import LocalEmbedder
from agents.adapters.vectors.edge import EdgeVectorStore
from agents.titles.store import Versioned, upsert_contents
from core.publisher import Publisher
from schemas.content import ContentUpdated
from schemas.ingestion import CatalogItemReceived, RawCatalogItem
from tests.conftest import Isolated
from tests.discovery.catalog import BY_TITLE, later, seed
from tests.helpers import read_topic, wait_for
from topics.registry import CONTENT_RAW, CONTENT_UPDATED, DISCOVERY_SEARCH

pytestmark = pytest.mark.slow

NO_LIMITS = {"RATE_LIMIT_ENABLED": "false"}


async def seeded(isolated: Isolated) -> None:
    vectors = EdgeVectorStore(Path(isolated.env["QDRANT_PATH"]) / "content", 384)
    embedder = LocalEmbedder()
    try:
        await vectors.ensure_collection()
        await seed(isolated.pool, vectors, embedder)
    finally:
        # The worker opens the store next: one process at a time.
        await vectors.close()
        await embedder.close()


async def test_a_miss_goes_to_the_agent_and_the_next_is_a_hit(spawn, isolated: Isolated) -> None:
    await seeded(isolated)
    worker = spawn("worker", "discovery", extra_env=isolated.env)
    gateway = spawn("gateway", extra_env={**isolated.env, **NO_LIMITS})
    async with httpx.AsyncClient(base_url=gateway.url, timeout=10) as http:
        params = {"q": "shawshank redemtion"}
        first = await http.get("/api/v1/search", params=params, headers={"X-Request-ID": "s-1"})
        assert first.status_code == 200, first.text
        assert first.headers["x-search-cache"] == "miss"
        assert first.headers["cache-control"] == "no-cache"
        body = first.json()
        assert body["results"][0]["title"] == "The Shawshank Redemption"
        assert body["strategies_used"] == ["vector", "keyword", "popularity"]
        assert body["query_parsed"]["source"] == "rules"

        second = await http.get("/api/v1/search", params=params)
        assert second.headers["x-search-cache"] == "hit"
        assert second.content == first.content
        # The worker's log line of the search carries the gateway's correlation id.
        assert any('"s-1"' in line and "shawshank" in line for line in worker.log_lines())

        filtered = await http.get(
            "/api/v1/search",
            params={"q": "something funny and animated", "platforms": "netflix", "region": "GB"},
        )
        assert filtered.status_code == 200
        assert [r["title"] for r in filtered.json()["results"]] == ["Shrek", "Chicken Run"]

        bad = await http.get("/api/v1/search", params={"q": "x", "page_size": "500"})
        assert bad.status_code == 422
        assert bad.json()["fields"] == [
            {"field": "query.page_size", "reason": "Input should be less than or equal to 100"}
        ]
        schema = (await http.get("/openapi.json")).json()
        operation = schema["paths"]["/api/v1/search"]["get"]
        assert {p["name"] for p in operation["parameters"]} >= {"q", "platforms", "region"}
        assert {"422", "504"} <= set(operation["responses"])


async def test_a_changed_title_leaves_the_cached_pages(spawn, isolated: Isolated) -> None:
    await seeded(isolated)
    spawn("worker", "discovery", extra_env=isolated.env)
    gateway = spawn("gateway", extra_env={**isolated.env, **NO_LIMITS})
    params = {"q": "ogre fairy tale", "platforms": "netflix"}
    async with httpx.AsyncClient(base_url=gateway.url, timeout=10) as http:
        first = await http.get("/api/v1/search", params=params)
        assert "Shrek" in [r["title"] for r in first.json()["results"]]
        assert (await http.get("/api/v1/search", params=params)).headers["x-search-cache"] == "hit"

        # Shrek leaves Netflix: stored, then announced, as the catalog agents do.
        gone = later(
            BY_TITLE["Shrek"].content(),
            availability=[
                {"platform": "hulu", "availability_type": "subscription", "regions": ["US"]}
            ],
        )
        await upsert_contents(isolated.pool, [Versioned(gone, uuid.uuid4())])
        publisher = Publisher(isolated.settings.kafka, source="test")
        await publisher.start()
        try:
            await publisher.publish(
                CONTENT_UPDATED,
                ContentUpdated(content=gone, changed_fields=["availability"]),
                key=str(gone.canonical_id),
            )
        finally:
            await publisher.stop()

        async def recomputed() -> httpx.Response | None:
            resp = await http.get("/api/v1/search", params=params)
            return resp if resp.headers["x-search-cache"] == "miss" else None

        again = await wait_for(recomputed, timeout=20, interval=0.2)
        assert "Shrek" not in [r["title"] for r in again.json()["results"]]


async def test_an_offer_that_ends_or_comes_back_shows_in_the_cached_pages(
    spawn, isolated: Isolated
) -> None:
    """Through the real agents: process-batch stores the offers and announces them, the
    discovery agents answer and drop pages; no event says when an offer ends."""
    await seeded(isolated)  # other titles on Netflix: the pages are not empty without ours
    spawn("worker", "ingestion", "discovery", extra_env=isolated.env)
    gateway = spawn("gateway", extra_env={**isolated.env, **NO_LIMITS})
    publisher = Publisher(isolated.settings.kafka, source="test")
    await publisher.start()
    name, now = "The Wicker Lantern", datetime.now(UTC)

    async def offered_on_netflix(version: datetime, until: datetime | None) -> None:
        item = RawCatalogItem.model_validate(
            {
                "platform": "netflix",
                "platform_item_id": "nf-wicker-lantern",
                "title": name,
                "content_type": "movie",
                "year": 1973,
                "genres": ["Horror"],
                "availability": [
                    {
                        "availability_type": "subscription",
                        "regions": ["US"],
                        **({"available_until": until.isoformat()} if until else {}),
                    }
                ],
                "source_updated_at": version.isoformat(),
            }
        )
        received = CatalogItemReceived(item=item)
        await publisher.send_envelopes(
            [(CONTENT_RAW, publisher.build_envelope(received, item.record_key))]
        )

    params = {"q": "on netflix", "page_size": "100"}
    async with httpx.AsyncClient(base_url=gateway.url, timeout=10) as http:

        async def ask() -> tuple[str, list[str]]:
            resp = await http.get("/api/v1/search", params=params)
            assert resp.status_code == 200, resp.text
            return resp.headers["x-search-cache"], [r["title"] for r in resp.json()["results"]]

        async def listed() -> tuple[str, list[str]] | None:
            answer = await ask()
            return answer if name in answer[1] else None

        try:
            ends = datetime.now(UTC) + timedelta(seconds=25)
            await offered_on_netflix(now, ends)
            assert (await wait_for(listed, timeout=20, interval=0.3))[0] == "miss"
            cache, shown = await ask()
            assert cache == "hit" and name in shown

            # The offer ends: the page showing it was not kept past the end.
            await asyncio.sleep((ends - datetime.now(UTC)).total_seconds() + 0.3)
            cache, shown = await ask()
            assert (cache, name in shown) == ("miss", False)
            assert (await ask())[0] == "hit"  # kept again, without it

            # Back on Netflix: the event drops the pages filtered on Netflix, though none
            # shows the title.
            await offered_on_netflix(now + timedelta(minutes=1), None)
            assert (await wait_for(listed, timeout=20, interval=0.3))[0] == "miss"
        finally:
            await publisher.stop()


async def test_without_an_agent_a_miss_is_504(spawn, isolated: Isolated) -> None:
    env = {**isolated.env, **NO_LIMITS, "DISCOVERY_REPLY_TIMEOUT_S": "0.3"}
    gateway = spawn("gateway", extra_env=env)
    async with httpx.AsyncClient(base_url=gateway.url, timeout=10) as http:
        resp = await http.get("/api/v1/search", params={"q": "anything"})
        assert resp.status_code == 504
        assert resp.json()["error"] == "search_timeout"
        assert "no discovery agent answered within 0.3 s" in resp.json()["detail"]
        assert resp.headers["Retry-After"] == "1"
    # The request is on the topic, keyed by its result-cache key, for an agent to pick up.
    topic = f"{isolated.settings.kafka.topic_prefix}.{DISCOVERY_SEARCH.name}"
    [record] = await read_topic(isolated.settings.kafka.bootstrap, topic, settle_s=0.5)
    assert len(record.key) == 64


async def test_an_invalid_request_goes_to_the_dead_letter_topic(spawn, isolated: Isolated) -> None:
    spawn("worker", "discovery", extra_env=isolated.env)
    publisher = Publisher(isolated.settings.kafka, source="test")
    await publisher.start()
    try:
        topic = publisher.topic_name(DISCOVERY_SEARCH)
        await publisher.send_raw([(topic, b"k", b'{"not": "an envelope"}', [], "")])
    finally:
        await publisher.stop()
    dlq = f"{topic}.dlq"

    async def dead() -> list:  # type: ignore[type-arg]
        return await read_topic(isolated.settings.kafka.bootstrap, dlq, settle_s=0.3)

    [letter] = await wait_for(dead, timeout=30, interval=0.5)
    assert dict(letter.headers)["dlq.reason"] == b"invalid"
    assert dict(letter.headers)["dlq.agent"] == b"discovery-search"
