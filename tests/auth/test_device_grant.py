"""TV sign-in by the Device Authorization Grant (RFC 8628) end to end: an auth and a sync
worker and a gateway as processes. Each outcome of the TV's polling, the approval that
registers the TV as the user's device, single use, expiry, the per-address rate limit, and
a TV bound to the kids profile it was approved for."""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import jsonschema
import jwt
import pytest
import redis.asyncio as aioredis

from tests.auth.helpers import bearer, user_token
from tests.auth.test_token_service import answering, refresh, sign_in
from tests.conftest import Isolated
from tests.e2e.test_profiles import ADULT_ONLY, KIDS, titles
from tests.e2e.test_search import seeded
from tests.helpers import wait_for

pytestmark = pytest.mark.slow

DEVICE_CODE = "urn:ietf:params:oauth:grant-type:device_code"
FORM = {"Content-Type": "application/x-www-form-urlencoded"}
PHONE_SCOPES = ["devices:read", "devices:write", "watchlist:read"]
CODES_PER_MINUTE = 8


@pytest.fixture
async def gateway(spawn, isolated: Isolated) -> AsyncIterator[str]:  # type: ignore[no-untyped-def]
    env = {
        **isolated.env,
        "RATE_LIMIT_ENABLED": "false",
        "AUTH_DEVICE_CODE_TTL_S": "4",
        "AUTH_DEVICE_POLL_INTERVAL_S": "1",
        "AUTH_DEVICE_CODES_PER_MINUTE": str(CODES_PER_MINUTE),
    }
    spawn("worker", "auth", "sync", extra_env=env)
    base = spawn("gateway", extra_env=env).url
    await answering(base)
    yield base


async def ask_codes(http: httpx.AsyncClient, **extra: str) -> httpx.Response:
    return await http.post(
        "/api/v1/auth/device/code", data={"client_id": "tv-app", **extra}, headers=FORM
    )


async def poll(http: httpx.AsyncClient, device_code: str) -> httpx.Response:
    return await http.post(
        "/api/v1/auth/token",
        data={"grant_type": DEVICE_CODE, "device_code": device_code},
        headers=FORM,
    )


async def as_documented(http: httpx.AsyncClient, path: str, answer: httpx.Response) -> None:
    """The 200 matches the schema the gateway's OpenAPI document gives it (it was {})."""
    document = (await http.get("/openapi.json")).json()
    media = document["paths"][path]["post"]["responses"]["200"]["content"]["application/json"]
    assert media["schema"], f"POST {path}: no schema"
    jsonschema.Draft202012Validator(media["schema"]).validate(answer.json())


def error_of(resp: httpx.Response) -> str:
    assert resp.status_code == 400, resp.text
    body: dict[str, Any] = resp.json()
    return str(body["error"])


async def test_a_tv_signs_in_by_device_code(gateway: str, isolated: Isolated) -> None:
    user = f"viewer-{uuid.uuid4().hex[:6]}"
    phone = bearer(user_token(isolated.settings, subject=user, scopes=PHONE_SCOPES))
    async with httpx.AsyncClient(base_url=gateway, timeout=15) as http:
        asked = await ask_codes(
            http, scope="devices:read watchlist:read progress:write", remote_controllable="true"
        )
        assert asked.status_code == 200, asked.text
        codes = asked.json()
        assert re.fullmatch(
            r"[BCDFGHJKLMNPQRSTVWXZ]{4}-[BCDFGHJKLMNPQRSTVWXZ]{4}", codes["user_code"]
        )
        assert codes["verification_uri"].endswith("/activate")
        assert codes["verification_uri_complete"].endswith(f"?user_code={codes['user_code']}")
        assert (codes["expires_in"], codes["interval"]) == (4, 1)
        assert asked.headers["Cache-Control"] == "no-store"
        await as_documented(http, "/api/v1/auth/device/code", asked)

        assert error_of(await poll(http, codes["device_code"])) == "authorization_pending"
        # Faster than the interval: slow_down (and the interval grows by 5 s).
        assert error_of(await poll(http, codes["device_code"])) == "slow_down"

        # The phone types it as people do: lower case, no hyphen.
        typed = codes["user_code"].replace("-", "").lower()
        approved = await http.post(
            "/api/v1/auth/device/approve", json={"user_code": typed}, headers=phone
        )
        assert approved.status_code == 200, approved.text
        assert approved.json() == {"status": "approved", "device_id": codes["device_id"]}
        await as_documented(http, "/api/v1/auth/device/approve", approved)

        tokens = await poll(http, codes["device_code"])
        assert tokens.status_code == 200, tokens.text
        # What the TV asked for that the phone holds (progress:write it does not).
        assert tokens.json()["scope"] == "devices:read watchlist:read"
        tv = bearer(tokens.json()["access_token"])
        me = await http.get("/api/v1/auth/whoami", headers=tv)
        assert me.json()["subject"] == user
        # The TV is a device of the user at once: its requests naming it are accepted.
        listed = await http.get(
            f"/api/v1/users/{user}/devices", headers={**tv, "X-Device-ID": codes["device_id"]}
        )
        assert listed.status_code == 200, listed.text
        (tv_device,) = [d for d in listed.json()["devices"] if d["device_id"] == codes["device_id"]]
        # It said it takes remote commands: the phone can tell it to play.
        assert tv_device["capabilities"]["remote_controllable"] is True

        # Single use: the code is spent, and cannot be approved again.
        assert error_of(await poll(http, codes["device_code"])) == "invalid_grant"
        again = await http.post(
            "/api/v1/auth/device/approve", json={"user_code": typed}, headers=phone
        )
        assert again.status_code == 400 and again.json()["error"] == "invalid_user_code"
        assert error_of(await poll(http, "made-up-device-code")) == "invalid_grant"


async def test_denied_expired_malformed_and_rate_limited(gateway: str, isolated: Isolated) -> None:
    phone = bearer(user_token(isolated.settings, scopes=PHONE_SCOPES))
    async with httpx.AsyncClient(base_url=gateway, timeout=15) as http:
        denied = (await ask_codes(http)).json()
        refused = await http.post(
            "/api/v1/auth/device/deny", json={"user_code": denied["user_code"]}, headers=phone
        )
        assert refused.status_code == 200 and refused.json() == {"status": "denied"}
        await as_documented(http, "/api/v1/auth/device/deny", refused)
        assert error_of(await poll(http, denied["device_code"])) == "access_denied"

        late = (await ask_codes(http)).json()
        await asyncio.sleep(4.2)
        assert error_of(await poll(http, late["device_code"])) == "expired_token"
        too_late = await http.post(
            "/api/v1/auth/device/approve", json={"user_code": late["user_code"]}, headers=phone
        )
        assert too_late.status_code == 400 and too_late.json()["error"] == "invalid_user_code"

        malformed = await http.post(
            "/api/v1/auth/device/approve", json={"user_code": "AEIO-1234"}, headers=phone
        )
        assert malformed.status_code == 422
        unsigned = await http.post("/api/v1/auth/device/approve", json={"user_code": "x"})
        assert unsigned.status_code == 401
        not_a_flag = await ask_codes(http, remote_controllable="yes")
        assert error_of(not_a_flag) == "invalid_request"
        assert "remote_controllable" in not_a_flag.json()["error_description"]
        no_client = await http.post("/api/v1/auth/device/code", data={}, headers=FORM)
        assert no_client.json()["error_description"] == "field client_id: required"

        # A fresh minute for this address: the window opened with the earlier asks may end
        # during the burst on a slow machine, and the count would start again inside it.
        redis = aioredis.from_url(isolated.settings.redis.require_url())
        try:
            prefix = isolated.settings.redis.key_prefix
            await redis.delete(f"{prefix}:auth:device-code-rate:{{127.0.0.1}}")
        finally:
            await redis.aclose()
        statuses = [(await ask_codes(http)).status_code for _ in range(CODES_PER_MINUTE)]
        assert statuses == [200] * CODES_PER_MINUTE, statuses
        limited = await ask_codes(http)
        assert limited.status_code == 429
        assert limited.json()["error"] == "slow_down"
        assert 1 <= int(limited.headers["Retry-After"]) <= 60


def claims_of(tokens: httpx.Response) -> dict[str, Any]:
    assert tokens.status_code == 200, tokens.text
    # The gateway verifies it below; here only its claims are read.
    found: dict[str, Any] = jwt.decode(
        tokens.json()["access_token"], options={"verify_signature": False}
    )
    return found


async def test_a_tv_approved_for_the_kids_profile_is_bound_to_it(
    spawn,  # type: ignore[no-untyped-def]
    isolated: Isolated,
) -> None:
    """The parent signs the child's TV in for the kids profile: every token of its session
    carries `"profile": "kid"`, so its searches are the kid's and it can never act as the
    parent. A profile not of the account, or one a kids approver may not give, is refused."""
    await seeded(isolated)
    env = {**isolated.env, "RATE_LIMIT_ENABLED": "false", "AUTH_DEV_MODE": "true"}
    spawn("worker", "auth", "sync", "accounts", "discovery", extra_env=env)
    base = spawn("gateway", extra_env=env).url
    await answering(base)
    user = f"parent-{uuid.uuid4().hex[:8]}"
    scopes = [*PHONE_SCOPES, "profiles:read", "profiles:write"]
    parent = bearer(user_token(isolated.settings, subject=user, scopes=scopes))
    kid_phone = {**parent, "X-Profile-ID": "kid"}
    async with httpx.AsyncClient(base_url=base, timeout=15) as http:
        for profile_id, profile in (("kid", KIDS), ("mom", {"name": "Mom", "kind": "adult"})):
            put = await http.put(
                f"/api/v1/users/{user}/profiles/{profile_id}", json=profile, headers=parent
            )
            assert put.status_code == 202, put.text

        async def both_applied() -> bool:
            listed = await http.get(f"/api/v1/users/{user}/profiles", headers=parent)
            return {p["profile_id"] for p in listed.json()["profiles"]} == {"kid", "mom"}

        await wait_for(both_applied, timeout=20)

        async def approve(code: str, headers: dict[str, str], **extra: str) -> httpx.Response:
            return await http.post(
                "/api/v1/auth/device/approve", json={"user_code": code, **extra}, headers=headers
            )

        codes = (await ask_codes(http)).json()
        ghost = await approve(codes["user_code"], parent, profile_id="nobody")
        assert ghost.status_code == 403 and ghost.json()["error"] == "unknown_profile"
        assert ghost.json()["fields"][0]["field"] == "body.profile_id"
        # Acting as the kid, the phone cannot sign a TV in as the parent's adult profile.
        upward = await approve(codes["user_code"], kid_phone, profile_id="mom")
        assert upward.status_code == 403 and upward.json()["error"] == "restricted"
        # Both refusals left the code waiting: the parent approves it for the kid.
        approved = await approve(codes["user_code"], parent, profile_id="kid")
        assert approved.status_code == 200, approved.text
        tokens = await poll(http, codes["device_code"])
        assert claims_of(tokens)["profile"] == "kid"
        tv = bearer(tokens.json()["access_token"])

        query = {"q": "horror movies"}
        adult = await http.get("/api/v1/search", params=query, headers=parent)
        assert adult.status_code == 200 and titles(adult.json()) & ADULT_ONLY
        child = await http.get("/api/v1/search", params=query, headers=tv)
        assert child.status_code == 200, child.text
        assert not titles(child.json()) & ADULT_ONLY
        browse = await http.get(
            "/api/v1/search", params={"q": "movies", "page_size": 100}, headers=tv
        )
        assert titles(browse.json()) and not titles(browse.json()) & ADULT_ONLY
        as_mom = await http.get(
            "/api/v1/search", params=query, headers={**tv, "X-Profile-ID": "mom"}
        )
        assert as_mom.status_code == 403 and as_mom.json()["error"] == "unknown_profile"

        # A refresh keeps the binding, for the whole family.
        refreshed = await refresh(http, tokens.json()["refresh_token"])
        assert claims_of(refreshed)["profile"] == "kid"
        again = await refresh(http, refreshed.json()["refresh_token"])
        assert claims_of(again)["profile"] == "kid"

        # Without profile_id the TV inherits the approver's acting profile: never more.
        inherited = (await ask_codes(http)).json()
        assert (await approve(inherited["user_code"], kid_phone)).status_code == 200
        assert claims_of(await poll(http, inherited["device_code"]))["profile"] == "kid"
        # And the parent acting as the account signs an unbound TV in, as before.
        unbound = (await ask_codes(http)).json()
        assert (await approve(unbound["user_code"], parent)).status_code == 200
        assert "profile" not in claims_of(await poll(http, unbound["device_code"]))

        # The dev grant binds its tokens the same way.
        dev = await sign_in(http, user, profile="kid")
        assert claims_of(dev)["profile"] == "kid"
        assert claims_of(await refresh(http, dev.json()["refresh_token"]))["profile"] == "kid"
