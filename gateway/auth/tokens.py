"""JWT access tokens: verification with pinned algorithms, claim parsing, and signing for dev use.

Plain functions and one small class; no I/O beyond reading a key file named in the settings.

Algorithm pinning: the token's own `alg` header only selects which of *our* configured keys to
try, and each key is used with exactly one algorithm. An HS256 token is checked against the
HS256 secret only, never against the RS256 public key (the classic confusion attack, where the
public key's PEM bytes become an HMAC secret), and `none` or any other algorithm is refused.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey, RSAPublicKey

from core.config import AuthSettings, ConfigError
from core.observability.metrics import CACHE_MISSES
from gateway.auth.key_sets import ExternalJwks, SigningKey
from gateway.auth.principal import GRANTABLE_TIERS, Principal, Tier

HS256 = "HS256"
RS256 = "RS256"
ACCESS = "access"
REFRESH = "refresh"
MIN_RSA_BITS = 2048
MAX_SUBJECT_LEN = 128
# Claims every token must carry; `typ` is optional (absent means access, see docs/AUTH.md).
REQUIRED_CLAIMS = ("exp", "iat", "sub", "iss", "aud")
# Verified tokens remembered per gateway process (one client, one token: a few thousand).
VERIFIED_CACHE_SIZE = 10_000
# Misses only: each costs a signature check (hundreds of microseconds), so counting it is free,
# while a hit is the hot path (well under a microsecond) and is not counted; hits are the
# authenticated requests less these (`mgw bench gateway --auth` prints both).
_SIGNATURE_CHECKS = CACHE_MISSES.labels("verified_token")


class InvalidToken(ValueError):
    """A bearer token that must be refused; the message is safe to show the caller."""


class UnknownSigningKey(InvalidToken):
    """The token names (by `kid`) a key none of our key sets holds, yet."""


@dataclass(frozen=True, slots=True)
class _Verified:
    principal: Principal
    valid_from: float
    valid_until: float
    jti: str | None
    sid: str | None


@dataclass(frozen=True, slots=True)
class TokenIds:
    jti: str | None
    sid: str | None
    expires_at: float


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _pem_bytes(value: str) -> bytes:
    text = value.strip()
    if text.startswith("-----BEGIN"):
        # Env files often carry PEMs with literal "\n" sequences instead of newlines.
        return text.replace("\\n", "\n").encode()
    return Path(text).expanduser().read_bytes()


def load_public_key(value: str, variable: str = "AUTH_JWT_PUBLIC_KEY") -> RSAPublicKey:
    try:
        key = serialization.load_pem_public_key(_pem_bytes(value))
    except (OSError, ValueError) as exc:
        raise ConfigError([f"{variable}: not a readable PEM public key ({exc})"]) from None
    if not isinstance(key, RSAPublicKey):
        raise ConfigError([f"{variable}: RS256 needs an RSA public key"])
    if key.key_size < MIN_RSA_BITS:
        raise ConfigError([f"{variable}: RSA key of {key.key_size} bits, {MIN_RSA_BITS} needed"])
    return key


def load_private_key(value: str, variable: str = "AUTH_JWT_PRIVATE_KEY") -> RSAPrivateKey:
    try:
        key = serialization.load_pem_private_key(_pem_bytes(value), password=None)
    except (OSError, ValueError, TypeError) as exc:
        raise ConfigError(
            [f"{variable}: not a readable unencrypted PEM private key ({exc})"]
        ) from None
    if not isinstance(key, RSAPrivateKey):
        raise ConfigError([f"{variable}: RS256 needs an RSA private key"])
    return key


def _strings(value: Any, claim: str) -> list[str]:
    """A claim that may be a space-separated string (OAuth `scope`) or a list of strings."""
    if value is None:
        return []
    if isinstance(value, str):
        return value.split()
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return [v.strip() for v in value if v.strip()]
    raise InvalidToken(f"claim {claim} must be a string or a list of strings")


def parse_scopes(claims: Mapping[str, Any]) -> frozenset[str]:
    """Union of `scope` (OAuth style, space-separated) and `scopes` (a list)."""
    return frozenset(
        _strings(claims.get("scope"), "scope") + _strings(claims.get("scopes"), "scopes")
    )


def parse_roles(claims: Mapping[str, Any]) -> frozenset[str]:
    return frozenset(_strings(claims.get("roles"), "roles"))


def parse_tier(claims: Mapping[str, Any]) -> Tier:
    raw = claims.get("tier")
    if raw is None:
        return Tier.free
    # An unknown tier in a signed token is an issuer bug; silently downgrading would hide it.
    if raw not in GRANTABLE_TIERS:
        raise InvalidToken(f"unknown tier {raw!r}")
    return Tier(raw)


def principal_from_claims(claims: Mapping[str, Any]) -> Principal:
    typ = claims.get("typ", ACCESS)
    if typ == REFRESH:
        raise InvalidToken("refresh tokens are not accepted here; exchange it for an access token")
    if typ != ACCESS:
        raise InvalidToken(f"token type {typ!r} is not an access token")
    sub = claims.get("sub")
    if not isinstance(sub, str) or not sub.strip() or len(sub) > MAX_SUBJECT_LEN:
        raise InvalidToken(
            f"claim sub must be a non-empty string of at most {MAX_SUBJECT_LEN} chars"
        )
    return Principal(
        kind="user",
        subject=sub,
        scopes=parse_scopes(claims),
        roles=parse_roles(claims),
        tier=parse_tier(claims),
        expires_at=float(claims["exp"]) if isinstance(claims.get("exp"), int | float) else None,
        profile=parse_profile(claims),
    )


_PROFILE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def parse_profile(claims: dict[str, Any]) -> str | None:
    """The claim `profile`: the account's profile this token acts as (docs/AUTH.md, Profiles).
    A malformed one refuses the token: read as absent, it would lift the profile's limits."""
    value = claims.get("profile")
    if value is None:
        return None
    if not isinstance(value, str) or _PROFILE.match(value) is None:
        raise InvalidToken("claim profile must be a profile id (1-64 of A-Z a-z 0-9 _ -)")
    return value


def _describe(exc: jwt.PyJWTError) -> str:
    # Order matters: several of these subclass each other (e.g. ExpiredSignatureError).
    if isinstance(exc, jwt.ExpiredSignatureError):
        return "token expired"
    if isinstance(exc, jwt.ImmatureSignatureError):
        return "token not yet valid"
    if isinstance(exc, jwt.InvalidAudienceError):
        return "wrong audience"
    if isinstance(exc, jwt.InvalidIssuerError):
        return "wrong issuer"
    if isinstance(exc, jwt.MissingRequiredClaimError):
        return f"missing claim {exc.claim}"
    if isinstance(exc, jwt.InvalidSignatureError):
        return "bad signature"
    if isinstance(exc, jwt.DecodeError):
        return "malformed token"
    return "invalid token"


class TokenVerifier:
    """Checks access tokens against the configured HS256 secret and/or RS256 public key."""

    def __init__(
        self,
        *,
        issuer: str,
        audience: str,
        leeway_s: float = 30.0,
        hs256_secret: str | None = None,
        rs256_public_key: RSAPublicKey | None = None,
        external: ExternalJwks | None = None,
        trusted_issuers: Iterable[str] = (),
    ) -> None:
        self.issuer = issuer
        self.audience = audience
        self.leeway_s = leeway_s
        self._keys: dict[str, Any] = {}
        # Keys named by kid: external providers' (JWKS over HTTP) and the built-in token
        # service's (published in Redis, kept here by gateway/auth/key_sync.py).
        self.external = external
        self.builtin_keys: dict[str, SigningKey] = {}
        # Issuers a token verified by an external provider's key may name.
        self.trusted_issuers = list(trusted_issuers) or [issuer]
        # Revoked token ids (`jti`) and sessions (`sid`, a refresh-token family), from the
        # Redis deny-list: checked on every request, cached or not (docs/AUTH.md, Revocation).
        self.denied: frozenset[str] = frozenset()
        # Tokens already verified, with the window they are valid in: a client sends the same
        # token with every request, and a signature check per request was a tenth of the
        # gateway's time. Bounded; a token past its window is verified again (and refused).
        self._verified: OrderedDict[str, _Verified] = OrderedDict()
        if hs256_secret:
            self._keys[HS256] = hs256_secret.encode()
        if rs256_public_key is not None:
            self._keys[RS256] = rs256_public_key

    @classmethod
    def from_settings(cls, auth: AuthSettings) -> TokenVerifier:
        return cls(
            issuer=auth.issuer,
            audience=auth.audience,
            leeway_s=auth.leeway_s,
            hs256_secret=auth.jwt_secret.get_secret_value() if auth.jwt_secret else None,
            rs256_public_key=load_public_key(auth.jwt_public_key) if auth.jwt_public_key else None,
            external=ExternalJwks(
                auth.jwks_url,
                cache_s=auth.jwks_cache_s,
                cooldown_s=auth.jwks_refresh_cooldown_s,
                timeout_s=auth.jwks_timeout_s,
            )
            if auth.jwks_url
            else None,
            trusted_issuers=auth.trusted_issuers,
        )

    @property
    def algorithms(self) -> list[str]:
        """Algorithms of the keys configured one by one (kid-named keys come and go)."""
        return sorted(self._keys)

    @property
    def accepts_tokens(self) -> bool:
        """Whether any bearer token could verify: a static key, a JWKS, or the built-in
        service's keys (which the gateway learns from Redis after it starts)."""
        return bool(self._keys) or self.external is not None or self.builtin_keys_expected

    # Set by gateway/auth/key_sync.py, which keeps the built-in service's keys from Redis:
    # then a token naming an unknown kid may name a key created a moment ago.
    builtin_keys_expected = False
    reload_builtin: Callable[[], Awaitable[bool]] | None = None

    def verify(self, token: str) -> Principal:
        """The token's principal; raises InvalidToken (UnknownSigningKey when it names a key
        not known yet: `verify_async` fetches the keys again and retries)."""
        cached = self._verified.get(token)
        if cached is not None:
            if cached.valid_from <= time.time() <= cached.valid_until:
                self._refuse_revoked(cached)
                self._verified.move_to_end(token)
                return cached.principal
            del self._verified[token]
        _SIGNATURE_CHECKS.inc()
        principal, claims = self._verify_signed(token)
        nbf = claims.get("nbf", claims["iat"])
        entry = _Verified(
            principal,
            nbf - self.leeway_s,
            claims["exp"] + self.leeway_s,
            _text(claims.get("jti")),
            _text(claims.get("sid")),
        )
        self._refuse_revoked(entry)
        self._verified[token] = entry
        if len(self._verified) > VERIFIED_CACHE_SIZE:
            self._verified.popitem(last=False)
        return principal

    async def verify_async(self, token: str) -> Principal:
        """`verify`, reading the keys again when the token names one we do not know: the
        built-in service's from Redis (a key it created a moment ago), an external provider's
        JWKS off the event loop; each at most once per cooldown. A provider's rotated key is
        so accepted with its first token."""
        try:
            return self.verify(token)
        except UnknownSigningKey:
            reloaded = False
            if self.reload_builtin is not None:
                reloaded = await self.reload_builtin()
            external = self.external
            if external is not None and external.may_force():
                await asyncio.to_thread(external.refresh, forced=True)
                reloaded = True
            if not reloaded:
                raise
            return self.verify(token)

    def ids_of(self, token: str) -> TokenIds | None:
        """The `jti`, `sid` and `exp` of a token `verify` accepted (None if it did not)."""
        entry = self._verified.get(token)
        if entry is None:
            return None
        return TokenIds(entry.jti, entry.sid, entry.valid_until - self.leeway_s)

    def _refuse_revoked(self, entry: _Verified) -> None:
        denied = self.denied
        if denied and (entry.jti in denied or entry.sid in denied):
            raise InvalidToken("token revoked")

    def _key_for(self, header: Mapping[str, Any]) -> tuple[Any, str, list[str]]:
        """The key, its one algorithm and the issuers it may sign for."""
        alg = header.get("alg")
        kid = header.get("kid")
        if isinstance(kid, str):
            named = self.builtin_keys.get(kid)
            issuers = [self.issuer]
            if named is None and self.external is not None:
                named = self.external.keys.get(kid)
                issuers = self.trusted_issuers
            if named is not None:
                if alg != named.algorithm:
                    raise InvalidToken(
                        f"algorithm {alg!r} is not the one of key {kid!r} ({named.algorithm})"
                    )
                return named.key, named.algorithm, issuers
        key = self._keys.get(alg) if isinstance(alg, str) else None
        if key is not None:
            return key, alg, [self.issuer]  # type: ignore[return-value]
        if isinstance(kid, str) and (self.external is not None or self.builtin_keys_expected):
            raise UnknownSigningKey("unknown signing key")
        if not self.accepts_tokens:
            raise InvalidToken("bearer tokens are not accepted: no signing key is configured")
        raise InvalidToken(f"algorithm {alg!r} is not accepted (accepted: {self.algorithms})")

    def _verify_signed(self, token: str) -> tuple[Principal, dict[str, Any]]:
        if not self.accepts_tokens:
            raise InvalidToken("bearer tokens are not accepted: no signing key is configured")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise InvalidToken("malformed token") from None
        key, alg, issuers = self._key_for(header)
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=[alg],  # exactly one: the one this key belongs to
                audience=self.audience,
                issuer=issuers[0] if len(issuers) == 1 else issuers,
                leeway=self.leeway_s,
                options={"require": list(REQUIRED_CLAIMS)},
            )
        except jwt.PyJWTError as exc:
            raise InvalidToken(_describe(exc)) from None
        return principal_from_claims(claims), claims


def issue_token(
    auth: AuthSettings,
    *,
    subject: str,
    scopes: Iterable[str] = (),
    roles: Iterable[str] = (),
    tier: str = Tier.free,
    typ: str = ACCESS,
    ttl_s: int | None = None,
    now: float | None = None,
    extra_claims: Mapping[str, Any] | None = None,
) -> str:
    """Sign a token with the configured key: the HS256 secret if set, else the RS256 private key.

    Meant for `mgw token dev` and tests; production tokens come from the identity provider.
    `extra_claims` override the computed ones (tests use it to build wrong tokens).
    """
    issued = int(now if now is not None else time.time())
    if ttl_s is None:
        ttl_s = auth.refresh_ttl_s if typ == REFRESH else auth.access_ttl_s
    claims: dict[str, Any] = {
        "sub": subject,
        "iss": auth.issuer,
        "aud": auth.audience,
        "iat": issued,
        "exp": issued + ttl_s,
        "typ": typ,
        "scope": " ".join(sorted(set(scopes))),
        "roles": sorted(set(roles)),
        "tier": str(tier),
    }
    claims.update(extra_claims or {})
    if auth.jwt_secret is not None:
        return jwt.encode(claims, auth.jwt_secret.get_secret_value(), algorithm=HS256)
    if auth.jwt_private_key is not None:
        key = load_private_key(auth.jwt_private_key.get_secret_value())
        return jwt.encode(claims, key, algorithm=RS256)
    raise ConfigError(["AUTH_JWT_SECRET or AUTH_JWT_PRIVATE_KEY: set one to sign tokens"])
