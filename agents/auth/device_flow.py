"""RFC 8628's rules for a TV polling the token endpoint with its device code. No I/O."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from agents.auth.grants import DEFAULT_USER_SCOPES

# RFC 8628 section 3.5: each slow_down adds 5 s to the interval the client must keep.
SLOW_DOWN_STEP_S = 5


class DeviceStatus(StrEnum):
    pending = "pending"
    approved = "approved"
    denied = "denied"
    consumed = "consumed"


class PollState(StrEnum):
    unknown = "unknown"
    consumed = "consumed"
    expired = "expired"
    denied = "denied"
    approved = "approved"
    slow_down = "slow_down"
    pending = "pending"


@dataclass(frozen=True)
class DeviceCodeRow:
    status: DeviceStatus
    expires_at: datetime
    interval_s: int
    last_polled_at: datetime | None
    user_id: str | None
    granted_scope: str | None
    # The account's profile the TV is bound to (its tokens' `profile` claim); None: unbound.
    profile_id: str | None = None


def poll_state(row: DeviceCodeRow | None, now: datetime) -> PollState:
    """In this order: a used code is spent even before it expires; an expired one is
    expired_token whatever became of it; approved codes are answered however fast the poll."""
    if row is None:
        return PollState.unknown
    if row.status is DeviceStatus.consumed:
        return PollState.consumed
    if row.expires_at <= now:
        return PollState.expired
    if row.status is DeviceStatus.denied:
        return PollState.denied
    if row.status is DeviceStatus.approved:
        return PollState.approved
    if (
        row.last_polled_at is not None
        and (now - row.last_polled_at).total_seconds() < row.interval_s
    ):
        return PollState.slow_down
    return PollState.pending


# RFC 8628 section 3.5's error codes (RFC 6749's invalid_grant for codes we cannot use).
POLL_ERRORS: dict[PollState, tuple[str, str]] = {
    PollState.unknown: ("invalid_grant", "device code not recognised"),
    PollState.consumed: ("invalid_grant", "device code already used"),
    PollState.expired: ("expired_token", "the device code expired; ask for a new one"),
    PollState.denied: ("access_denied", "the user denied this device"),
    PollState.slow_down: ("slow_down", "polling faster than the interval; wait 5 s more"),
    PollState.pending: ("authorization_pending", "the user has not approved this device yet"),
}


def granted_scope(requested: str | None, approver_scopes: set[str] | frozenset[str]) -> str:
    """The TV gets what it asked for (the user defaults if nothing) that its approver holds:
    a phone's token cannot sign a TV in with more than it has itself."""
    wanted = (
        frozenset(requested.split()) if requested and requested.split() else DEFAULT_USER_SCOPES
    )
    return " ".join(sorted(wanted & approver_scopes))
