"""The accounts slice's tables: account_profiles (migration 0050) and api_keys (0010, which
`mgw keys` writes too)."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime

import asyncpg

from schemas.accounts import ApiKeyChanged, Profile, ProfileChanged, ProfileKind, ProfileLimits

_UPSERT_PROFILE = """
INSERT INTO account_profiles
    (user_id, profile_id, name, kind, content_rating_limit, blocked_genres, changed_at, removed)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
ON CONFLICT (user_id, profile_id) DO UPDATE SET
    name = EXCLUDED.name, kind = EXCLUDED.kind,
    content_rating_limit = EXCLUDED.content_rating_limit,
    blocked_genres = EXCLUDED.blocked_genres,
    changed_at = EXCLUDED.changed_at, removed = EXCLUDED.removed
-- A change made earlier than the one stored arrived late: the stored one stands.
WHERE account_profiles.changed_at <= EXCLUDED.changed_at
"""


async def apply_profile(conn: asyncpg.Connection, change: ProfileChanged) -> None:
    limits = change.limits
    await conn.execute(
        _UPSERT_PROFILE,
        change.user_id,
        change.profile_id,
        change.name,
        change.kind.value,
        limits.content_rating_limit.value if limits.content_rating_limit else None,
        list(limits.blocked_genres),
        change.changed_at,
        change.removed,
    )


async def live_profiles(
    db: asyncpg.Pool | asyncpg.Connection, user_ids: Collection[str] | None = None
) -> dict[str, list[Profile]]:
    """The live profiles of these accounts (None: of every account), by account; an account
    whose profiles were all removed maps to an empty list."""
    rows = await db.fetch(
        "SELECT user_id, profile_id, name, kind, content_rating_limit, blocked_genres, removed "
        "FROM account_profiles WHERE $1::text[] IS NULL OR user_id = ANY($1::text[]) "
        "ORDER BY user_id, profile_id",
        None if user_ids is None else list(user_ids),
    )
    out: dict[str, list[Profile]] = {u: [] for u in user_ids or ()}
    for r in rows:
        profiles = out.setdefault(r["user_id"], [])
        if not r["removed"]:
            profiles.append(
                Profile(
                    profile_id=r["profile_id"],
                    name=r["name"],
                    kind=ProfileKind(r["kind"]),
                    limits=ProfileLimits(
                        content_rating_limit=r["content_rating_limit"],
                        blocked_genres=list(r["blocked_genres"]),
                    ),
                )
            )
    return out


async def count_live(conn: asyncpg.Connection, user_id: str) -> int:
    value = await conn.fetchval(
        "SELECT count(*) FROM account_profiles WHERE user_id = $1 AND NOT removed", user_id
    )
    return int(value)


_KEY_COLUMNS = "key_id, name, hash, scopes, tier, created_at, revoked_at"


async def issue_key(conn: asyncpg.Connection, change: ApiKeyChanged) -> asyncpg.Record | None:
    """Insert the issued key (a redelivered event finds it there: nothing changes); the row,
    or None when its key_id or hash belongs to another key."""
    await conn.execute(
        "INSERT INTO api_keys (key_id, name, hash, scopes, tier, created_at) "
        "VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
        change.key_id,
        change.name,
        change.hash,
        sorted(set(change.scopes)),
        change.tier,
        change.changed_at,
    )
    row = await conn.fetchrow(
        f"SELECT {_KEY_COLUMNS} FROM api_keys WHERE key_id = $1 AND hash = $2",
        change.key_id,
        change.hash,
    )
    return row


async def revoke_key(conn: asyncpg.Connection, key_id: str, at: datetime) -> asyncpg.Record | None:
    return await conn.fetchrow(
        f"UPDATE api_keys SET revoked_at = coalesce(revoked_at, $2) WHERE key_id = $1 "
        f"RETURNING {_KEY_COLUMNS}",
        key_id,
        at,
    )
