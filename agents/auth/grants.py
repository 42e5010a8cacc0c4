"""The token service's rules: what each grant answers, as OAuth 2.0 says. No I/O.

Answers carry their HTTP status and body: a token response (RFC 6749 section 5.1) or an error
(section 5.2: `error`, `error_description`), which the gateway relays as they are.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from agreements.scopes import SCOPES
from core.config import AuthSettings

# What a dev user is given when it asks for no scope: every user scope (no admin role). The
# producers' scopes are the ones left out, so a scope added for users is a user's by default.
PRODUCER_SCOPES = frozenset({"content:write", "ingest:write"})
DEFAULT_USER_SCOPES = frozenset(SCOPES) - PRODUCER_SCOPES


@dataclass(frozen=True)
class Answer:
    status: int
    body: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"status": self.status, "body": self.body}


def error(code: str, description: str, status: int = 400) -> Answer:
    return Answer(status, {"error": code, "error_description": description})


def new_refresh_token() -> tuple[str, str]:
    """A refresh token (256 random bits) and the hash it is stored under."""
    token = secrets.token_urlsafe(32)
    return token, hash_token(token)


def hash_token(token: str) -> str:
    # Unsalted SHA-256 is right for a random 256-bit secret (docs/AUTH.md, API keys).
    return hashlib.sha256(token.encode()).hexdigest()


def new_session_id() -> str:
    return uuid.uuid4().hex


def requested_scopes(scope: str | None) -> frozenset[str] | Answer:
    """The scopes a dev sign-in asks for (none: the defaults); an unknown one is invalid_scope."""
    if not scope or not scope.split():
        return DEFAULT_USER_SCOPES
    wanted = frozenset(scope.split())
    unknown = sorted(wanted - SCOPES.keys())
    if unknown:
        return error("invalid_scope", f"unknown scope: {' '.join(unknown)}")
    return wanted


class RefreshState(StrEnum):
    usable = "usable"
    unknown = "unknown"
    expired = "expired"
    revoked = "revoked"
    # Rotated already: this is its second use.
    reused = "reused"


@dataclass(frozen=True)
class RefreshRow:
    session_id: str
    user_id: str
    expires_at: datetime
    used_at: datetime | None
    session_revoked_at: datetime | None


def refresh_state(row: RefreshRow | None, now: datetime) -> RefreshState:
    """Checked in this order: a reuse is caught even on a revoked or expired family, so a
    stolen token's replay is always reported."""
    if row is None:
        return RefreshState.unknown
    if row.used_at is not None:
        return RefreshState.reused
    if row.session_revoked_at is not None:
        return RefreshState.revoked
    if row.expires_at <= now:
        return RefreshState.expired
    return RefreshState.usable


REFRESH_REFUSALS: dict[RefreshState, str] = {
    RefreshState.unknown: "refresh token not recognised",
    RefreshState.expired: "refresh token expired",
    RefreshState.revoked: "refresh token revoked",
    RefreshState.reused: "refresh token already used: its session is revoked",
}


def access_claims(
    auth: AuthSettings,
    *,
    user_id: str,
    session_id: str,
    scope: str,
    roles: list[str],
    tier: str,
    now: datetime,
    profile: str | None = None,
) -> dict[str, Any]:
    """An access token's claims; `profile` binds it to that profile of the account (the
    gateway then refuses any other, docs/AUTH.md "Which profile a request acts as")."""
    issued = int(now.timestamp())
    claims: dict[str, Any] = {
        "iss": auth.issuer,
        "aud": auth.audience,
        "sub": user_id,
        "iat": issued,
        "exp": issued + auth.access_ttl_s,
        "jti": uuid.uuid4().hex,
        "sid": session_id,
        "typ": "access",
        "scope": scope,
        "roles": roles,
        "tier": tier,
    }
    if profile is not None:
        claims["profile"] = profile
    return claims


def token_response(access_token: str, refresh_token: str, auth: AuthSettings, scope: str) -> Answer:
    return Answer(
        200,
        {
            "access_token": access_token,
            "token_type": "Bearer",
            "expires_in": auth.access_ttl_s,
            "refresh_token": refresh_token,
            "scope": scope,
        },
    )


def session_deny_until(auth: AuthSettings, now: datetime) -> float:
    """How long a revoked session's id stays denied: its newest access token's life."""
    return (now + timedelta(seconds=auth.access_ttl_s + auth.leeway_s)).timestamp()
