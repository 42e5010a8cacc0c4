"""PubNub Access Manager as the loopback PubNub server (sync_pubnub.py) enforces it: request
signatures made with the secret key, v3 tokens, and the check of a request against a token.

What PubNub documents, and the SDK's source (pubnub/utils.py `sign_request`) shows:
- A request made with the secret key carries `timestamp` and `signature`. Signed input (v2):
  `METHOD\\npublish_key\\npath\\nsorted query\\nbody`, the query being every parameter but
  `signature`, sorted by name, values percent-encoded (PubNub's `pam_encode`); the signature
  is `v2.` + URL-safe base64 of HMAC-SHA256(secret key, input), '=' stripped. A POST publish
  signs (v1) `subscribe_key\\npublish_key\\npath\\nsorted query` and keeps the padding.
  PubNub refuses a timestamp more than 60 s off its clock.
- A signed request has every permission (it is the server). Any other request needs `auth`, a
  token granted by `POST /v3/pam/{sub_key}/grant` (signed): a CBOR map, base64 (URL-safe), of
  `v`, `t` (issued, epoch s), `ttl` (minutes), `res`/`pat` (resources / regex patterns by type:
  `chan`, `grp`, `uuid`, `usr`, `spc`, each name -> permission bits: read 1, write 2, manage 4,
  delete 8, create 16, get 32, update 64, join 128), `meta`, optional `uuid` (the only client
  id that may use it) and `sig`. Byte-string keys, as PubNub's own tokens (the SDK's
  `parse_token` decodes them).
- `DELETE /v3/pam/{sub_key}/grant/{token}` (signed) revokes a token.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import cbor2

READ, WRITE = 1, 2
# PubNub's bounds on a token's TTL, minutes (30 days).
MAX_TTL_MIN = 43200
SIGNATURE_SKEW_S = 60
_TYPES = {
    "channels": "chan",
    "groups": "grp",
    "uuids": "uuid",
    "users": "usr",
    "spaces": "spc",
}


def pam_encode(value: str) -> str:
    # pubnub.utils.pam_encode: quote everything but '~' and unreserved letters.
    return quote(value, safe="~").replace("+", "%2B")


def _sign(secret: str, text: str) -> str:
    digest = hmac.new(secret.encode(), text.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode()


def expected_signature(
    secret: str,
    method: str,
    publish_key: str,
    subscribe_key: str,
    path: str,
    query: dict[str, str],
    body: str,
) -> str:
    signed = "&".join(f"{k}={pam_encode(v)}" for k, v in sorted(query.items()) if k != "signature")
    if method == "POST" and path.startswith("/publish"):
        return _sign(secret, f"{subscribe_key}\n{publish_key}\n{path}\n{signed}")
    text = f"{method}\n{publish_key}\n{path}\n{signed}\n{body}"
    return "v2." + _sign(secret, text).rstrip("=")


@dataclass
class Grant:
    """A token the server issued: what it allows, until when, and whether it was revoked."""

    issued_at: int
    ttl_min: int
    resources: dict[str, dict[str, int]]
    patterns: dict[str, dict[str, int]]
    authorized_uuid: str | None = None
    revoked: bool = False

    def expires_at(self) -> float:
        return self.issued_at + self.ttl_min * 60

    def allows(self, kind: str, name: str, bit: int) -> bool:
        if self.resources.get(kind, {}).get(name, 0) & bit:
            return True
        return any(
            re.fullmatch(pattern, name) and bits & bit
            for pattern, bits in self.patterns.get(kind, {}).items()
        )


def _resources(section: dict[str, Any]) -> dict[str, dict[str, int]]:
    return {
        _TYPES[kind]: {name: int(bits) for name, bits in named.items()}
        for kind, named in section.items()
        if kind in _TYPES and isinstance(named, dict)
    }


class GrantRequestError(ValueError):
    pass


def parse_grant(body: dict[str, Any], now: int) -> Grant:
    """A grant request's body (the SDK's GrantToken.build_data) as what the token will allow."""
    ttl = body.get("ttl")
    if not isinstance(ttl, int) or not 1 <= ttl <= MAX_TTL_MIN:
        raise GrantRequestError(f"ttl must be 1..{MAX_TTL_MIN} minutes, got {ttl!r}")
    permissions = body.get("permissions")
    if not isinstance(permissions, dict):
        raise GrantRequestError("permissions is required")
    resources = _resources(permissions.get("resources") or {})
    patterns = _resources(permissions.get("patterns") or {})
    if not any(resources.values()) and not any(patterns.values()):
        raise GrantRequestError("a grant names at least one resource or pattern")
    uuid = permissions.get("uuid")
    return Grant(now, ttl, resources, patterns, uuid if isinstance(uuid, str) else None)


def mint(grant: Grant, secret: str, meta: dict[str, Any]) -> str:
    """The token string of a grant, shaped as PubNub's (the SDK's parse_token reads it)."""
    body: dict[bytes, Any] = {
        b"v": 2,
        b"t": grant.issued_at,
        b"ttl": grant.ttl_min,
        b"res": {k.encode(): grant.resources.get(k, {}) for k in _TYPES.values()},
        b"pat": {k.encode(): grant.patterns.get(k, {}) for k in _TYPES.values()},
        b"meta": meta,
    }
    if grant.authorized_uuid is not None:
        body[b"uuid"] = grant.authorized_uuid
    unsigned = cbor2.dumps(body)
    body[b"sig"] = hmac.new(secret.encode(), unsigned, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(cbor2.dumps(body)).decode()


def forbidden(channels: list[str], message: str = "Forbidden") -> dict[str, Any]:
    """PubNub's Access Manager refusal body (HTTP 403)."""
    return {
        "message": message,
        "payload": {"channels": channels},
        "error": True,
        "service": "Access Manager",
        "status": 403,
    }
