"""Signing keys of the token service (EdDSA, Ed25519) and the tokens they sign. No I/O.

Ed25519 over ES256: no nonce to get wrong, small keys and signatures, and PyJWT verifies it
with the `cryptography` the project already depends on.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from jwt.algorithms import OKPAlgorithm

ALGORITHM = "EdDSA"


@dataclass(frozen=True)
class SigningKey:
    kid: str
    private_pem: str
    public_jwk: dict[str, Any]


def new_key() -> SigningKey:
    private = Ed25519PrivateKey.generate()
    pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    kid = uuid.uuid4().hex[:16]
    jwk = json.loads(OKPAlgorithm.to_jwk(private.public_key()))
    return SigningKey(kid, pem, {**jwk, "kid": kid, "alg": ALGORITHM, "use": "sig"})


def sign(key: SigningKey, claims: Mapping[str, Any]) -> str:
    private = serialization.load_pem_private_key(key.private_pem.encode(), password=None)
    return jwt.encode(dict(claims), private, algorithm=ALGORITHM, headers={"kid": key.kid})  # type: ignore[arg-type]
