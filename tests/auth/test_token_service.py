"""The built-in token service end to end: an auth worker and gateways as processes, with the
session's Redis, PostgreSQL and broker. Grants, refresh rotation with reuse detection,
revocation reaching every gateway process within a second, keys, JWKS and rotation."""

from __future__ import annotations

import asyncio
import os
import sys
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import jwt
import pytest

from tests.auth.helpers import bearer
from tests.conftest import ROOT, Isolated, Proc
from tests.helpers import wait_for

pytestmark = pytest.mark.slow

DEV = "urn:media-gateway:params:oauth:grant-type:dev-user"
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


@pytest.fixture
async def gateways(spawn, isolated: Isolated) -> AsyncIterator[tuple[str, str, Proc]]:  # type: ignore[no-untyped-def]
    env = {**isolated.env, "AUTH_DEV_MODE": "true", "RATE_LIMIT_ENABLED": "false"}
    worker = spawn("worker", "auth", extra_env=env)
    first = spawn("gateway", extra_env=env)
    second = spawn("gateway", extra_env=env)
    await answering(first.url)
    yield first.url, second.url, worker


async def answering(base: str) -> None:
    """Until the auth agents answer (a worker is ready before its consumers hold partitions:
    a request before then times out as 503 temporarily_unavailable)."""

    async def answered() -> bool:
        async with httpx.AsyncClient(base_url=base, timeout=15) as http:
            return (await refresh(http, "warm-up")).status_code == 400

    await wait_for(answered, timeout=90, interval=0.5)


async def sign_in(http: httpx.AsyncClient, user: str, **extra: str) -> httpx.Response:
    return await http.post(
        "/api/v1/auth/token", data={"grant_type": DEV, "username": user, **extra}, headers=FORM
    )


async def refresh(http: httpx.AsyncClient, token: str) -> httpx.Response:
    return await http.post(
        "/api/v1/auth/token",
        data={"grant_type": "refresh_token", "refresh_token": token},
        headers=FORM,
    )


def oauth_error(resp: httpx.Response) -> tuple[int, str, str]:
    body: dict[str, Any] = resp.json()
    assert resp.headers["Cache-Control"] == "no-store"
    return resp.status_code, body["error"], body.get("error_description", "")


async def test_dev_sign_in_refresh_rotation_and_reuse_detection(
    gateways: tuple[str, str, Proc],
) -> None:
    base, other, _ = gateways
    user = f"u-{uuid.uuid4().hex[:8]}"
    async with httpx.AsyncClient(base_url=base, timeout=15) as http:
        signed = await sign_in(http, user, scope="watchlist:read devices:write")
        assert signed.status_code == 200, signed.text
        tokens = signed.json()
        assert tokens["token_type"] == "Bearer" and tokens["expires_in"] == 3600
        assert tokens["scope"] == "devices:write watchlist:read"
        assert jwt.get_unverified_header(tokens["access_token"])["alg"] == "EdDSA"
        me = await http.get("/api/v1/auth/whoami", headers=bearer(tokens["access_token"]))
        assert me.status_code == 200, me.text
        assert me.json()["subject"] == user
        assert set(me.json()["scopes"]) == {"watchlist:read", "devices:write"}

        # Rotation: a new refresh token each time; the old one is spent.
        rotated = await refresh(http, tokens["refresh_token"])
        assert rotated.status_code == 200, rotated.text
        second = rotated.json()
        assert second["refresh_token"] != tokens["refresh_token"]
        claims = jwt.decode(second["access_token"], options={"verify_signature": False})
        first_claims = jwt.decode(tokens["access_token"], options={"verify_signature": False})
        assert claims["sid"] == first_claims["sid"] and claims["jti"] != first_claims["jti"]
        assert (
            await http.get("/api/v1/auth/whoami", headers=bearer(second["access_token"]))
        ).status_code == 200

        # Reuse: the spent token again revokes the whole family, the fresh one included.
        reused = await refresh(http, tokens["refresh_token"])
        assert oauth_error(reused) == (
            400,
            "invalid_grant",
            "refresh token already used: its session is revoked",
        )
        assert oauth_error(await refresh(http, second["refresh_token"]))[1] == "invalid_grant"
        # And the family's access tokens are refused by every gateway process within 1 s.
        answered = time.monotonic()
        async with httpx.AsyncClient(base_url=other, timeout=15) as http2:
            for client in (http, http2):
                await wait_for(
                    lambda c=client: _refused(c, second["access_token"]), timeout=1.0, interval=0.02
                )
        assert time.monotonic() - answered < 1.0
        gone = await http.get("/api/v1/auth/whoami", headers=bearer(second["access_token"]))
        assert "token revoked" in gone.headers["WWW-Authenticate"]


async def test_token_endpoint_errors_as_rfc_6749_says(gateways: tuple[str, str, Proc]) -> None:
    base, _, _ = gateways
    async with httpx.AsyncClient(base_url=base, timeout=15) as http:
        post = http.post
        assert oauth_error(await post("/api/v1/auth/token", data={}, headers=FORM))[:2] == (
            400,
            "invalid_request",
        )
        wrong_type = await post("/api/v1/auth/token", json={"grant_type": "refresh_token"})
        assert oauth_error(wrong_type)[1:] == (
            "invalid_request",
            "the body must be application/x-www-form-urlencoded",
        )
        twice = await post(
            "/api/v1/auth/token",
            content="grant_type=refresh_token&grant_type=refresh_token",
            headers=FORM,
        )
        assert oauth_error(twice)[2] == "field grant_type: sent more than once"
        unsupported = await post(
            "/api/v1/auth/token", data={"grant_type": "password"}, headers=FORM
        )
        assert oauth_error(unsupported)[1] == "unsupported_grant_type"
        missing = await post(
            "/api/v1/auth/token", data={"grant_type": "refresh_token"}, headers=FORM
        )
        assert oauth_error(missing)[2] == "field refresh_token: required"
        unknown = await refresh(http, "not-a-token-we-issued")
        assert oauth_error(unknown) == (400, "invalid_grant", "refresh token not recognised")
        bad_scope = await sign_in(http, "someone", scope="watchlist:read root")
        assert oauth_error(bad_scope) == (400, "invalid_scope", "unknown scope: root")
        assert oauth_error(await sign_in(http, ""))[2] == "field username: required"


async def test_logout_reaches_every_gateway_process_within_a_second(
    gateways: tuple[str, str, Proc],
) -> None:
    base, other, _ = gateways
    async with (
        httpx.AsyncClient(base_url=base, timeout=15) as http,
        httpx.AsyncClient(base_url=other, timeout=15) as http2,
    ):
        tokens = (await sign_in(http, f"u-{uuid.uuid4().hex[:8]}")).json()
        access = bearer(tokens["access_token"])
        # Both processes have verified (and cached) the token.
        assert (await http.get("/api/v1/auth/whoami", headers=access)).status_code == 200
        assert (await http2.get("/api/v1/auth/whoami", headers=access)).status_code == 200
        revoked = await http.post(
            "/api/v1/auth/revoke", data={"token": tokens["refresh_token"]}, headers=FORM
        )
        assert revoked.status_code == 200, revoked.text
        answered = time.monotonic()

        async def refused_by_the_other() -> bool:
            return (await http2.get("/api/v1/auth/whoami", headers=access)).status_code == 401

        await wait_for(refused_by_the_other, timeout=5, interval=0.02)
        assert time.monotonic() - answered < 1.0
        assert oauth_error(await refresh(http, tokens["refresh_token"]))[1] == "invalid_grant"
        # Signing out with the access token (what a client holding only that sends) revokes
        # the same session: the access token is refused everywhere within a second, and the
        # session's refresh token no longer refreshes. An unknown token is still a 200.
        again = (await sign_in(http, "u-again")).json()
        assert (
            await http2.get("/api/v1/auth/whoami", headers=bearer(again["access_token"]))
        ).status_code == 200
        by_access = await http.post(
            "/api/v1/auth/revoke", data={"token": again["access_token"]}, headers=FORM
        )
        assert by_access.status_code == 200
        answered = time.monotonic()
        for client in (http, http2):
            await wait_for(
                lambda c=client: _refused(c, again["access_token"]), timeout=1.0, interval=0.02
            )
        assert time.monotonic() - answered < 1.0
        assert oauth_error(await refresh(http, again["refresh_token"])) == (
            400,
            "invalid_grant",
            "refresh token revoked",
        )
        assert (
            await http.post("/api/v1/auth/revoke", data={"token": "nothing"}, headers=FORM)
        ).status_code == 200


async def _refused(http: httpx.AsyncClient, token: str) -> bool:
    return (await http.get("/api/v1/auth/whoami", headers=bearer(token))).status_code == 401


async def test_jwks_discovery_and_key_rotation(
    gateways: tuple[str, str, Proc], isolated: Isolated
) -> None:
    base, other, _ = gateways
    async with httpx.AsyncClient(base_url=base, timeout=15) as http:
        old = (await sign_in(http, "rotating")).json()["access_token"]
        keys = (await http.get("/.well-known/jwks.json")).json()["keys"]
        assert [k["kid"] for k in keys] == [jwt.get_unverified_header(old)["kid"]]
        assert keys[0]["kty"] == "OKP" and "d" not in keys[0] and "exp_after" not in keys[0]
        # The served key verifies the token, as any OIDC client would check it.
        signer = jwt.PyJWK(keys[0])
        assert jwt.decode(old, signer.key, algorithms=["EdDSA"], audience="media-gateway-api")
        discovery = (await http.get("/.well-known/openid-configuration")).json()
        assert discovery["jwks_uri"].endswith("/.well-known/jwks.json")
        assert "urn:ietf:params:oauth:grant-type:device_code" in discovery["grant_types_supported"]

        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "cli.main", "auth", "rotate-key",
            cwd=ROOT, env={**os.environ, **isolated.env},
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        stdout, stderr = await asyncio.wait_for(proc.communicate(), 60)
        assert proc.returncode == 0, stderr.decode()
        new_kid = stdout.decode().strip()
        new = (await sign_in(http, "rotating")).json()["access_token"]
        assert jwt.get_unverified_header(new)["kid"] == new_kid
        served = {k["kid"] for k in (await http.get("/.well-known/jwks.json")).json()["keys"]}
        assert served == {new_kid, jwt.get_unverified_header(old)["kid"]}
        # The old key still verifies its tokens; the new one is known to the other process at
        # its first token, before any poll (it reloads the keys on an unknown kid).
        async with httpx.AsyncClient(base_url=other, timeout=15) as http2:
            for token in (old, new):
                assert (
                    await http2.get("/api/v1/auth/whoami", headers=bearer(token))
                ).status_code == 200
