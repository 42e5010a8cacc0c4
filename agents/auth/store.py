"""The auth agents' tables (agents/migrations/0045_auth.sql, 0046, 0051): SQL only, no rules."""

from __future__ import annotations

import json
from datetime import datetime

import asyncpg

from agents.auth.device_flow import DeviceCodeRow, DeviceStatus
from agents.auth.grants import RefreshRow
from agents.auth.keys import ALGORITHM, SigningKey, new_key


def _key(row: asyncpg.Record) -> SigningKey:
    jwk = row["public_jwk"]
    return SigningKey(
        row["kid"], row["private_pem"], json.loads(jwk) if isinstance(jwk, str) else jwk
    )


async def active_key(conn: asyncpg.Connection) -> tuple[SigningKey, bool]:
    """The active signing key, created when there is none; True when this call created it."""
    row = await conn.fetchrow(
        "SELECT kid, private_pem, public_jwk FROM auth_signing_keys WHERE retired_at IS NULL"
    )
    if row is not None:
        return _key(row), False
    key = new_key()
    # The unique index on active keys: if another agent created one meanwhile, use that.
    inserted = await conn.fetchval(
        """INSERT INTO auth_signing_keys (kid, algorithm, private_pem, public_jwk)
           VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING RETURNING kid""",
        key.kid,
        ALGORITHM,
        key.private_pem,
        # A dict: the pool's jsonb codec (agents/framework/db.py) encodes it.
        key.public_jwk,
    )
    if inserted is None:
        return await active_key(conn)
    return key, True


async def rotate_key(conn: asyncpg.Connection, verify_until: datetime) -> SigningKey:
    """Retire the active key (it verifies until `verify_until`) and make a new one active."""
    await conn.execute(
        """UPDATE auth_signing_keys SET retired_at = now(), verify_until = $1
           WHERE retired_at IS NULL""",
        verify_until,
    )
    key, _ = await active_key(conn)
    return key


async def verifying_keys(
    conn: asyncpg.Connection, now: datetime
) -> list[tuple[dict[str, object], datetime | None]]:
    """Public JWKs of the keys that still verify, each with its `verify_until` (None: active)."""
    rows = await conn.fetch(
        """SELECT public_jwk, verify_until FROM auth_signing_keys
           WHERE retired_at IS NULL OR verify_until > $1 ORDER BY created_at""",
        now,
    )
    out = []
    for row in rows:
        jwk = row["public_jwk"]
        out.append((json.loads(jwk) if isinstance(jwk, str) else jwk, row["verify_until"]))
    return out


async def create_session(
    conn: asyncpg.Connection,
    *,
    session_id: str,
    user_id: str,
    grant_type: str,
    scope: str,
    roles: list[str],
    tier: str,
    profile_id: str | None = None,
) -> None:
    await conn.execute(
        """INSERT INTO auth_sessions (session_id, user_id, grant_type, scope, roles, tier,
                                      profile_id)
           VALUES ($1, $2, $3, $4, $5, $6, $7)""",
        session_id,
        user_id,
        grant_type,
        scope,
        roles,
        tier,
        profile_id,
    )


async def add_refresh_token(
    conn: asyncpg.Connection, token_hash: str, session_id: str, expires_at: datetime
) -> None:
    await conn.execute(
        "INSERT INTO auth_refresh_tokens (token_hash, session_id, expires_at) VALUES ($1, $2, $3)",
        token_hash,
        session_id,
        expires_at,
    )


async def lock_refresh_token(
    conn: asyncpg.Connection, token_hash: str
) -> tuple[RefreshRow, asyncpg.Record] | None:
    """The token and its session, locked: two concurrent uses of one token are serialised, so
    the second sees the first's `used_at` and is caught as a reuse."""
    row = await conn.fetchrow(
        """SELECT t.session_id, t.expires_at, t.used_at, s.user_id, s.revoked_at, s.scope,
                  s.roles, s.tier, s.profile_id
           FROM auth_refresh_tokens t JOIN auth_sessions s USING (session_id)
           WHERE t.token_hash = $1
           FOR UPDATE OF t, s""",
        token_hash,
    )
    if row is None:
        return None
    return (
        RefreshRow(
            row["session_id"], row["user_id"], row["expires_at"], row["used_at"], row["revoked_at"]
        ),
        row,
    )


async def mark_used(conn: asyncpg.Connection, token_hash: str, now: datetime) -> None:
    await conn.execute(
        "UPDATE auth_refresh_tokens SET used_at = $2 WHERE token_hash = $1", token_hash, now
    )


async def revoke_session(
    conn: asyncpg.Connection, session_id: str, reason: str, now: datetime
) -> str | None:
    """Revoke a session (first revocation kept); its user, None when there is no such session."""
    return await conn.fetchval(  # type: ignore[no-any-return]
        """UPDATE auth_sessions SET revoked_at = COALESCE(revoked_at, $3),
                  revoked_reason = COALESCE(revoked_reason, $2)
           WHERE session_id = $1 RETURNING user_id""",
        session_id,
        reason,
        now,
    )


async def session_of_refresh_token(conn: asyncpg.Connection, token_hash: str) -> str | None:
    return await conn.fetchval(  # type: ignore[no-any-return]
        "SELECT session_id FROM auth_refresh_tokens WHERE token_hash = $1", token_hash
    )


async def add_device_code(
    conn: asyncpg.Connection,
    *,
    device_code_hash: str,
    user_code_hash: str,
    client_id: str,
    scope: str | None,
    device: dict[str, object],
    expires_at: datetime,
    interval_s: int,
) -> bool:
    """False when the user code is taken (by a code not yet pruned): the gateway makes another."""
    inserted = await conn.fetchval(
        """INSERT INTO auth_device_codes (device_code_hash, user_code_hash, client_id, scope,
                                          device, expires_at, interval_s)
           VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING RETURNING 1""",
        device_code_hash,
        user_code_hash,
        client_id,
        scope,
        device,
        expires_at,
        interval_s,
    )
    return inserted is not None


def _device_row(row: asyncpg.Record) -> DeviceCodeRow:
    return DeviceCodeRow(
        DeviceStatus(row["status"]),
        row["expires_at"],
        row["interval_s"],
        row["last_polled_at"],
        row["user_id"],
        row["granted_scope"],
        row["profile_id"],
    )


async def lock_device_code(conn: asyncpg.Connection, device_code_hash: str) -> DeviceCodeRow | None:
    row = await conn.fetchrow(
        "SELECT * FROM auth_device_codes WHERE device_code_hash = $1 FOR UPDATE", device_code_hash
    )
    return None if row is None else _device_row(row)


async def record_poll(
    conn: asyncpg.Connection, device_code_hash: str, now: datetime, interval_s: int
) -> None:
    await conn.execute(
        """UPDATE auth_device_codes SET last_polled_at = $2, interval_s = $3
           WHERE device_code_hash = $1""",
        device_code_hash,
        now,
        interval_s,
    )


async def consume_device_code(conn: asyncpg.Connection, device_code_hash: str) -> None:
    await conn.execute(
        "UPDATE auth_device_codes SET status = 'consumed' WHERE device_code_hash = $1",
        device_code_hash,
    )


async def decide_device_code(
    conn: asyncpg.Connection,
    user_code_hash: str,
    *,
    status: DeviceStatus,
    user_id: str,
    granted_scope: str | None,
    now: datetime,
    profile_id: str | None = None,
) -> tuple[dict[str, object], str] | None:
    """Approve or deny the pending, unexpired code; its device and client id, None if none."""
    row = await conn.fetchrow(
        """UPDATE auth_device_codes SET status = $2, user_id = $3, granted_scope = $4,
                  profile_id = $6
           WHERE user_code_hash = $1 AND status = 'pending' AND expires_at > $5
           RETURNING device, client_id""",
        user_code_hash,
        status.value,
        user_id,
        granted_scope,
        now,
        profile_id,
    )
    if row is None:
        return None
    device = row["device"]
    return (json.loads(device) if isinstance(device, str) else device), row["client_id"]


async def prune_device_codes(conn: asyncpg.Connection, before: datetime) -> int:
    done = await conn.execute("DELETE FROM auth_device_codes WHERE expires_at < $1", before)
    return int(done.split()[-1])


async def pending_scope(
    conn: asyncpg.Connection, user_code_hash: str, now: datetime
) -> tuple[bool, str | None]:
    """Whether a pending, unexpired code has this user code (locked), and the scope it asked."""
    row = await conn.fetchrow(
        """SELECT scope FROM auth_device_codes
           WHERE user_code_hash = $1 AND status = 'pending' AND expires_at > $2 FOR UPDATE""",
        user_code_hash,
        now,
    )
    return (False, None) if row is None else (True, row["scope"])
