"""API keys in PostgreSQL (the source of truth) mirrored into Redis (what the gateway reads).

Used by the `mgw keys` commands and `mgw up` only: the gateway process never opens PostgreSQL.
Each write touches both stores inside one PostgreSQL transaction that commits only after Redis
has accepted the change, so a Redis failure leaves no row behind that the gateway cannot see
(create) and never reports a key as revoked while Redis still honours it (revoke).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime

import asyncpg
import redis.asyncio as aioredis

from agreements.api_key_mirror import index_key, listing_json
from core.config import Settings
from gateway.auth.api_keys import ApiKeyRecord, generate_key, redis_key
from gateway.auth.principal import GRANTABLE_TIERS, Tier

_COLUMNS = "key_id, name, hash, scopes, tier, created_at, revoked_at"


@dataclass(frozen=True)
class StoredKey:
    key_id: str
    name: str
    hash: str
    scopes: tuple[str, ...]
    tier: Tier
    created_at: datetime
    revoked_at: datetime | None

    @property
    def record(self) -> ApiKeyRecord:
        return ApiKeyRecord(self.key_id, self.name, self.scopes, self.tier)

    @property
    def listing(self) -> bytes:
        return listing_json(
            self.key_id, self.name, self.scopes, self.tier, self.created_at, self.revoked_at
        )


@dataclass(frozen=True)
class SyncResult:
    mirrored: int
    removed: int


def _stored(row: asyncpg.Record) -> StoredKey:
    return StoredKey(
        key_id=row["key_id"],
        name=row["name"],
        hash=row["hash"],
        scopes=tuple(row["scopes"]),
        tier=Tier(row["tier"]),
        created_at=row["created_at"],
        revoked_at=row["revoked_at"],
    )


class KeyStore:
    def __init__(self, conn: asyncpg.Connection, redis: aioredis.Redis, prefix: str) -> None:
        self._conn = conn
        self._redis = redis
        self._prefix = prefix

    @classmethod
    @asynccontextmanager
    async def open(cls, settings: Settings) -> AsyncIterator[KeyStore]:
        conn = await asyncpg.connect(settings.postgres.require_url())
        redis = aioredis.from_url(settings.redis.require_url())
        try:
            yield cls(conn, redis, settings.redis.key_prefix)
        finally:
            await redis.aclose()
            await conn.close()

    def _mirror_key(self, secret_hash: str) -> str:
        return redis_key(self._prefix, secret_hash)

    async def create(
        self, name: str, scopes: Iterable[str], tier: str = Tier.free
    ) -> tuple[StoredKey, str]:
        """Store a new key and return it with the full key text, which is never seen again."""
        if tier not in GRANTABLE_TIERS:
            raise ValueError(f"tier must be one of {sorted(GRANTABLE_TIERS)}, not {tier!r}")
        new = generate_key()
        async with self._conn.transaction():
            row = await self._conn.fetchrow(
                f"INSERT INTO api_keys (key_id, name, hash, scopes, tier) "
                f"VALUES ($1, $2, $3, $4, $5) RETURNING {_COLUMNS}",
                new.key_id,
                name,
                new.hash,
                sorted(set(scopes)),
                str(tier),
            )
            stored = _stored(row)
            await self._redis.set(self._mirror_key(stored.hash), stored.record.to_json())
            await self._redis.hset(index_key(self._prefix), stored.key_id, stored.listing)
        return stored, new.full

    async def list_keys(self, include_revoked: bool = True) -> list[StoredKey]:
        where = "" if include_revoked else "WHERE revoked_at IS NULL"
        rows = await self._conn.fetch(
            f"SELECT {_COLUMNS} FROM api_keys {where} ORDER BY created_at"
        )
        return [_stored(r) for r in rows]

    async def revoke(self, key_id: str) -> StoredKey | None:
        """Mark the key revoked and drop its mirror; None if there is no such key.

        Revoking an already revoked key keeps its first revocation time and deletes the mirror
        again, so running it twice repairs a mirror that a sync could not remove.
        """
        async with self._conn.transaction():
            row = await self._conn.fetchrow(
                f"UPDATE api_keys SET revoked_at = coalesce(revoked_at, now()) "
                f"WHERE key_id = $1 RETURNING {_COLUMNS}",
                key_id,
            )
            if row is None:
                return None
            stored = _stored(row)
            await self._redis.delete(self._mirror_key(stored.hash))
            await self._redis.hset(index_key(self._prefix), stored.key_id, stored.listing)
        return stored

    async def sync(self) -> SyncResult:
        """Mirror every live key into Redis and drop mirrors of keys that are not live.

        Redis keeps nothing on disk: run this after Redis restarts (`mgw up` does it itself).
        """
        every = await self.list_keys()
        live = [k for k in every if k.revoked_at is None]
        wanted = {self._mirror_key(k.hash): k for k in live}
        async with self._redis.pipeline(transaction=False) as pipe:
            for name, key in wanted.items():
                pipe.set(name, key.record.to_json())
            # The admin listing (GET /api/v1/admin/api-keys) is rebuilt whole.
            pipe.delete(index_key(self._prefix))
            for key in every:
                pipe.hset(index_key(self._prefix), key.key_id, key.listing)
            await pipe.execute()
        stale = [
            name.decode() if isinstance(name, bytes) else name
            async for name in self._redis.scan_iter(match=self._mirror_key("*"), count=500)
        ]
        stale = [name for name in stale if name not in wanted]
        if stale:
            # A key created while this ran can be mirrored already yet missing from `live`:
            # looking again narrows (does not close) that window; a later sync restores it.
            hashes = [name.rsplit(":", 1)[1] for name in stale]
            still_live = {
                self._mirror_key(r["hash"])
                for r in await self._conn.fetch(
                    "SELECT hash FROM api_keys WHERE hash = ANY($1) AND revoked_at IS NULL", hashes
                )
            }
            stale = [name for name in stale if name not in still_live]
            if stale:
                await self._redis.delete(*stale)
        return SyncResult(mirrored=len(wanted), removed=len(stale))
