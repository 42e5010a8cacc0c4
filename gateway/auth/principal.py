"""The caller as the gateway sees it once a credential has been verified, and the scope names."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Literal


class Tier(StrEnum):
    """Rate-limit tier. `anonymous` is never granted: it is the tier of a caller without one."""

    anonymous = "anonymous"
    free = "free"
    pro = "pro"
    enterprise = "enterprise"


# Tiers a token claim or an API key may carry.
GRANTABLE_TIERS: frozenset[str] = frozenset({Tier.free, Tier.pro, Tier.enterprise})

# Every scope a route checks. Tokens may carry others (they are simply never asked for); the CLI
# refuses to mint API keys with names outside this list so a typo cannot create a useless key.
SCOPES: dict[str, str] = {
    "content:read": "read the catalog",
    "content:write": "publish canonical titles (ingestion producers)",
    "ingest:write": "send platform catalog batches to the raw topic (API keys only)",
    "watchlist:read": "read one's own watchlist",
    "watchlist:write": "add to / remove from one's own watchlist",
    "progress:read": "read one's own playback progress (continue watching)",
    "progress:write": "report one's own playback progress",
    "devices:read": "list one's own devices and hear their realtime channels",
    "devices:write": "register one's own devices, send their heartbeats, remove them",
    "devices:command": "send remote commands to one's own devices",
    "recommendations:read": "read one's own personalized recommendations",
    "recommendations:write": "rate titles and dismiss them, for one's own recommendations",
    "profiles:read": "list one's own account's profiles",
    "profiles:write": "create, change and remove one's own account's profiles (adult only)",
}

# Users with this role may act on other users' resources (support tooling); see docs/AUTH.md.
ADMIN_ROLE = "admin"


@dataclass(frozen=True)
class Principal:
    kind: Literal["user", "api_key"]
    # A user's id (the token's `sub`) or an API key's public key_id.
    subject: str
    scopes: frozenset[str] = field(default_factory=frozenset)
    roles: frozenset[str] = field(default_factory=frozenset)
    tier: Tier = Tier.free
    # The API key's name, for logs; None for users.
    name: str | None = None
    # When the credential stops being valid (epoch seconds, the token's `exp`); None for API
    # keys, which live until revoked. What a credential hands on (a realtime token) ends by then.
    expires_at: float | None = None
    # The token's `profile` claim: the account's profile it is bound to (its parental limits
    # apply on every read path); None: the request may name one in X-Profile-ID.
    profile: str | None = None

    def missing_scopes(self, required: tuple[str, ...]) -> list[str]:
        return [s for s in required if s not in self.scopes]

    @property
    def is_admin(self) -> bool:
        return self.kind == "user" and ADMIN_ROLE in self.roles

    def may_act_for(self, user_id: str) -> bool:
        """Users act on their own id; admins on anyone's; API keys are nobody's user."""
        if self.kind != "user":
            return False
        return self.subject == user_id or self.is_admin

    @property
    def rate_identity(self) -> str:
        # Kind in the identity: a user id must never share a bucket with an equal key id.
        return f"{'user' if self.kind == 'user' else 'key'}:{self.subject}"
