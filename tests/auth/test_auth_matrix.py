"""Who may do what at the gateway: the app in-process, on the session's real broker and Redis.

Every refusal is checked for its status, its error code and its WWW-Authenticate challenge;
every allowed case for its 202 and, for watchlist writes, the event it put on the topic.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import orjson
import pytest

from core.config import Settings
from gateway.auth.key_store import KeyStore
from schemas.envelope import decode
from schemas.sync import WatchlistUpdate
from tests.auth.conftest import KeyPair
from tests.auth.helpers import (
    bearer,
    register_devices,
    running_gateway,
    user_token,
    with_auth,
)
from tests.helpers import catalog_title, read_topic

CHALLENGE = 'Bearer realm="media-gateway"'


def content_body() -> dict[str, Any]:
    return {
        "canonical_id": str(uuid.uuid4()),
        "content_type": "movie",
        "title": "Heat",
        "genres": ["crime"],
        "updated_at": "2026-11-01T00:00:00Z",
    }


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def hand_signed(header: dict[str, Any], claims: dict[str, Any], hmac_key: bytes | None) -> str:
    """A JWT built by hand: PyJWT itself refuses to sign the forgeries these tests need."""
    signing_input = f"{b64(orjson.dumps(header))}.{b64(orjson.dumps(claims))}"
    if hmac_key is None:
        return signing_input + "."
    signature = hmac.new(hmac_key, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64(signature)}"


def claims_for(settings: Settings, sub: str, scope: str = "content:write") -> dict[str, Any]:
    now = int(time.time())
    return {
        "sub": sub,
        "iss": settings.auth.issuer,
        "aud": settings.auth.audience,
        "iat": now,
        "exp": now + 600,
        "typ": "access",
        "scope": scope,
        "tier": "enterprise",
    }


def new_user() -> str:
    return f"user-{uuid.uuid4().hex[:12]}"


def assert_401(resp: httpx.Response, description: str | None = None) -> None:
    assert resp.status_code == 401, resp.text
    body = resp.json()
    assert body["error"] == "unauthorized"
    assert body["request_id"]
    challenge = resp.headers["WWW-Authenticate"]
    assert challenge.startswith(CHALLENGE)
    assert 'error="invalid_token"' in challenge
    if description is not None:
        assert description in body["detail"]
        assert f'error_description="{description}' in challenge


def assert_403(resp: httpx.Response, scope: str | None = None) -> None:
    assert resp.status_code == 403, resp.text
    assert resp.json()["error"] == "forbidden"
    challenge = resp.headers["WWW-Authenticate"]
    assert challenge.startswith(CHALLENGE)
    assert 'error="insufficient_scope"' in challenge
    if scope is not None:
        assert f'scope="{scope}"' in challenge


@pytest.fixture(scope="module")
def both_keys(settings: Settings, rsa_pair: KeyPair) -> Settings:
    """HS256 (the session's secret) and RS256 (a public key) both accepted."""
    return with_auth(settings, jwt_public_key=rsa_pair.public_pem)


@pytest.fixture(scope="module")
async def gw(both_keys: Settings, topics_created: None) -> AsyncIterator[httpx.AsyncClient]:
    async with running_gateway(both_keys) as (_, client):
        yield client


@pytest.fixture(scope="module")
async def rs_only(
    settings: Settings, rsa_pair: KeyPair, topics_created: None
) -> AsyncIterator[httpx.AsyncClient]:
    """Only RS256 configured: no HS256 secret at all."""
    async with running_gateway(
        with_auth(settings, jwt_secret=None, jwt_public_key=rsa_pair.public_pem)
    ) as (_, client):
        yield client


async def post_content(client: httpx.AsyncClient, headers: dict[str, str]) -> httpx.Response:
    return await client.post("/api/v1/content", json=content_body(), headers=headers)


# --- no credential, bad credentials: 401 -------------------------------------------------------


async def test_no_credential_is_401_with_a_bare_challenge(gw: httpx.AsyncClient) -> None:
    resp = await post_content(gw, {})
    assert resp.status_code == 401
    # RFC 6750 3.1: no error code when the client sent no credential at all.
    assert resp.headers["WWW-Authenticate"] == CHALLENGE
    assert resp.json()["error"] == "unauthorized"


async def test_unsupported_scheme_counts_as_no_credential(gw: httpx.AsyncClient) -> None:
    resp = await post_content(gw, {"Authorization": "Basic dXNlcjpwYXNz"})
    assert resp.status_code == 401
    assert resp.headers["WWW-Authenticate"] == CHALLENGE


async def test_malformed_token_is_401(gw: httpx.AsyncClient) -> None:
    assert_401(await post_content(gw, bearer("not-a-jwt")), "malformed token")
    assert_401(await post_content(gw, {"Authorization": "Bearer "}))


async def test_expired_token_is_401(gw: httpx.AsyncClient, settings: Settings) -> None:
    token = user_token(settings, now=time.time() - 7200, ttl_s=3600)
    assert_401(await post_content(gw, bearer(token)), "token expired")


async def test_wrong_audience_is_401(gw: httpx.AsyncClient, settings: Settings) -> None:
    token = user_token(settings, extra_claims={"aud": "someone-else"})
    assert_401(await post_content(gw, bearer(token)), "wrong audience")


async def test_wrong_issuer_is_401(gw: httpx.AsyncClient, settings: Settings) -> None:
    token = user_token(settings, extra_claims={"iss": "https://evil.example"})
    assert_401(await post_content(gw, bearer(token)), "wrong issuer")


async def test_refresh_token_is_refused_on_api_routes(
    gw: httpx.AsyncClient, settings: Settings
) -> None:
    token = user_token(settings, typ="refresh")
    assert_401(await post_content(gw, bearer(token)), "refresh tokens are not accepted")


async def test_token_signed_with_another_secret_is_401(
    gw: httpx.AsyncClient, settings: Settings
) -> None:
    token = hand_signed({"alg": "HS256", "typ": "JWT"}, claims_for(settings, new_user()), b"x" * 40)
    assert_401(await post_content(gw, bearer(token)), "bad signature")


async def test_alg_none_is_401(gw: httpx.AsyncClient, settings: Settings) -> None:
    token = hand_signed({"alg": "none", "typ": "JWT"}, claims_for(settings, new_user()), None)
    assert_401(await post_content(gw, bearer(token)), "algorithm 'none' is not accepted")


# --- RS256 ----------------------------------------------------------------------------------


async def test_rs256_good_signature_is_accepted(
    gw: httpx.AsyncClient, settings: Settings, rsa_pair: KeyPair
) -> None:
    auth = with_auth(settings, jwt_secret=None, jwt_private_key=rsa_pair.private_pem).auth
    token = user_token(auth)
    assert (
        token.count(".") == 2
        and orjson.loads(base64.urlsafe_b64decode(token.split(".")[0] + "=="))["alg"] == "RS256"
    )
    resp = await post_content(gw, bearer(token))
    assert resp.status_code == 202, resp.text


async def test_rs256_signed_by_another_key_is_401(
    gw: httpx.AsyncClient, settings: Settings, other_rsa_pair: KeyPair
) -> None:
    auth = with_auth(settings, jwt_secret=None, jwt_private_key=other_rsa_pair.private_pem).auth
    assert_401(await post_content(gw, bearer(user_token(auth))), "bad signature")


async def test_hs256_token_refused_when_only_rs256_is_configured(
    rs_only: httpx.AsyncClient, settings: Settings, rsa_pair: KeyPair
) -> None:
    # A perfectly good HS256 token for the session's secret: this gateway has no HS256 key.
    resp = await post_content(rs_only, bearer(user_token(settings)))
    assert_401(resp, "algorithm 'HS256' is not accepted")
    # The confusion attack: HS256 keyed with the RS256 public key's PEM bytes.
    forged = hand_signed(
        {"alg": "HS256", "typ": "JWT"},
        claims_for(settings, new_user()),
        rsa_pair.public_pem.encode(),
    )
    assert_401(await post_content(rs_only, bearer(forged)), "algorithm 'HS256' is not accepted")
    # And the RS256 path still works on that gateway.
    auth = with_auth(settings, jwt_secret=None, jwt_private_key=rsa_pair.private_pem).auth
    assert (await post_content(rs_only, bearer(user_token(auth)))).status_code == 202


async def test_confusion_attack_fails_with_both_algorithms_configured(
    gw: httpx.AsyncClient, settings: Settings, rsa_pair: KeyPair
) -> None:
    # With HS256 also configured, the forged token is checked against the real secret only.
    forged = hand_signed(
        {"alg": "HS256", "typ": "JWT"},
        claims_for(settings, new_user()),
        rsa_pair.public_pem.encode(),
    )
    assert_401(await post_content(gw, bearer(forged)), "bad signature")


# --- scopes and ownership: 403 --------------------------------------------------------------


async def test_token_without_the_scope_is_403(gw: httpx.AsyncClient, settings: Settings) -> None:
    token = user_token(settings, scopes=["content:read", "watchlist:write"])
    resp = await post_content(gw, bearer(token))
    assert_403(resp, scope="content:write")
    assert "content:write" in resp.json()["detail"]


async def test_token_with_the_scope_is_accepted(gw: httpx.AsyncClient, settings: Settings) -> None:
    # `scopes` (a list) counts as well as `scope` (a string).
    token = user_token(settings, scopes=[], extra_claims={"scopes": ["content:write"]})
    resp = await post_content(gw, bearer(token))
    assert resp.status_code == 202, resp.text
    assert resp.json()["topic"].endswith(".content.submitted")


async def test_user_a_may_not_write_user_b_watchlist(
    gw: httpx.AsyncClient, settings: Settings
) -> None:
    alice, bob = new_user(), new_user()
    token = user_token(settings, subject=alice, scopes=["watchlist:write"])
    url = f"/api/v1/users/{bob}/watchlist/{uuid.uuid4()}"
    assert_403(await gw.put(url, headers=bearer(token)))
    assert_403(await gw.delete(url, headers=bearer(token)))


async def test_watchlist_write_needs_the_scope_even_on_ones_own_id(
    gw: httpx.AsyncClient, settings: Settings
) -> None:
    alice = new_user()
    token = user_token(settings, subject=alice, scopes=["content:write"])
    resp = await gw.put(f"/api/v1/users/{alice}/watchlist/{uuid.uuid4()}", headers=bearer(token))
    assert_403(resp, scope="watchlist:write")


async def test_user_writes_own_watchlist_and_the_event_is_published(
    gw: httpx.AsyncClient, settings: Settings
) -> None:
    alice = new_user()
    content_id = await catalog_title(settings)
    token = user_token(settings, subject=alice, scopes=["watchlist:write"])
    url = f"/api/v1/users/{alice}/watchlist/{content_id}"
    await register_devices(gw, settings, alice, "tv-1")
    added = await gw.put(url, headers={**bearer(token), "X-Device-ID": "tv-1"})
    assert added.status_code == 202, added.text
    tag = added.json()["unique_tag"]
    removed = await gw.request("DELETE", url, headers=bearer(token), json={"observed_tags": [tag]})
    assert removed.status_code == 202, removed.text
    assert removed.json()["unique_tag"] is None
    remove_all = await gw.delete(url, headers=bearer(token))
    assert remove_all.status_code == 202, remove_all.text

    topic = f"{settings.kafka.topic_prefix}.sync.watchlist"
    assert added.json()["topic"] == topic
    records = await read_topic(settings.kafka.bootstrap, topic)
    ours = {(r.partition, r.offset): r for r in records if r.key == alice.encode()}
    events = []
    for resp in (added, removed, remove_all):
        accepted = resp.json()
        record = ours[(accepted["partition"], accepted["offset"])]
        events.append(decode(record.value, WatchlistUpdate).payload)
    add, remove, remove_everything = events
    assert add.operation == "add" and str(add.unique_tag) == tag and add.device_id == "tv-1"
    assert add.user_id == alice and add.content_id == content_id
    assert remove.operation == "remove" and [str(t) for t in remove.removed_tags] == [tag]
    assert remove_everything.removed_tags == [] and remove_everything.device_id is None
    # One process, one clock: stamps strictly increase.
    assert add.timestamp.order() < remove.timestamp.order() < remove_everything.timestamp.order()


async def test_admin_may_act_for_another_user(gw: httpx.AsyncClient, settings: Settings) -> None:
    token = user_token(settings, subject=new_user(), scopes=["watchlist:write"], roles=["admin"])
    title = await catalog_title(settings)
    resp = await gw.put(f"/api/v1/users/{new_user()}/watchlist/{title}", headers=bearer(token))
    assert resp.status_code == 202, resp.text


# --- API keys -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
async def keys(settings: Settings) -> AsyncIterator[KeyStore]:
    async with KeyStore.open(settings) as store:
        yield store


async def test_api_key_with_the_scope_is_accepted(gw: httpx.AsyncClient, keys: KeyStore) -> None:
    _, key = await keys.create("matrix-producer", ["content:write"], "pro")
    resp = await post_content(gw, {"X-API-Key": key})
    assert resp.status_code == 202, resp.text
    # The Authorization form works as well.
    resp = await post_content(gw, {"Authorization": f"ApiKey {key}"})
    assert resp.status_code == 202, resp.text
    who = await gw.get("/api/v1/auth/whoami", headers={"X-API-Key": key})
    assert who.json()["kind"] == "api_key" and who.json()["tier"] == "pro"


async def test_revoked_api_key_is_401(gw: httpx.AsyncClient, keys: KeyStore) -> None:
    stored, key = await keys.create("matrix-revoked", ["content:write"])
    assert (await post_content(gw, {"X-API-Key": key})).status_code == 202
    await keys.revoke(stored.key_id)
    assert_401(await post_content(gw, {"X-API-Key": key}), "unknown or revoked API key")


async def test_unknown_api_key_is_401(gw: httpx.AsyncClient, keys: KeyStore) -> None:
    _, real = await keys.create("matrix-known", ["content:write"])
    # Well formed, never issued.
    unknown = "mgw_" + "0" * 12 + "_" + "A" * 43
    assert_401(await post_content(gw, {"X-API-Key": unknown}), "unknown or revoked API key")
    # A real secret under another key id: a rewritten key is not accepted.
    key_id = real.split("_")[1]
    rewritten = real.replace(key_id, "f" * 12 if key_id != "f" * 12 else "e" * 12)
    assert_401(await post_content(gw, {"X-API-Key": rewritten}), "unknown or revoked API key")
    assert_401(await post_content(gw, {"X-API-Key": "hunter2"}), "malformed API key")


async def test_api_key_without_the_scope_is_403(gw: httpx.AsyncClient, keys: KeyStore) -> None:
    _, key = await keys.create("matrix-reader", ["content:read"])
    assert_403(await post_content(gw, {"X-API-Key": key}), scope="content:write")


async def test_api_key_never_acts_for_a_user(gw: httpx.AsyncClient, keys: KeyStore) -> None:
    stored, key = await keys.create("matrix-sync", ["watchlist:write"])
    # Not even on a "user" whose id equals the key's own id.
    resp = await gw.put(
        f"/api/v1/users/{stored.key_id}/watchlist/{uuid.uuid4()}", headers={"X-API-Key": key}
    )
    assert_403(resp)
    assert "API keys" in resp.json()["detail"]


async def test_two_credentials_at_once_is_400(
    gw: httpx.AsyncClient, keys: KeyStore, settings: Settings
) -> None:
    _, key = await keys.create("matrix-both", ["content:write"])
    resp = await post_content(gw, {"X-API-Key": key, **bearer(user_token(settings))})
    assert resp.status_code == 400
    assert 'error="invalid_request"' in resp.headers["WWW-Authenticate"]


async def test_whoami_reports_the_principal(gw: httpx.AsyncClient, settings: Settings) -> None:
    alice = new_user()
    token = user_token(
        settings,
        subject=alice,
        scopes=["watchlist:write", "content:read"],
        tier="pro",
        roles=["tester"],
    )
    resp = await gw.get("/api/v1/auth/whoami", headers=bearer(token))
    assert resp.status_code == 200
    assert resp.json() == {
        "kind": "user",
        "subject": alice,
        "scopes": ["content:read", "watchlist:write"],
        "roles": ["tester"],
        "tier": "pro",
        "name": None,
    }
    assert (await gw.get("/api/v1/auth/whoami")).status_code == 401


async def test_health_needs_no_credential_and_ignores_bad_ones(gw: httpx.AsyncClient) -> None:
    assert (await gw.get("/health/live")).status_code == 200
    resp = await gw.get("/health/live", headers=bearer("garbage"))
    assert resp.status_code == 200
    assert "X-RateLimit-Limit" not in resp.headers
