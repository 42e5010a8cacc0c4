"""PubNub with the keyset's secret key, shared by the gateway (grants device tokens) and the sync
workers (publish, revoke tokens of removed devices): one client configuration for both, so
every request either makes is signed the same way (docs/REALTIME.md).

Holding the secret key makes a client all-powerful on the keyset (PubNub lets signed requests
through Access Manager), so it lives in these server processes only; devices get tokens.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass

from pubnub.models.consumer.v3.channel import Channel
from pubnub.pnconfiguration import PNConfiguration
from pubnub.pubnub_asyncio import PubNubAsyncio

from core.config import PubNubSettings, secret_value

# A grant or revocation normally takes milliseconds; past this the request is given up.
REQUEST_TIMEOUT_S = 5
# Status codes after which the same request may succeed later.
RETRYABLE_STATUS = frozenset({408, 429, 500, 502, 503, 504})


def pubnub_config(settings: PubNubSettings, role: str) -> PNConfiguration:
    """The configuration of a server-side client; `role` names it in PubNub's user ids."""
    config = PNConfiguration()
    config.publish_key = secret_value(settings.publish_key)
    config.subscribe_key = settings.subscribe_key
    if settings.secret_key is not None:
        # The SDK then signs every request (PAM v2 signatures, HMAC-SHA256 over the request).
        config.secret_key = settings.secret_key.get_secret_value()
    # The SDK wants an id per client; one per process.
    config.user_id = f"mgw-{role}-{socket.gethostname()}-{os.getpid()}"
    if settings.origin:
        config.origin = settings.origin
    config.ssl = settings.ssl
    config.enable_subscribe = False
    config.non_subscribe_request_timeout = REQUEST_TIMEOUT_S
    config.connect_timeout = REQUEST_TIMEOUT_S
    # Locked once the client is made (the SDK deprecates mutable configurations).
    config.disable_config_locking = False
    return config


class AccessUnavailable(ConnectionError):
    """PubNub did not answer a grant or revocation (or answered a transient error): retry later."""


class AccessRefused(ValueError):
    """PubNub refused the request for good (a bad key, Access Manager or revocation disabled)."""


@dataclass(frozen=True)
class Refusal:
    status: int | None
    detail: str


def _refusal(envelope: object) -> Refusal:
    status = getattr(envelope, "status", None)
    code = getattr(status, "status_code", None)
    error = getattr(getattr(status, "error_data", None), "information", None) or getattr(
        getattr(status, "error_data", None), "exception", None
    )
    return Refusal(code, str(error))


def _raise(action: str, refusal: Refusal) -> None:
    detail = f"PubNub {action}: {refusal.detail}"
    if refusal.status is None or refusal.status in RETRYABLE_STATUS:
        raise AccessUnavailable(detail)
    raise AccessRefused(f"{detail} (HTTP {refusal.status})")


class PubNubAccess:
    """Grants and revokes Access Manager (v3) tokens with the secret key."""

    def __init__(self, settings: PubNubSettings, role: str) -> None:
        if settings.secret_key is None:
            raise ValueError("Access Manager needs PUBNUB_SECRET_KEY")
        self._pubnub = PubNubAsyncio(pubnub_config(settings, role))

    async def grant_read(self, channels: list[str], ttl_min: int, meta: dict[str, str]) -> str:
        """A token that may read (subscribe to) exactly `channels` for `ttl_min` minutes and
        write nowhere. No authorized user id: device ids are not unique across users and can be
        longer than PubNub's user ids, and the token already grants one user's channels only.
        `meta` is carried in the token: it must make every token distinct (two devices granted
        the same channels in the same second would otherwise get the same token, and revoking
        one device's would revoke the other's)."""
        envelope = (
            await self._pubnub.grant_token()
            .channels([Channel.id(c).read() for c in channels])
            .ttl(ttl_min)
            .meta(meta)
            .future()
        )
        if envelope.is_error():
            _raise("refused a grant", _refusal(envelope))
        token: str = envelope.result.token
        return token

    async def revoke(self, token: str) -> bool:
        """Revoke a token; False when PubNub says it is not one to revoke (already revoked,
        expired, malformed): a repeated revocation is then done, not an error."""
        envelope = await self._pubnub.revoke_token(token).future()
        if not envelope.is_error():
            return True
        refusal = _refusal(envelope)
        if refusal.status in (400, 404):
            return False
        _raise("refused a revocation", refusal)
        return False

    async def close(self) -> None:
        await self._pubnub.stop()
