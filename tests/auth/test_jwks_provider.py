"""External OpenID Connect providers: tokens verified through the provider's JWKS, fetched over
real HTTP from a loopback provider (devtools/oidc_provider.py), through the gateway."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from core.config import AuthSettings, Settings
from devtools.oidc_provider import LoopbackOidcProvider
from gateway.auth.tokens import InvalidToken, TokenVerifier, UnknownSigningKey
from tests.auth.helpers import bearer, running_gateway, with_auth


def verifier_for(idp: LoopbackOidcProvider, **overrides: Any) -> TokenVerifier:
    values: dict[str, Any] = {
        "jwt_secret": None,
        "jwt_public_key": None,
        "jwt_private_key": None,
        "jwks_url": idp.jwks_url,
        "trusted_issuers": f"other-idp,{idp.issuer}",
        "jwks_refresh_cooldown_s": 0,
        **overrides,
    }
    return TokenVerifier.from_settings(AuthSettings.model_validate(values))


async def test_a_providers_token_is_accepted_and_a_rotated_key_with_its_first_token() -> None:
    async with LoopbackOidcProvider() as idp:
        v = verifier_for(idp)
        first = await v.verify_async(idp.token("alice"))
        assert first.subject == "alice" and first.scopes == {"watchlist:read"}
        assert idp.jwks_fetches == 1
        # Cached: the same token again costs no fetch and no signature check.
        await v.verify_async(idp.token("alice"))
        assert idp.jwks_fetches == 1
        idp.rotate()
        rotated = await v.verify_async(idp.token("bob"))
        assert rotated.subject == "bob"
        assert idp.jwks_fetches == 2  # the unknown kid forced one fetch


async def test_unknown_key_wrong_issuer_and_alg_mismatch_are_refused() -> None:
    async with LoopbackOidcProvider() as idp:
        v = verifier_for(idp)
        stranger = ec.generate_private_key(ec.SECP256R1())
        with pytest.raises(UnknownSigningKey, match="unknown signing key"):
            await v.verify_async(idp.token("mallory", key=stranger, kid="not-published"))
        # A published kid with a signature of another key: a bad signature, not a fetch.
        with pytest.raises(InvalidToken, match="bad signature"):
            await v.verify_async(idp.token("mallory", key=stranger))
        with pytest.raises(InvalidToken, match="wrong issuer"):
            await v.verify_async(idp.token("alice", iss="https://evil.example"))
        assert (await v.verify_async(idp.token("carol", iss="other-idp"))).subject == "carol"


async def test_a_key_the_provider_withdrew_stops_verifying_at_the_next_fetch() -> None:
    async with LoopbackOidcProvider() as idp:
        v = verifier_for(idp)
        await v.verify_async(idp.token("alice"))
        unseen = idp.token("alice", ttl_s=601)  # signed by the same key, not verified yet
        idp.rotate()
        idp.retire_old_keys()
        assert v.external is not None
        await asyncio.to_thread(v.external.refresh)  # the periodic fetch
        with pytest.raises(UnknownSigningKey):
            await v.verify_async(unseen)


async def test_unknown_kids_force_at_most_one_fetch_per_cooldown() -> None:
    async with LoopbackOidcProvider() as idp:
        v = verifier_for(idp, jwks_refresh_cooldown_s=60)
        await v.verify_async(idp.token("alice"))  # the first, forced fetch starts the cooldown
        for n in range(5):
            with pytest.raises(UnknownSigningKey):
                await v.verify_async(idp.token("x", kid=f"made-up-{n}"))
        assert idp.jwks_fetches == 1


async def test_the_gateway_accepts_a_providers_token_beside_its_own_secret(
    settings: Settings,
) -> None:
    async with LoopbackOidcProvider() as idp:
        configured = with_auth(settings, jwks_url=[idp.jwks_url], trusted_issuers=[idp.issuer])
        async with running_gateway(configured) as (_, http):
            ok = await http.get("/api/v1/auth/whoami", headers=bearer(idp.token("dana")))
            assert ok.status_code == 200, ok.text
            assert ok.json()["subject"] == "dana"
            forged = idp.token("dana", key=ec.generate_private_key(ec.SECP256R1()), kid="nope")
            refused = await http.get("/api/v1/auth/whoami", headers=bearer(forged))
            assert refused.status_code == 401
            assert "unknown signing key" in refused.headers["WWW-Authenticate"]
