"""The names and records of the Redis mirror of API keys, shared by the gateway (reads),
`mgw keys` and the accounts agents (writes). No I/O: each side reads or writes with its client.

Two kinds of keys: `{prefix}:apikey:{sha256 of the secret}` -> the live key's record (what
the gateway verifies a presented key against; deleted on revocation), and one hash
`{prefix}:apikeys:index` -> key_id -> the key's listing (name, scopes, tier, created_at,
revoked_at; never the hash), what `GET /api/v1/admin/api-keys` reads.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

import orjson


def mirror_key(prefix: str, secret_hash: str) -> str:
    return f"{prefix}:apikey:{secret_hash}"


def index_key(prefix: str) -> str:
    return f"{prefix}:apikeys:index"


def record_json(key_id: str, name: str, scopes: Iterable[str], tier: str) -> bytes:
    """The live record the gateway verifies against (gateway/auth/api_keys.ApiKeyRecord)."""
    return orjson.dumps({"key_id": key_id, "name": name, "scopes": list(scopes), "tier": tier})


def listing_json(
    key_id: str,
    name: str,
    scopes: Iterable[str],
    tier: str,
    created_at: datetime,
    revoked_at: datetime | None,
) -> bytes:
    return orjson.dumps(
        {
            "key_id": key_id,
            "name": name,
            "scopes": sorted(scopes),
            "tier": tier,
            "created_at": created_at,
            "revoked_at": revoked_at,
        }
    )
