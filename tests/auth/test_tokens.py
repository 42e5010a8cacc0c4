"""Credential verification as plain functions: tokens, API keys, headers, challenges, principals.

No services: everything here runs on values built in the test.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from pydantic import SecretStr

from core.config import AuthSettings, ConfigError, load_settings
from gateway.auth.api_keys import (
    ApiKeyRecord,
    InvalidApiKey,
    check_scopes,
    generate_key,
    hash_secret,
    parse_key,
    redis_key,
    verify_record,
)
from gateway.auth.dependencies import extract_credential
from gateway.auth.errors import BadAuthRequest, Unauthorized, challenge
from gateway.auth.principal import SCOPES, Principal, Tier
from gateway.auth.tokens import (
    InvalidToken,
    TokenVerifier,
    issue_token,
    load_public_key,
    parse_scopes,
    principal_from_claims,
)
from tests.auth.conftest import KeyPair

SECRET = "unit-test-secret-0123456789abcdef0123456789"


def auth(**overrides: Any) -> AuthSettings:
    # Every key named: AuthSettings also reads AUTH_* from the environment, which the session's
    # fixtures set for the other tests of this run.
    values: dict[str, Any] = {
        "jwt_secret": SecretStr(SECRET),
        "jwt_public_key": None,
        "jwt_private_key": None,
        **overrides,
    }
    return AuthSettings.model_validate(values)


def verifier(a: AuthSettings | None = None) -> TokenVerifier:
    return TokenVerifier.from_settings(a or auth())


def token(a: AuthSettings | None = None, **kwargs: Any) -> str:
    kwargs.setdefault("subject", "alice")
    kwargs.setdefault("scopes", ["content:write"])
    return issue_token(a or auth(), **kwargs)


def refused(v: TokenVerifier, tok: str) -> str:
    with pytest.raises(InvalidToken) as info:
        v.verify(tok)
    return str(info.value)


# --- tokens ---------------------------------------------------------------------------------


def test_good_hs256_token_gives_the_user_principal() -> None:
    now = time.time()
    tok = token(
        scopes=["content:write", "watchlist:write"], roles=["admin"], tier="pro", now=now, ttl_s=600
    )
    p = verifier().verify(tok)
    assert p == Principal(
        kind="user",
        subject="alice",
        scopes=frozenset({"content:write", "watchlist:write"}),
        roles=frozenset({"admin"}),
        tier=Tier.pro,
        # The token's exp: streams end there, PubNub grants and tickets live no longer.
        expires_at=float(int(now) + 600),
    )


def test_expiry_is_checked_with_the_leeway() -> None:
    now = time.time()
    assert refused(verifier(), token(now=now - 100, ttl_s=50)) == "token expired"
    # Expired 20 s ago, within the 30 s leeway: still accepted.
    assert verifier().verify(token(now=now - 70, ttl_s=50)).subject == "alice"
    assert refused(verifier(auth(leeway_s=0)), token(now=now - 70, ttl_s=50)) == "token expired"


def test_issued_in_the_future_is_refused() -> None:
    assert refused(verifier(), token(now=time.time() + 3600)) == "token not yet valid"


def test_audience_and_issuer_must_match() -> None:
    assert refused(verifier(), token(extra_claims={"aud": "other"})) == "wrong audience"
    # A list of audiences that includes ours is fine.
    ok = token(extra_claims={"aud": ["other", "media-gateway-api"]})
    assert verifier().verify(ok).subject == "alice"
    assert refused(verifier(), token(extra_claims={"iss": "other"})) == "wrong issuer"
    assert verifier(auth(issuer="idp", audience="api")).verify(
        token(auth(issuer="idp", audience="api"))
    )


@pytest.mark.parametrize("claim", ["exp", "iat", "sub", "iss", "aud"])
def test_required_claims(claim: str) -> None:
    claims = jwt.decode(token(), SECRET, algorithms=["HS256"], options={"verify_aud": False})
    del claims[claim]
    tok = jwt.encode(claims, SECRET, algorithm="HS256")
    assert refused(verifier(), tok) == f"missing claim {claim}"


def test_token_types() -> None:
    assert "refresh tokens are not accepted" in refused(verifier(), token(typ="refresh"))
    assert "not an access token" in refused(verifier(), token(typ="id"))
    # No typ at all: many identity providers omit it; it is an access token.
    claims = jwt.decode(token(), SECRET, algorithms=["HS256"], options={"verify_aud": False})
    del claims["typ"]
    assert verifier().verify(jwt.encode(claims, SECRET, algorithm="HS256")).subject == "alice"


def test_malformed_and_foreign_signatures() -> None:
    assert refused(verifier(), "garbage") == "malformed token"
    assert refused(verifier(), "a.b.c") == "malformed token"
    other = issue_token(auth(jwt_secret=SecretStr("x" * 40)), subject="alice")
    assert refused(verifier(), other) == "bad signature"
    # A valid signature over an altered payload.
    head, _, sig = token().split(".")
    forged_body = jwt.encode({"sub": "mallory"}, SECRET, algorithm="HS256").split(".")[1]
    assert refused(verifier(), f"{head}.{forged_body}.{sig}") == "bad signature"


def test_alg_none_and_unconfigured_algorithms_are_refused() -> None:
    unsigned = jwt.encode({"sub": "alice"}, None, algorithm="none")
    assert "algorithm 'none' is not accepted" in refused(verifier(), unsigned)
    hs512 = jwt.encode({"sub": "alice"}, SECRET + "x" * 40, algorithm="HS512")
    assert "algorithm 'HS512' is not accepted" in refused(verifier(), hs512)


def test_no_key_configured_refuses_every_token() -> None:
    v = TokenVerifier.from_settings(auth(jwt_secret=None))
    assert v.algorithms == []
    assert "no signing key is configured" in refused(v, token())


def test_rs256_only(rsa_pair: KeyPair, other_rsa_pair: KeyPair) -> None:
    signer = auth(jwt_secret=None, jwt_private_key=SecretStr(rsa_pair.private_pem))
    v = verifier(auth(jwt_secret=None, jwt_public_key=rsa_pair.public_pem))
    assert v.algorithms == ["RS256"]
    assert v.verify(token(signer)).subject == "alice"
    other = auth(jwt_secret=None, jwt_private_key=SecretStr(other_rsa_pair.private_pem))
    assert refused(v, token(other)) == "bad signature"
    # HS256 when only RS256 is configured: refused whatever it was keyed with.
    assert "algorithm 'HS256' is not accepted" in refused(v, token())


def test_public_key_bytes_as_hmac_secret_never_verify(rsa_pair: KeyPair) -> None:
    """The RS256/HS256 confusion attack, with and without an HS256 secret configured."""
    import base64
    import hashlib
    import hmac

    import orjson

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    claims = jwt.decode(token(), SECRET, algorithms=["HS256"], options={"verify_aud": False})
    signing_input = (
        f"{b64(orjson.dumps({'alg': 'HS256', 'typ': 'JWT'}))}.{b64(orjson.dumps(claims))}"
    )
    sig = hmac.new(rsa_pair.public_pem.encode(), signing_input.encode(), hashlib.sha256).digest()
    forged = f"{signing_input}.{b64(sig)}"
    rs_only = verifier(auth(jwt_secret=None, jwt_public_key=rsa_pair.public_pem))
    both = verifier(auth(jwt_public_key=rsa_pair.public_pem))
    assert "not accepted" in refused(rs_only, forged)
    assert refused(both, forged) == "bad signature"


def test_public_key_from_a_file_or_an_escaped_pem(rsa_pair: KeyPair, tmp_path: Path) -> None:
    path = tmp_path / "pub.pem"
    path.write_text(rsa_pair.public_pem)
    assert load_public_key(str(path)).key_size == 2048
    escaped = rsa_pair.public_pem.replace("\n", "\\n")
    assert load_public_key(escaped).key_size == 2048


def test_bad_public_keys_are_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="AUTH_JWT_PUBLIC_KEY: not a readable PEM"):
        load_public_key(str(tmp_path / "missing.pem"))
    with pytest.raises(ConfigError, match="not a readable PEM"):
        load_public_key("-----BEGIN PUBLIC KEY-----\nnope\n-----END PUBLIC KEY-----")
    ec_key = ec.generate_private_key(ec.SECP256R1()).public_key()
    ec_pem = ec_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()
    with pytest.raises(ConfigError, match="needs an RSA public key"):
        load_public_key(ec_pem)
    small = rsa.generate_private_key(public_exponent=65537, key_size=1024).public_key()
    small_pem = small.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()
    with pytest.raises(ConfigError, match="1024 bits, 2048 needed"):
        load_public_key(small_pem)


def test_short_hs256_secret_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MGW_ENV_FILE", "/nonexistent/.env")
    monkeypatch.setenv("AUTH_JWT_SECRET", "short")
    with pytest.raises(ConfigError, match=r"AUTH_JWT_SECRET: .*at least 32"):
        load_settings()


def test_issue_token_needs_a_signing_key() -> None:
    with pytest.raises(ConfigError, match="AUTH_JWT_SECRET or AUTH_JWT_PRIVATE_KEY"):
        issue_token(auth(jwt_secret=None), subject="alice")


def test_issue_token_lifetimes() -> None:
    now = 1_800_000_000
    a = auth(access_ttl_s=60, refresh_ttl_s=600)
    access = jwt.decode(token(a, now=now), options={"verify_signature": False})
    refresh = jwt.decode(token(a, now=now, typ="refresh"), options={"verify_signature": False})
    assert access["exp"] - access["iat"] == 60 and access["typ"] == "access"
    assert refresh["exp"] - refresh["iat"] == 600 and refresh["typ"] == "refresh"


# --- claims ---------------------------------------------------------------------------------


def test_scopes_from_scope_string_and_scopes_list() -> None:
    assert parse_scopes({"scope": "a b  c"}) == {"a", "b", "c"}
    assert parse_scopes({"scopes": ["a", " b "]}) == {"a", "b"}
    assert parse_scopes({"scope": "a", "scopes": ["b"]}) == {"a", "b"}
    assert parse_scopes({}) == frozenset()
    with pytest.raises(InvalidToken, match="claim scope"):
        parse_scopes({"scope": 7})
    with pytest.raises(InvalidToken, match="claim scopes"):
        parse_scopes({"scopes": ["a", 1]})


def test_claims_to_principal() -> None:
    base = {"sub": "u1", "scope": "x", "typ": "access"}
    assert principal_from_claims(base).tier is Tier.free
    assert principal_from_claims({**base, "tier": "enterprise"}).tier is Tier.enterprise
    for bad_tier in ("anonymous", "gold"):
        with pytest.raises(InvalidToken, match="unknown tier"):
            principal_from_claims({**base, "tier": bad_tier})
    for bad_sub in ("", "   ", "x" * 129, 12):
        with pytest.raises(InvalidToken, match="claim sub"):
            principal_from_claims({**base, "sub": bad_sub})
    with pytest.raises(InvalidToken, match="claim roles"):
        principal_from_claims({**base, "roles": [1]})


def test_who_may_act_for_whom() -> None:
    alice = Principal("user", "alice")
    admin = Principal("user", "root", roles=frozenset({"admin"}))
    key = Principal("api_key", "alice", roles=frozenset({"admin"}))
    assert alice.may_act_for("alice") and not alice.may_act_for("bob")
    assert admin.may_act_for("bob")
    # An API key is nobody's user, whatever its id or roles.
    assert not key.may_act_for("alice") and not key.may_act_for("bob")
    assert alice.rate_identity == "user:alice" and key.rate_identity == "key:alice"
    assert alice.missing_scopes(("a",)) == ["a"]


# --- API keys -------------------------------------------------------------------------------


def test_generated_keys_parse_back_and_hash_their_secret() -> None:
    seen = set()
    for _ in range(200):
        new = generate_key()
        assert new.full.startswith(f"mgw_{new.key_id}_")
        assert parse_key(new.full) == (new.key_id, new.secret)
        assert new.hash == hash_secret(new.secret) and len(new.hash) == 64
        assert new.secret not in new.hash
        seen.add(new.key_id)
    assert len(seen) == 200


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "hunter2",
        "mgw_0123456789ab",
        "mgw_0123456789ab_short",
        "xyz_0123456789ab_" + "A" * 43,
        "mgw_0123456789AB_" + "A" * 43,
        "mgw_0123456789ab_" + "A" * 42 + "!",
    ],
)
def test_malformed_keys(bad: str) -> None:
    with pytest.raises(InvalidApiKey, match="malformed"):
        parse_key(bad)


def test_record_round_trip_and_verification() -> None:
    record = ApiKeyRecord("0123456789ab", "ingest", ("content:write",), Tier.pro)
    assert ApiKeyRecord.from_json(record.to_json()) == record
    p = verify_record("0123456789ab", record)
    assert p == Principal(
        "api_key", "0123456789ab", frozenset({"content:write"}), tier=Tier.pro, name="ingest"
    )
    with pytest.raises(InvalidApiKey):
        verify_record("0123456789ab", None)
    with pytest.raises(InvalidApiKey):
        verify_record("ffffffffffff", record)
    with pytest.raises(ValueError, match="unknown tier"):
        ApiKeyRecord.from_json(b'{"key_id": "a", "tier": "anonymous"}')
    assert redis_key("p", "h") == "p:apikey:h"
    assert check_scopes(["content:write", "contnet:write"], SCOPES) == ["contnet:write"]


# --- headers and challenges -----------------------------------------------------------------


def test_credentials_from_headers() -> None:
    assert extract_credential(None, None) is None
    assert extract_credential("Basic abc", None) is None
    c = extract_credential("bearer  tok ", None)
    assert c is not None and (c.kind, c.value) == ("bearer", "tok")
    c = extract_credential("ApiKey k1", None)
    assert c is not None and (c.kind, c.value) == ("api_key", "k1")
    c = extract_credential("Basic abc", "k2")
    assert c is not None and (c.kind, c.value) == ("api_key", "k2")
    with pytest.raises(BadAuthRequest):
        extract_credential("Bearer tok", "k2")
    with pytest.raises(Unauthorized):
        extract_credential("Bearer ", None)
    with pytest.raises(Unauthorized):
        extract_credential(None, " ")


def test_challenges_follow_rfc_6750() -> None:
    assert challenge() == 'Bearer realm="media-gateway"'
    assert challenge("invalid_token", 'bad "quoted" \\ text') == (
        'Bearer realm="media-gateway", error="invalid_token", '
        'error_description="bad ?quoted? ? text"'
    )
    assert challenge("insufficient_scope", "missing", "a b").endswith('scope="a b"')
    assert Unauthorized.missing().www_authenticate == 'Bearer realm="media-gateway"'


def test_only_a_verified_token_cache_miss_counts_as_a_signature_check() -> None:
    from core.observability.metrics import CACHE_MISSES

    def checks() -> float:
        return CACHE_MISSES.labels("verified_token")._value.get()

    verifier = TokenVerifier.from_settings(auth())
    token = issue_token(auth(), subject="alice")
    before = checks()
    for _ in range(5):
        assert verifier.verify(token).subject == "alice"
    assert checks() == before + 1
    # A refused token is checked (and counted) each time: nothing of it is cached.
    for _ in range(2):
        with pytest.raises(InvalidToken):
            verifier.verify(token[:-4] + "AAAA")
    assert checks() == before + 3
