"""Personalization end to end: sync and SONA workers and a gateway as processes. A user who
finishes only comedies, reported as progress through the gateway, gets comedies ranked higher
once the training agent has run; answers come from the cache until the taste changes."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from agents.adapters.vectors.edge import EdgeVectorStore
from tests.auth.helpers import bearer, register_devices, user_token
from tests.conftest import Isolated
from tests.helpers import wait_for
from tests.sona_catalog import BY_GENRE, GENRE_OF, seed

pytestmark = pytest.mark.slow

SCOPES = ["progress:write", "recommendations:read"]
EVENING = "2026-11-02T20:30:00+00:00"


async def seeded(isolated: Isolated) -> None:
    vectors = EdgeVectorStore(Path(isolated.env["QDRANT_PATH"]) / "content", 384)
    try:
        await vectors.ensure_collection()
        await seed(isolated.pool, vectors)
    finally:
        # The worker opens the store next: one process at a time.
        await vectors.close()


def comedies(body: dict[str, Any], top: int = 10) -> int:
    ranked = [uuid.UUID(r["canonical_id"]) for r in body["recommendations"][:top]]
    return sum(GENRE_OF[cid] == "comedy" for cid in ranked)


async def test_finishing_comedies_ranks_comedies_higher(spawn, isolated: Isolated) -> None:
    await seeded(isolated)
    spawn("worker", "sync", "sona", extra_env=isolated.env)
    gateway = spawn("gateway", extra_env={**isolated.env, "RATE_LIMIT_ENABLED": "false"})
    user = f"viewer-{uuid.uuid4().hex[:6]}"
    headers = bearer(user_token(isolated.settings, subject=user, scopes=SCOPES))
    params = {"region": "US", "at": EVENING}
    async with httpx.AsyncClient(base_url=gateway.url, timeout=10) as http:
        before = await http.get("/api/v1/recommendations", params=params, headers=headers)
        assert before.status_code == 200, before.text
        assert before.headers["x-recommendations-cache"] == "miss"
        assert before.json()["adapter_version"] is None
        again = await http.get("/api/v1/recommendations", params=params, headers=headers)
        assert again.headers["x-recommendations-cache"] == "hit"
        assert again.content == before.content

        watched = BY_GENRE["comedy"][:12]
        await register_devices(http, isolated.settings, user, "tv-1")
        for title in watched:
            resp = await http.put(
                f"/api/v1/users/{user}/progress/{title.canonical_id}",
                json={"position_seconds": 5400, "duration_seconds": 5400, "state": "stopped"},
                headers={**headers, "X-Device-ID": "tv-1"},
            )
            assert resp.status_code == 202, resp.text

        async def trained() -> dict[str, Any] | None:
            resp = await http.get("/api/v1/recommendations", params=params, headers=headers)
            assert resp.status_code == 200, resp.text
            body: dict[str, Any] = resp.json()
            return body if body["adapter_version"] == 1 else None

        after = await wait_for(trained, timeout=30, interval=0.5)
        assert comedies(after) > comedies(before.json()), (after, before.json())
        finished = {str(t.canonical_id) for t in watched}
        assert not finished & {r["canonical_id"] for r in after["recommendations"]}

        # Someone else's recommendations are not this user's to read.
        other = bearer(user_token(isolated.settings, subject="other", scopes=["progress:write"]))
        assert (await http.get("/api/v1/recommendations", headers=other)).status_code == 403
        bad = await http.get(
            "/api/v1/recommendations", params={"device": "toaster"}, headers=headers
        )
        assert bad.status_code == 422
