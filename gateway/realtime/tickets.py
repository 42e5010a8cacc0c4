"""Stream tickets: how a client that cannot send an Authorization header (a browser's
EventSource, a WebSocket) opens a user's realtime stream or socket.

`POST /api/v1/users/{user_id}/stream/ticket`, with the user's token and a registered device,
issues an opaque ticket (`secrets.token_urlsafe`, 256 bits). It is:
- single use: redeeming it deletes it in the same Redis command (GETDEL), so two redemptions
  racing each other cannot both win;
- short-lived: its key expires after REALTIME_TICKET_TTL_S (60 s), or sooner when the token it
  was issued with expires sooner;
- device-bound: it opens the stream (or socket) of the device it was issued for, of the user
  it was issued for, and nothing else;
- stored hashed: the Redis key is the ticket's SHA-256, so whoever reads Redis (or its
  backups) cannot open a stream; the ticket itself is never logged.

The claims it carries are what the token showed when it was issued: the scopes (the stream
checks its channels' scopes against them), the token's expiry (the stream ends then), and the
profile the issuing request acted as (its parental limits apply to the stream).
"""

from __future__ import annotations

import hashlib
import re
import secrets
import time
from dataclasses import dataclass

import orjson
import redis.asyncio as aioredis

# token_urlsafe(32): 43 characters of the URL-safe base64 alphabet.
TICKET_BYTES = 32
TICKET_PATTERN = r"^[A-Za-z0-9_-]{43}$"
_TICKET = re.compile(TICKET_PATTERN)


class TicketRefused(Exception):
    """A ticket that opens nothing. `reason` is a low-cardinality label (metrics, logs);
    the message is safe to show the caller and never contains the ticket."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


@dataclass(frozen=True, slots=True)
class TicketClaims:
    user_id: str
    device_id: str
    scopes: frozenset[str]
    # When the credential the ticket was issued with expires (epoch seconds): the stream or
    # socket it opens ends then.
    credential_expires_at: float
    # Who asked for it (the token's subject: the user, or an admin acting for them).
    issued_by: str
    # The profile the issuing request acted as (token `profile` claim, else X-Profile-ID);
    # None: the account itself. The stream applies that profile's limits.
    profile_id: str | None = None


@dataclass(frozen=True, slots=True)
class IssuedTicket:
    ticket: str
    expires_at: float  # epoch seconds


def ticket_key(prefix: str, ticket: str) -> str:
    digest = hashlib.sha256(ticket.encode()).hexdigest()
    return f"{prefix}:rt:ticket:{digest}"


async def issue_ticket(
    redis: aioredis.Redis,
    prefix: str,
    *,
    user_id: str,
    device_id: str,
    scopes: frozenset[str],
    credential_expires_at: float,
    issued_by: str,
    ttl_s: int,
    profile_id: str | None = None,
    now: float | None = None,
) -> IssuedTicket:
    """Store a new ticket's claims under its hash and return the ticket (shown once)."""
    now = time.time() if now is None else now
    lifetime = min(float(ttl_s), credential_expires_at - now)
    if lifetime < 1:
        raise TicketRefused("credential_expiring", "the token expires within a second")
    ticket = secrets.token_urlsafe(TICKET_BYTES)
    claims = {
        "u": user_id,
        "d": device_id,
        "s": sorted(scopes),
        "x": credential_expires_at,
        "b": issued_by,
        "p": profile_id,
    }
    # NX: a collision of 256-bit random values will not happen, but must never overwrite.
    await redis.set(
        ticket_key(prefix, ticket), orjson.dumps(claims), px=int(lifetime * 1000), nx=True
    )
    return IssuedTicket(ticket, now + lifetime)


async def redeem_ticket(
    redis: aioredis.Redis, prefix: str, ticket: str, user_id: str, now: float | None = None
) -> TicketClaims:
    """The claims of `ticket`, consumed (a second redemption fails), for the stream or socket
    of `user_id`; TicketRefused otherwise. Redis errors propagate (the caller answers 503).

    A ticket shown on another user's path is consumed too: whoever holds a leaked ticket
    gets one try, and it fails.
    """
    if not _TICKET.fullmatch(ticket):
        raise TicketRefused("malformed", "the ticket is malformed (43 URL-safe base64 characters)")
    raw = await redis.getdel(ticket_key(prefix, ticket))
    if raw is None:
        raise TicketRefused(
            "unknown", "the ticket is unknown, already used or expired; ask for a new one"
        )
    data = orjson.loads(raw)
    claims = TicketClaims(
        user_id=str(data["u"]),
        device_id=str(data["d"]),
        scopes=frozenset(str(s) for s in data["s"]),
        credential_expires_at=float(data["x"]),
        issued_by=str(data["b"]),
        # Tickets issued before profiles were carried have none: the account's (they live 60 s).
        profile_id=None if data.get("p") is None else str(data["p"]),
    )
    if claims.user_id != user_id:
        raise TicketRefused("other_user", "the ticket was issued for another user")
    if claims.credential_expires_at <= (time.time() if now is None else now):
        raise TicketRefused("expired", "the token the ticket was issued with has expired")
    return claims
