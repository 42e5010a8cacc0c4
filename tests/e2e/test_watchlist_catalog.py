"""A watchlist add names a title the catalog has: a gateway, the readmodel agent (which answers
`content.lookup`) and the sync agent as processes, the title in PostgreSQL, its read model in
Redis (or not)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import httpx
import pytest
import redis.asyncio as aioredis

from agents.titles.store import Versioned, upsert_contents
from agreements.read_model import document_key
from schemas.content import CanonicalContent, SeriesMetadata
from tests.auth.helpers import bearer, user_token
from tests.conftest import Isolated
from tests.helpers import read_topic, wait_for

pytestmark = pytest.mark.slow


async def lookups(isolated: Isolated) -> int:
    topic = f"{isolated.settings.kafka.topic_prefix}.content.lookup"
    return len(await read_topic(isolated.settings.kafka.bootstrap, topic, settle_s=0.5))


async def stored_title(
    isolated: Isolated,
    name: str,
    rating: str | None = None,
    genres: tuple[str, ...] = ("drama",),
    episode_of: uuid.UUID | None = None,
) -> uuid.UUID:
    content = CanonicalContent(
        canonical_id=uuid.uuid4(),
        content_type="movie" if episode_of is None else "episode",
        title=name,
        genres=list(genres),
        maturity_rating=rating,
        series=None if episode_of is None else SeriesMetadata(parent_id=episode_of),
        updated_at=datetime(2026, 11, 1, tzinfo=UTC),
    )
    await upsert_contents(isolated.pool, [Versioned(content, uuid.uuid4())])
    return content.canonical_id


async def test_an_add_of_an_unknown_title_is_404_and_a_known_one_is_accepted(
    spawn, isolated: Isolated, redis_client: aioredis.Redis
) -> None:
    known = await stored_title(isolated, "Stalker")
    lost = await stored_title(isolated, "Solaris")
    spawn("worker", "readmodel", extra_env=isolated.env)
    spawn("worker", "sync", extra_env=isolated.env)
    gateway = spawn("gateway", extra_env={**isolated.env, "RATE_LIMIT_ENABLED": "false"})
    user = f"alice-{uuid.uuid4().hex[:6]}"
    token = user_token(
        isolated.settings, subject=user, scopes=["watchlist:read", "watchlist:write"]
    )
    prefix = isolated.settings.redis.key_prefix
    async with httpx.AsyncClient(base_url=gateway.url, timeout=10, headers=bearer(token)) as http:
        # Both titles into the read model (a read of each asks the agent, which writes it)...
        for title in (known, lost):
            assert (await http.get(f"/api/v1/content/{title}")).status_code == 200
        # ... then Redis loses one of them: the add must still find it, by asking the agent.
        assert await redis_client.delete(document_key(prefix, lost)) == 1

        made_up = uuid.uuid4()
        refused = await http.put(f"/api/v1/users/{user}/watchlist/{made_up}")
        assert refused.status_code == 404, refused.text
        assert refused.headers["content-type"].startswith("application/problem+json")
        problem = refused.json()
        assert problem["error"] == "not_found" and str(made_up) in problem["detail"]
        assert problem["fields"] == [
            {"field": "path.content_id", "reason": "no title with this id in the catalog"}
        ]

        asked = await lookups(isolated)
        added = await http.put(f"/api/v1/users/{user}/watchlist/{known}")
        assert added.status_code == 202, added.text
        # In the read model: no agent asked.
        assert await lookups(isolated) == asked
        relooked = await http.put(f"/api/v1/users/{user}/watchlist/{lost}")
        assert relooked.status_code == 202, relooked.text
        assert await lookups(isolated) == asked + 1

        # Taking off what was never there stays allowed (idempotent).
        removed = await http.delete(f"/api/v1/users/{user}/watchlist/{uuid.uuid4()}")
        assert removed.status_code == 202, removed.text

        async def listed() -> bool:
            resp = await http.get(f"/api/v1/users/{user}/watchlist")
            return resp.status_code == 200 and len(resp.json()["items"]) == 2

        await wait_for(listed, timeout=20, interval=0.1)
        items = (await http.get(f"/api/v1/users/{user}/watchlist")).json()["items"]
        assert {item["content_id"] for item in items} == {str(known), str(lost)}


async def test_a_kids_profile_cannot_add_a_title_beyond_its_limits(
    spawn, isolated: Isolated
) -> None:
    """Found by hand: acting as a kids profile (limit PG), an R-rated title read directly was
    403 `restricted`, yet the same title went onto the watchlist (202); so did any add naming a
    profile the account does not have, where every other route answers `unknown_profile`."""
    rated_r = await stored_title(isolated, "Heat", rating="R", genres=("crime",))
    horror = await stored_title(isolated, "Coraline", rating="PG", genres=("horror",))
    family = await stored_title(isolated, "Paddington", rating="PG", genres=("family",))
    spawn("worker", "readmodel", "sync", "accounts", extra_env=isolated.env)
    gateway = spawn("gateway", extra_env={**isolated.env, "RATE_LIMIT_ENABLED": "false"})
    user = f"parent-{uuid.uuid4().hex[:6]}"
    scopes = ["watchlist:read", "watchlist:write", "profiles:read", "profiles:write"]
    scopes += ["devices:write", "progress:read", "progress:write"]
    parent = bearer(user_token(isolated.settings, subject=user, scopes=scopes))
    kid = {**parent, "X-Profile-ID": "kid"}
    limits = {"content_rating_limit": "PG", "blocked_genres": ["horror"]}
    async with httpx.AsyncClient(base_url=gateway.url, timeout=10) as http:
        put = await http.put(
            f"/api/v1/users/{user}/profiles/kid",
            json={"name": "Kid", "kind": "kids", "limits": limits},
            headers=parent,
        )
        assert put.status_code == 202, put.text

        async def applied() -> bool:
            listed = await http.get(f"/api/v1/users/{user}/profiles", headers=parent)
            return any(p["profile_id"] == "kid" for p in listed.json()["profiles"])

        await wait_for(applied, timeout=20, interval=0.1)

        for title, reason in (
            (rated_r, "rated R, above this profile's limit PG"),
            (horror, "genre horror is blocked for this profile"),
        ):
            refused = await http.put(f"/api/v1/users/{user}/watchlist/{title}", headers=kid)
            assert refused.status_code == 403, refused.text
            assert refused.headers["content-type"].startswith("application/problem+json")
            assert refused.json()["error"] == "restricted"
            assert reason in refused.json()["detail"]
        ghost = await http.put(
            f"/api/v1/users/{user}/watchlist/{family}",
            headers={**parent, "X-Profile-ID": "nobody"},
        )
        assert ghost.status_code == 403 and ghost.json()["error"] == "unknown_profile", ghost.text

        # Within the limits the kid adds; the parent (no profile) adds anything.
        assert (
            await http.put(f"/api/v1/users/{user}/watchlist/{family}", headers=kid)
        ).status_code == 202
        assert (
            await http.put(f"/api/v1/users/{user}/watchlist/{rated_r}", headers=parent)
        ).status_code == 202

        async def both() -> bool:
            resp = await http.get(f"/api/v1/users/{user}/watchlist", headers=parent)
            return resp.status_code == 200 and len(resp.json()["items"]) == 2

        await wait_for(both, timeout=20, interval=0.1)
        items = (await http.get(f"/api/v1/users/{user}/watchlist", headers=parent)).json()
        assert {i["content_id"] for i in items["items"]} == {str(family), str(rated_r)}

        # Found by hand after: the kid's reads of the account's lists named the R-rated title
        # the parent added. The kid now sees on them only what it may read.
        kids_list = await http.get(f"/api/v1/users/{user}/watchlist", headers=kid)
        assert kids_list.status_code == 200, kids_list.text
        assert [i["content_id"] for i in kids_list.json()["items"]] == [str(family)]
        ghost_read = await http.get(
            f"/api/v1/users/{user}/watchlist", headers={**parent, "X-Profile-ID": "nobody"}
        )
        assert ghost_read.status_code == 403 and ghost_read.json()["error"] == "unknown_profile"

        # The same for continue watching, and a resume point of a title beyond the limits.
        tv = {**parent, "X-Device-ID": "tv-1"}
        registered = await http.put(
            f"/api/v1/users/{user}/devices/tv-1",
            json={"device_type": "tv", "platform": "tizen", "app_version": "1", "device_name": "T"},
            headers=tv,
        )
        assert registered.status_code == 202, registered.text
        report = {"position_seconds": 600, "duration_seconds": 6000, "state": "paused"}
        for title in (rated_r, family):
            sent = await http.put(f"/api/v1/users/{user}/progress/{title}", json=report, headers=tv)
            assert sent.status_code == 202, sent.text

        async def watching() -> bool:
            resp = await http.get(f"/api/v1/users/{user}/progress", headers=parent)
            return resp.status_code == 200 and len(resp.json()["items"]) == 2

        await wait_for(watching, timeout=20, interval=0.1)
        kids_watching = await http.get(f"/api/v1/users/{user}/progress", headers=kid)
        assert kids_watching.status_code == 200, kids_watching.text
        assert [i["content_id"] for i in kids_watching.json()["items"]] == [str(family)]
        resume = await http.get(f"/api/v1/users/{user}/progress/{rated_r}", headers=kid)
        assert resume.status_code == 403 and resume.json()["error"] == "restricted", resume.text
        assert "rated R, above this profile's limit PG" in resume.json()["detail"]
        assert (
            await http.get(f"/api/v1/users/{user}/progress/{rated_r}", headers=parent)
        ).status_code == 200

        # Found by hand too: an episode without a rating of its own (feeds rate the series) was
        # refused to the kid as unrated; it is judged by its series now.
        for series_rating, allowed in (("TV-G", 200), ("TV-MA", 403)):
            show = await stored_title(isolated, f"Show {series_rating}", rating=series_rating)
            episode = await stored_title(isolated, "Episode", episode_of=show)
            for title in (show, episode):  # into the read model: the parent's read asks
                assert (await http.get(f"/api/v1/content/{title}", headers=parent)).is_success
            read = await http.get(f"/api/v1/content/{episode}", headers=kid)
            assert read.status_code == allowed, read.text


async def test_feedback_on_a_title_the_catalog_lacks_is_404(spawn, isolated: Isolated) -> None:
    """Found by hand: a rating or a dismissal of a made-up id was accepted (202) and folded into
    the user's taste, where the watchlist add of the same id is 404. Both now ask the catalog
    as the add does; feedback on a title it has is accepted."""
    known = await stored_title(isolated, "Stalker")
    spawn("worker", "readmodel", extra_env=isolated.env)
    gateway = spawn("gateway", extra_env={**isolated.env, "RATE_LIMIT_ENABLED": "false"})
    user = f"critic-{uuid.uuid4().hex[:6]}"
    token = user_token(isolated.settings, subject=user, scopes=["recommendations:write"])
    async with httpx.AsyncClient(base_url=gateway.url, timeout=10, headers=bearer(token)) as http:
        made_up = uuid.uuid4()
        for method, path, body in (
            ("PUT", f"/api/v1/users/{user}/ratings/{made_up}", {"rating": 4}),
            ("POST", f"/api/v1/users/{user}/dismissals/{made_up}", None),
        ):
            refused = await http.request(method, path, json=body)
            assert refused.status_code == 404, refused.text
            assert refused.headers["content-type"].startswith("application/problem+json")
            assert refused.json()["error"] == "not_found"
            assert refused.json()["fields"] == [
                {"field": "path.content_id", "reason": "no title with this id in the catalog"}
            ]
        rated = await http.put(f"/api/v1/users/{user}/ratings/{known}", json={"rating": 5})
        assert rated.status_code == 202, rated.text
        dismissed = await http.post(f"/api/v1/users/{user}/dismissals/{known}")
        assert dismissed.status_code == 202, dismissed.text
