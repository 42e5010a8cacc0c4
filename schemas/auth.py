"""The built-in token service (docs/AUTH.md, "The token service"): what the gateway asks the
auth agents, and the events of sign-in sessions. Pure data.

Secrets never travel: the gateway hashes a refresh token or a device code (SHA-256, hex) before
it publishes a request, and the agents store and look up only those hashes.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, ClassVar

from pydantic import Field

from schemas.accounts import ProfileId
from schemas.envelope import Payload
from schemas.sync import DeviceInfo, UserId

Sha256Hex = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
ReplyChannel = Annotated[str, Field(min_length=1, max_length=300)]


class GrantType(StrEnum):
    refresh_token = "refresh_token"
    device_code = "urn:ietf:params:oauth:grant-type:device_code"
    # AUTH_DEV_MODE only: a user by name, no password (docs/AUTH.md, "The dev grant").
    dev = "urn:media-gateway:params:oauth:grant-type:dev-user"


class TokenRequested(Payload):
    """A client asks POST /api/v1/auth/token for tokens; the answer goes to `reply_channel`
    (Redis pub/sub) as the token response or an RFC 6749 error, with its HTTP status."""

    event_type: ClassVar[str] = "auth.token.requested"

    grant_type: GrantType
    # refresh_token: the hash of the presented refresh token.
    refresh_token_hash: Sha256Hex | None = None
    # device_code: the hash of the device code the TV polls with.
    device_code_hash: Sha256Hex | None = None
    # dev: the user to sign in, and the scopes asked for (space-separated; none: the defaults).
    username: UserId | None = None
    scope: str | None = Field(default=None, max_length=2000)
    # dev: the account's profile the tokens are bound to (their `profile` claim); none: unbound.
    profile: ProfileId | None = None
    reply_channel: ReplyChannel


class RevocationRequested(Payload):
    """Logout: revoke the session (refresh-token family) a token belongs to. The gateway names
    it by the refresh token's hash, or by the `sid`/`jti` of an access token it verified."""

    event_type: ClassVar[str] = "auth.revocation.requested"

    refresh_token_hash: Sha256Hex | None = None
    session_id: str | None = Field(default=None, min_length=1, max_length=64)
    token_id: str | None = Field(default=None, min_length=1, max_length=64)
    # The access token's `exp` (epoch seconds): how long its `jti` must stay denied.
    token_expires_at: float | None = None
    reply_channel: ReplyChannel


class SessionChange(StrEnum):
    signed_in = "signed_in"
    refreshed = "refreshed"
    revoked = "revoked"
    # A refresh token used a second time: its whole family is revoked (OAuth 2.0 Security BCP).
    reuse_detected = "reuse_detected"


class SessionChanged(Payload):
    """A sign-in session began, had its refresh token rotated, or ended."""

    event_type: ClassVar[str] = "auth.session.changed"

    change: SessionChange
    user_id: UserId
    session_id: str = Field(min_length=1, max_length=64)
    grant_type: GrantType | None = None
    at: datetime


class DeviceAuthorizationRequested(Payload):
    """A TV asks for a device code (RFC 8628 section 3.1): store it, pending, until a signed-in
    user approves its user code or it expires. Answered over Redis pub/sub."""

    event_type: ClassVar[str] = "auth.device_authorization.requested"

    device_code_hash: Sha256Hex
    user_code_hash: Sha256Hex
    client_id: str = Field(min_length=1, max_length=200)
    scope: str | None = Field(default=None, max_length=2000)
    # The device as it will be registered to the approving user.
    device: DeviceInfo
    expires_in_s: int = Field(ge=1, le=3600)
    interval_s: int = Field(ge=1, le=60)
    reply_channel: ReplyChannel


class DeviceApprovalRequested(Payload):
    """A signed-in user approves (or denies) the device showing a user code. The TV's tokens
    get the scopes it asked for that the approver holds, and are bound to `profile_id` when
    there is one (their `profile` claim, which the gateway checked is the approver's to give).
    Answered over Redis pub/sub."""

    event_type: ClassVar[str] = "auth.device_approval.requested"

    user_code_hash: Sha256Hex
    user_id: UserId
    approved: bool
    approver_scopes: list[str] = Field(default_factory=list, max_length=100)
    profile_id: ProfileId | None = None
    reply_channel: ReplyChannel
