"""API keys for machine clients: format, hashing and the Redis mirror record. No I/O here.

A key reads `mgw_<key_id>_<secret>`: `key_id` is a short public id (shown by `mgw keys list`,
safe to log), `secret` is 32 random bytes, url-safe base64. Only sha256(secret) is stored.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass

import orjson

from agreements.api_key_mirror import mirror_key
from gateway.auth.principal import GRANTABLE_TIERS, Principal, Tier

KEY_PREFIX = "mgw"
KEY_ID_BYTES = 6  # 12 hex chars: unique enough for a human-facing id, checked unique by the DB
SECRET_BYTES = 32
_KEY = re.compile(r"^mgw_([0-9a-f]{12})_([A-Za-z0-9_-]{40,64})$")


class InvalidApiKey(ValueError):
    """An API key that must be refused; the message is safe to show the caller."""


@dataclass(frozen=True)
class NewKey:
    key_id: str
    secret: str

    @property
    def full(self) -> str:
        return f"{KEY_PREFIX}_{self.key_id}_{self.secret}"

    @property
    def hash(self) -> str:
        return hash_secret(self.secret)


def generate_key() -> NewKey:
    return NewKey(
        key_id=secrets.token_hex(KEY_ID_BYTES), secret=secrets.token_urlsafe(SECRET_BYTES)
    )


def hash_secret(secret: str) -> str:
    # A plain (unsalted, fast) hash is enough: the secret is 256 random bits, not a password,
    # so there is no dictionary to precompute and nothing for a slow KDF to protect.
    return hashlib.sha256(secret.encode()).hexdigest()


def parse_key(presented: str) -> tuple[str, str]:
    """(key_id, secret) of a presented key, or InvalidApiKey if it cannot be one of ours."""
    match = _KEY.match(presented.strip())
    if match is None:
        raise InvalidApiKey("malformed API key")
    return match[1], match[2]


def redis_key(prefix: str, secret_hash: str) -> str:
    # The agents write it too: agreements/api_key_mirror.py names it for both.
    return mirror_key(prefix, secret_hash)


def check_scopes(scopes: Iterable[str], known: Iterable[str]) -> list[str]:
    """Scopes not in `known` (the CLI refuses to mint a key with a typo in a scope)."""
    allowed = set(known)
    return sorted(s for s in scopes if s not in allowed)


@dataclass(frozen=True)
class ApiKeyRecord:
    """What the gateway knows about a key: the Redis mirror of one non-revoked `api_keys` row."""

    key_id: str
    name: str
    scopes: tuple[str, ...]
    tier: Tier

    def to_json(self) -> bytes:
        return orjson.dumps(
            {
                "key_id": self.key_id,
                "name": self.name,
                "scopes": list(self.scopes),
                "tier": str(self.tier),
            }
        )

    @classmethod
    def from_json(cls, raw: bytes | str) -> ApiKeyRecord:
        data = orjson.loads(raw)
        tier = data.get("tier", Tier.free)
        if tier not in GRANTABLE_TIERS:
            raise ValueError(f"unknown tier {tier!r} in API key record")
        return cls(
            key_id=str(data["key_id"]),
            name=str(data.get("name", "")),
            scopes=tuple(str(s) for s in data.get("scopes", [])),
            tier=Tier(tier),
        )

    def principal(self) -> Principal:
        return Principal(
            kind="api_key",
            subject=self.key_id,
            scopes=frozenset(self.scopes),
            tier=self.tier,
            name=self.name,
        )


def verify_record(presented_key_id: str, record: ApiKeyRecord | None) -> Principal:
    """The principal for a looked-up record, refusing a miss or a key id that does not match.

    The lookup itself is by sha256(secret): a timing difference there reveals something about
    the hash of the attacker's own guess, never about a stored secret (finding a secret from
    hash prefixes is a preimage attack on sha256), so no constant-time comparison is needed.
    """
    if record is None:
        raise InvalidApiKey("unknown or revoked API key")
    if record.key_id != presented_key_id:
        # Same secret under another id: the caller rewrote a key. Refuse rather than guess.
        raise InvalidApiKey("unknown or revoked API key")
    return record.principal()
