"""The caller as the gateway sees it once a credential has been verified, and the scope names."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Literal

from agreements.scopes import SCOPES

__all__ = ["ADMIN_ROLE", "GRANTABLE_TIERS", "PRINCIPAL_KEY", "SCOPES", "Principal", "Tier"]

# Where a request keeps its Principal once authenticated (its ASGI scope), so that whoever reads
# the caller (the rate limiter, the route, the Idempotency-Key) needs this module only, not the
# authentication that put it there (gateway/auth/dependencies.py).
PRINCIPAL_KEY = "mgw.principal"


class Tier(StrEnum):
    """Rate-limit tier. `anonymous` is never granted: it is the tier of a caller without one."""

    anonymous = "anonymous"
    free = "free"
    pro = "pro"
    enterprise = "enterprise"


# Tiers a token claim or an API key may carry.
GRANTABLE_TIERS: frozenset[str] = frozenset({Tier.free, Tier.pro, Tier.enterprise})

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
