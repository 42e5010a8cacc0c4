"""A cached content response is dropped when a content.updated event changes the title."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from gateway.auth.key_store import KeyStore
from tests.conftest import Isolated
from tests.helpers import wait_for

pytestmark = pytest.mark.slow


def record(cid: str, title: str, updated_at: str) -> dict[str, Any]:
    return {
        "canonical_id": cid,
        "content_type": "movie",
        "title": title,
        "genres": ["drama"],
        "updated_at": updated_at,
    }


async def test_content_updated_event_drops_the_cached_response(spawn, isolated: Isolated) -> None:
    async with KeyStore.open(isolated.settings) as store:
        _, key = await store.create("cache-e2e", ["content:write"], "enterprise")
    spawn("worker", "catalog", "readmodel", extra_env=isolated.env)
    gateway = spawn("gateway", extra_env=isolated.env)
    cid = str(uuid.uuid4())
    async with httpx.AsyncClient(base_url=gateway.url, timeout=10) as http:
        writer = {"X-API-Key": key}
        posted = await http.post(
            "/api/v1/content", json=record(cid, "Solaris", "2026-11-01T00:00:00Z"), headers=writer
        )
        assert posted.status_code == 202

        async def served() -> httpx.Response | None:
            resp = await http.get(f"/api/v1/content/{cid}")
            return resp if resp.status_code == 200 else None

        first = await wait_for(served, timeout=20, interval=0.2)

        async def hit() -> httpx.Response | None:
            resp = await http.get(f"/api/v1/content/{cid}")
            return resp if resp.headers["x-cache"] == "HIT" else None

        # The cache stores a response after sending it, and a first copy made while the read
        # model's own invalidation was in flight is not stored: a later GET hits, not
        # necessarily the very next one.
        second = await wait_for(hit, timeout=5, interval=0.1)
        assert second.json()["title"] == "Solaris"
        assert "max-age=" in second.headers["cache-control"]
        etag = second.headers["etag"]
        not_modified = await http.get(f"/api/v1/content/{cid}", headers={"If-None-Match": etag})
        assert not_modified.status_code == 304 and not_modified.content == b""
        assert first.json()["title"] == "Solaris"

        newer = record(cid, "Solaris (Director's Cut)", "2026-11-02T00:00:00Z")
        assert (await http.post("/api/v1/content", json=newer, headers=writer)).status_code == 202

        async def refreshed() -> httpx.Response | None:
            resp = await http.get(f"/api/v1/content/{cid}")
            return resp if resp.json()["title"] == "Solaris (Director's Cut)" else None

        # Well before the 300 s TTL: the update event dropped the cached copy.
        after = await wait_for(refreshed, timeout=20, interval=0.3)
        assert after.headers["etag"] != etag
        stale = await http.get(f"/api/v1/content/{cid}", headers={"If-None-Match": etag})
        assert stale.status_code == 200
