"""Micro-bench of bearer-token verification in one gateway process (docs/AUTH.md, "Cost"):
the verified-token cache's hit, and a first verification, for each kind of key: the HS256
secret, an external provider's JWKS key (ES256) and the built-in service's key (EdDSA), with a
deny-list of 1000 revoked ids in force.

    python -m devtools.bench.token_verify
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable

import jwt
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm

from agents.auth import keys as builtin
from core.config import AuthSettings
from gateway.auth.key_sets import signing_keys
from gateway.auth.tokens import TokenVerifier, issue_token

HITS = 200_000
MISSES = 3000
AUDIENCE = "media-gateway-api"


def _best_hit_ns(verifier: TokenVerifier, token: str, rounds: int = 5) -> float:
    verifier.verify(token)
    best = float("inf")
    for _ in range(rounds):
        started = time.perf_counter()
        for _ in range(HITS):
            verifier.verify(token)
        best = min(best, time.perf_counter() - started)
    return best / HITS * 1e9


def _miss_us(verifier: TokenVerifier, make: Callable[[str], str]) -> float:
    tokens = [make(f"user-{i}") for i in range(MISSES)]
    started = time.perf_counter()
    for token in tokens:
        verifier.verify(token)
    return (time.perf_counter() - started) / MISSES * 1e6


def main() -> None:
    auth = AuthSettings.model_validate(
        {"jwt_secret": "x" * 40, "jwks_url": "http://127.0.0.1:1/jwks", "trusted_issuers": "idp"}
    )
    verifier = TokenVerifier.from_settings(auth)
    provider = ec.generate_private_key(ec.SECP256R1())
    jwk = {**json.loads(ECAlgorithm.to_jwk(provider.public_key())), "kid": "k1", "alg": "ES256"}
    assert verifier.external is not None
    verifier.external.keys = signing_keys({"keys": [jwk]}, "bench")
    own = builtin.new_key()
    verifier.builtin_keys = signing_keys({"keys": [own.public_jwk]}, "built-in")
    verifier.denied = frozenset(f"revoked-{i}" for i in range(1000))
    now = int(time.time())

    def claims(sub: str, iss: str) -> dict[str, object]:
        return {"sub": sub, "iss": iss, "aud": AUDIENCE, "iat": now, "exp": now + 600,
                "jti": sub, "sid": "s"}  # fmt: skip

    kinds: dict[str, Callable[[str], str]] = {
        "HS256 secret": lambda sub: issue_token(auth, subject=sub),
        "JWKS ES256": lambda sub: jwt.encode(
            claims(sub, "idp"), provider, "ES256", headers={"kid": "k1"}
        ),
        "built-in EdDSA": lambda sub: builtin.sign(own, claims(sub, auth.issuer)),
    }
    for name, make in kinds.items():
        hit = _best_hit_ns(verifier, make("alice"))
        miss = _miss_us(verifier, make)
        print(f"{name:16} cached {hit:6.0f} ns/verify   first {miss:6.1f} us/verify")


if __name__ == "__main__":
    main()
