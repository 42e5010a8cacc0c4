"""Profiles and parental controls end to end: the accounts, discovery, sona and readmodel
workers and a gateway as processes, on the discovery test catalog (R-rated horror and crime,
PG animation). A kids profile (limit PG, horror blocked) created over HTTP is applied by the
accounts agent; then no path lists an R-rated or horror title to it (search, suggest,
recommendations, a title read directly, the MCP search tool), its cached answers are its own,
and raising its limit drops its cached recommendations. Admin API keys go the same way."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from mcp import Client
from mcp.client._memory import InMemoryTransport

from agreements.api_key_mirror import index_key
from agreements.sona_cache import recommendations_key
from assistant.gateway_api import GatewayApi
from assistant.server import build_server
from assistant.stdio import TokenCaller
from tests.auth.helpers import bearer, user_token
from tests.conftest import Isolated
from tests.discovery.catalog import BY_TITLE, CATALOG
from tests.e2e.test_search import seeded
from tests.helpers import wait_for

pytestmark = pytest.mark.slow

SCOPES = ("profiles:read", "profiles:write", "recommendations:read")
KIDS = {
    "name": "Kid",
    "kind": "kids",
    "limits": {"content_rating_limit": "PG", "blocked_genres": ["horror"]},
}
ADULT_ONLY = {
    t.title for t in CATALOG if t.maturity not in ("G", "PG", "TV-G") or "horror" in t.genres
}


def titles(body: dict[str, Any]) -> set[str]:
    return {r["title"] for r in body["results"]}


async def profile_applied(
    http: httpx.AsyncClient, user: str, headers: dict[str, str], limit: str
) -> bool:
    answer = await http.get(f"/api/v1/users/{user}/profiles", headers=headers)
    found = {p["profile_id"]: p for p in answer.json()["profiles"]}
    return "kid" in found and found["kid"]["limits"]["content_rating_limit"] == limit


async def test_a_kids_profile_never_gets_an_adult_title(spawn, isolated: Isolated) -> None:
    await seeded(isolated)
    bounded = {**isolated.env, "AUTH_MAX_PROFILES": "2"}
    spawn("worker", "accounts", "discovery", "sona", "readmodel", extra_env=bounded)
    gateway = spawn("gateway", extra_env={**bounded, "RATE_LIMIT_ENABLED": "false"})
    settings, prefix = isolated.settings, isolated.settings.redis.key_prefix
    user = f"parent-{uuid.uuid4().hex[:8]}"
    parent = bearer(user_token(settings, subject=user, scopes=SCOPES))
    kid = {**parent, "X-Profile-ID": "kid"}
    async with httpx.AsyncClient(base_url=gateway.url, timeout=15) as http:
        put = await http.put(f"/api/v1/users/{user}/profiles/kid", json=KIDS, headers=parent)
        assert put.status_code == 202, put.text
        await wait_for(lambda: profile_applied(http, user, parent, "PG"), timeout=20)

        # Search: the adult page first (cached), then the kid's: another page, no R, no horror.
        query = {"q": "horror movies"}
        adult = await http.get("/api/v1/search", params=query, headers=parent)
        assert adult.status_code == 200, adult.text
        assert titles(adult.json()) & ADULT_ONLY
        assert (await http.get("/api/v1/search", params=query, headers=parent)).headers[
            "x-search-cache"
        ] == "hit"
        child = await http.get("/api/v1/search", params=query, headers=kid)
        assert child.status_code == 200, child.text
        assert child.headers["x-search-cache"] == "miss"  # not the adult's cached page
        assert not titles(child.json()) & ADULT_ONLY
        # A client cannot widen the limit: asking for R is read as the stricter PG.
        wider = await http.get(
            "/api/v1/search",
            params={"q": "crime drama", "content_rating_limit": "NC-17"},
            headers=kid,
        )
        assert not titles(wider.json()) & ADULT_ONLY
        browse = await http.get(
            "/api/v1/search", params={"q": "movies", "page_size": 100}, headers=kid
        )
        assert titles(browse.json()) and not titles(browse.json()) & ADULT_ONLY

        # A title read directly: 403 restricted with the reason, as a problem.
        shining = BY_TITLE["The Shining"].canonical_id
        refused = await http.get(f"/api/v1/content/{shining}", headers=kid)
        assert refused.status_code == 403, refused.text
        assert refused.headers["content-type"].startswith("application/problem+json")
        assert refused.json()["error"] == "restricted"
        assert "rated R, above this profile's limit PG" in refused.json()["detail"]
        assert (await http.get(f"/api/v1/content/{shining}", headers=parent)).status_code == 200
        shrek = BY_TITLE["Shrek"].canonical_id
        assert (await http.get(f"/api/v1/content/{shrek}", headers=kid)).status_code == 200

        # Suggestions: the index the discovery worker publishes carries ratings and genres.
        async def suggested(headers: dict[str, str]) -> set[str] | None:
            answer = await http.get("/api/v1/search/suggest", params={"q": "s"}, headers=headers)
            found = {s["text"] for s in answer.json()["suggestions"] if s["kind"] == "title"}
            return found or None

        assert (await wait_for(lambda: suggested(parent), timeout=30)) & ADULT_ONLY
        kid_suggestions = await suggested(kid)
        assert kid_suggestions is not None and "Shrek" in kid_suggestions
        assert not kid_suggestions & ADULT_ONLY

        # Recommendations: computed under the limits, cached in a field of their own.
        recs_adult = await http.get("/api/v1/recommendations", headers=parent)
        assert recs_adult.status_code == 200, recs_adult.text
        assert {r["title"] for r in recs_adult.json()["recommendations"]} & ADULT_ONLY
        recs_kid = await http.get("/api/v1/recommendations", headers=kid)
        assert recs_kid.headers["x-recommendations-cache"] == "miss"
        kid_titles = {r["title"] for r in recs_kid.json()["recommendations"]}
        assert kid_titles and not kid_titles & ADULT_ONLY
        redis = isolated_redis(isolated)
        try:
            assert await redis.hlen(recommendations_key(prefix, user)) == 2
            # Raising the kid's limit drops the account's cached recommendations.
            older = {
                **KIDS,
                "limits": {"content_rating_limit": "PG-13", "blocked_genres": ["horror"]},
            }
            put = await http.put(f"/api/v1/users/{user}/profiles/kid", json=older, headers=parent)
            assert put.status_code == 202
            await wait_for(lambda: profile_applied(http, user, parent, "PG-13"), timeout=20)
            assert await redis.exists(recommendations_key(prefix, user)) == 0
        finally:
            await redis.aclose()
        again = await http.get("/api/v1/recommendations", headers=kid)
        assert again.headers["x-recommendations-cache"] == "miss"

        # A kids profile cannot change profiles; an unknown profile is refused, not ignored.
        lift = await http.put(
            f"/api/v1/users/{user}/profiles/kid", json={"kind": "adult"}, headers=kid
        )
        assert lift.status_code == 403 and lift.json()["error"] == "restricted"
        ghost = await http.get(
            "/api/v1/search", params=query, headers={**parent, "X-Profile-ID": "nobody"}
        )
        assert ghost.status_code == 403 and ghost.json()["error"] == "unknown_profile"
        assert ghost.json()["fields"][0]["field"] == "header.X-Profile-ID"

        # A token bound to the kids profile: the header cannot pick another one.
        bound = user_token(settings, subject=user, scopes=SCOPES, extra_claims={"profile": "kid"})
        swap = await http.get(
            "/api/v1/search", params=query, headers={**bearer(bound), "X-Profile-ID": "other"}
        )
        assert swap.status_code == 403 and swap.json()["error"] == "unknown_profile"
        bound_read = await http.get(f"/api/v1/content/{shining}", headers=bearer(bound))
        assert bound_read.status_code == 403

        # At most AUTH_MAX_PROFILES (2 here) profiles: a third is refused, a replacement is not.
        teen = {"kind": "adult", "name": "Teen"}
        assert (
            await http.put(f"/api/v1/users/{user}/profiles/teen", json=teen, headers=parent)
        ).status_code == 202

        async def two() -> bool:
            listed = await http.get(f"/api/v1/users/{user}/profiles", headers=parent)
            return len(listed.json()["profiles"]) == 2

        await wait_for(two, timeout=20)
        third = await http.put(f"/api/v1/users/{user}/profiles/third", json=teen, headers=parent)
        assert third.status_code == 409 and third.json()["error"] == "profile_limit_reached"
        assert third.json()["fields"][0]["field"] == "profile_id"
        again = await http.put(f"/api/v1/users/{user}/profiles/teen", json=teen, headers=parent)
        assert again.status_code == 202

        # The MCP tools call the API with the token: a bound token's limits hold there too.
        api = GatewayApi(http, "assistant")
        async with Client(InMemoryTransport(build_server(api, TokenCaller(api, bound)))) as mcp:
            result = await mcp.call_tool("search_titles", {"query": "horror movies"})
            assert not result.is_error, result
            found = {r["title"] for r in result.structured_content["results"]}
            assert not found & ADULT_ONLY


def isolated_redis(isolated: Isolated) -> Any:
    import redis.asyncio as aioredis

    return aioredis.from_url(isolated.settings.redis.require_url())


async def test_admins_manage_api_keys_over_http(spawn, isolated: Isolated) -> None:
    spawn("worker", "accounts", extra_env=isolated.env)
    gateway = spawn("gateway", extra_env={**isolated.env, "RATE_LIMIT_ENABLED": "false"})
    settings = isolated.settings
    admin = bearer(user_token(settings, subject="ops", scopes=(), roles=("admin",)))
    someone = bearer(user_token(settings, subject="someone", scopes=()))
    async with httpx.AsyncClient(base_url=gateway.url, timeout=15) as http:
        for method, path in (
            ("POST", "/api/v1/admin/api-keys"),
            ("GET", "/api/v1/admin/api-keys"),
            ("DELETE", "/api/v1/admin/api-keys/0123456789ab"),
        ):
            body = {"name": "x"} if method == "POST" else None
            refused = await http.request(method, path, json=body, headers=someone)
            assert refused.status_code == 403, (method, refused.text)
            assert refused.json()["error"] == "forbidden"
            assert (await http.request(method, path, json=body)).status_code == 401

        bad = await http.post(
            "/api/v1/admin/api-keys",
            json={"name": "feed", "scopes": ["ingest:wrote"]},
            headers=admin,
        )
        assert bad.status_code == 422 and bad.json()["fields"][0]["field"].startswith("scopes")

        issued = await http.post(
            "/api/v1/admin/api-keys",
            json={"name": "partner feed", "scopes": ["ingest:write"], "tier": "pro"},
            headers=admin,
        )
        assert issued.status_code == 202, issued.text
        key, key_id = issued.json()["key"], issued.json()["key_id"]
        assert key.startswith(f"mgw_{key_id}_")

        async def whoami() -> dict[str, Any] | None:
            answer = await http.get("/api/v1/auth/whoami", headers={"X-API-Key": key})
            return answer.json() if answer.status_code == 200 else None

        me = await wait_for(whoami, timeout=20)
        assert me["subject"] == key_id and me["tier"] == "pro"
        listed = (await http.get("/api/v1/admin/api-keys", headers=admin)).json()
        assert [(k["key_id"], k["name"], k["revoked_at"]) for k in listed] == [
            (key_id, "partner feed", None)
        ]
        assert "hash" not in listed[0] and key not in str(listed)

        revoked = await http.delete(f"/api/v1/admin/api-keys/{key_id}", headers=admin)
        assert revoked.status_code == 202

        async def refused_now() -> bool:
            answer = await http.get("/api/v1/auth/whoami", headers={"X-API-Key": key})
            return answer.status_code == 401

        await wait_for(refused_now, timeout=20)
        listed = (await http.get("/api/v1/admin/api-keys", headers=admin)).json()
        assert listed[0]["revoked_at"] is not None
    row = await isolated.pool.fetchrow(
        "SELECT name, tier, revoked_at FROM api_keys WHERE key_id = $1", key_id
    )
    assert row["name"] == "partner feed" and row["tier"] == "pro" and row["revoked_at"] is not None
    redis = isolated_redis(isolated)
    try:
        assert await redis.hexists(index_key(settings.redis.key_prefix), key_id)
    finally:
        await redis.aclose()
