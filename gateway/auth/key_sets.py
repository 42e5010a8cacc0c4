"""Signing keys named by `kid`: an external provider's JWKS (fetched over HTTP with PyJWT's
PyJWKClient) and the built-in token service's keys (read from Redis by gateway/auth/key_sync.py).

Each key verifies exactly one algorithm: the JWK's own `alg`, or the one its type implies (RSA
RS256, EC P-256 ES256, OKP Ed25519 EdDSA). A token's `alg` header must name that algorithm,
so a key is never used the way its owner did not mean it (the pinning of gateway/auth/tokens.py,
extended to keys we did not configure one by one). Symmetric (`oct`) JWKs are ignored: a
secret published in a JWKS is no secret.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import jwt
from jwt import PyJWK, PyJWKClient
from jwt.exceptions import PyJWKClientError, PyJWKError
from loguru import logger

# Algorithms a published key may verify; anything else in a JWKS is skipped.
ASYMMETRIC = frozenset({"RS256", "RS384", "RS512", "PS256", "ES256", "ES384", "EdDSA"})
_IMPLIED = {("RSA", None): "RS256", ("EC", "P-256"): "ES256", ("EC", "P-384"): "ES384",
            ("OKP", "Ed25519"): "EdDSA"}  # fmt: skip


@dataclass(frozen=True)
class SigningKey:
    kid: str
    algorithm: str
    key: Any
    # Which set it came from ("built-in", or the JWKS URL): for logs and issuer rules.
    source: str


def pinned_algorithm(jwk: Mapping[str, Any]) -> str | None:
    """The one algorithm a JWK verifies, None if it is not a usable public key."""
    kty = jwk.get("kty")
    alg = jwk.get("alg")
    if jwk.get("use") not in (None, "sig"):
        return None
    if isinstance(alg, str):
        return alg if alg in ASYMMETRIC else None
    return _IMPLIED.get((kty, None if kty == "RSA" else jwk.get("crv")))


def signing_keys(jwks: Mapping[str, Any], source: str) -> dict[str, SigningKey]:
    """The usable keys of a JWK Set by kid; keys without a kid or unusable are skipped."""
    out: dict[str, SigningKey] = {}
    for jwk in jwks.get("keys", ()) if isinstance(jwks.get("keys"), list) else ():
        if not isinstance(jwk, dict) or not isinstance(jwk.get("kid"), str):
            continue
        algorithm = pinned_algorithm(jwk)
        if algorithm is None:
            continue
        try:
            key = PyJWK(jwk, algorithm).key
        except (PyJWKError, jwt.PyJWTError, ValueError, TypeError) as exc:
            logger.warning("JWKS {}: key {} skipped: {}", source, jwk["kid"], exc)
            continue
        out[jwk["kid"]] = SigningKey(jwk["kid"], algorithm, key, source)
    return out


class ExternalJwks:
    """External providers' keys by kid, fetched with PyJWKClient (blocking: call the fetching
    methods off the event loop). A token naming an unknown kid may force a fetch, at most once
    per `cooldown_s`; otherwise sets are fetched again after `cache_s`."""

    def __init__(
        self, urls: Iterable[str], *, cache_s: float, cooldown_s: float, timeout_s: float
    ) -> None:
        self.urls = list(urls)
        self.cache_s = cache_s
        self.cooldown_s = cooldown_s
        self._clients = {
            url: PyJWKClient(url, cache_jwk_set=False, timeout=timeout_s) for url in self.urls
        }
        self.keys: dict[str, SigningKey] = {}
        self._fetched_at = float("-inf")
        self._forced_at = float("-inf")

    def stale(self, now: float | None = None) -> bool:
        return (now if now is not None else time.monotonic()) - self._fetched_at >= self.cache_s

    def may_force(self, now: float | None = None) -> bool:
        return (now if now is not None else time.monotonic()) - self._forced_at >= self.cooldown_s

    def refresh(self, *, forced: bool = False) -> None:
        """Fetch every set. A set that cannot be fetched keeps its previous keys (an outage of
        the provider must not log every user out); the others are replaced."""
        now = time.monotonic()
        if forced:
            self._forced_at = now
        keys: dict[str, SigningKey] = {}
        for url, client in self._clients.items():
            try:
                fetched = signing_keys(client.fetch_data(), url)
            except (PyJWKClientError, PyJWKError, ValueError) as exc:
                logger.warning("JWKS {} could not be fetched, its known keys stay: {}", url, exc)
                fetched = {k: v for k, v in self.keys.items() if v.source == url}
            keys.update(fetched)
        self.keys = keys
        self._fetched_at = now
