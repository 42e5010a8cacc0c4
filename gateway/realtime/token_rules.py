"""What a device's PubNub token grants and for how long (pure rules, no I/O).

Read on exactly the user's channels the caller's scopes let it hear (the same scopes the SSE
stream checks), write on none. The TTL is whole minutes (PubNub's unit), never past the
credential the token was asked with, and at most the configured maximum (24 h at most).
"""

from __future__ import annotations

import math
from collections.abc import Collection

from schemas.sync import devices_channel, notifications_channel, sync_channel

# Channel name -> (its PubNub channel for a user, the scope that hears it).
_CHANNELS = {
    "sync": (sync_channel, "watchlist:read"),
    "devices": (devices_channel, "devices:read"),
    "notifications": (notifications_channel, "devices:read"),
}
# PubNub's smallest token TTL.
MIN_TTL_MIN = 1


def granted_channels(user_id: str, scopes: Collection[str]) -> dict[str, str]:
    """The user's channels by name that a caller holding `scopes` may read."""
    return {
        name: channel(user_id) for name, (channel, scope) in _CHANNELS.items() if scope in scopes
    }


def ttl_minutes(credential_expires_at: float | None, now: float, max_min: int) -> int:
    """Whole minutes the token may live: 0 when the credential ends within a minute (too soon
    to hand on). A credential without an expiry (never the case for users' tokens) gets the
    maximum."""
    if credential_expires_at is None:
        return max_min
    remaining = math.floor((credential_expires_at - now) / 60)
    return max(0, min(max_min, remaining))
