"""PostgreSQL reads and writes of sync (migration 0020_sync.sql) and the Redis read models.

JSON columns go through the pool's jsonb codec (agents/framework/db.py): dicts in and out.

Handlers call these on their unit of work's connection after `lock_users`, which serializes
the handling of one user across processes (two workers may briefly both hold a partition
during a rebalance): every read-merge-write of a user's rows then happens alone.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

import asyncpg
import redis.asyncio as aioredis

from agents.sync.batches import TitleRow
from agents.sync.devices import DeviceRecord
from agents.sync.progress import Position
from agents.sync.records import TitleState
from agreements.device_register import MARK_SCRIPT, mark_arguments, register_key
from agreements.sync_read_model import write_documents
from agreements.sync_realtime import claim_key
from schemas.sync import (
    HLC,
    CommandResult,
    DeviceInfo,
    NowPlaying,
    PlaybackState,
    RemoteCommandIssued,
    SyncView,
)

_VERSION_COLUMN = {
    SyncView.watchlist: "watchlist_version",
    SyncView.progress: "progress_version",
    SyncView.devices: "devices_version",
}


async def lock_users(conn: asyncpg.Connection, user_ids: Collection[str]) -> None:
    """Hold each user's advisory lock until the transaction ends (in one order: no deadlock)."""
    await conn.execute(
        "SELECT pg_advisory_xact_lock(hashtextextended('mgw.sync:' || u, 0)) "
        "FROM unnest($1::text[]) AS u ORDER BY u",
        sorted(set(user_ids)),
    )


async def versions(
    conn: asyncpg.Connection, view: SyncView, user_ids: Collection[str], bump: Collection[str]
) -> dict[str, int]:
    """The read-model version of `view` per user, raised by one for the users in `bump`."""
    column = _VERSION_COLUMN[view]
    users = sorted(set(user_ids))
    rows = await conn.fetch(
        f"""
        INSERT INTO sync_users AS s (user_id, {column})
        SELECT u, CASE WHEN u = ANY($2::text[]) THEN 1 ELSE 0 END FROM unnest($1::text[]) AS u
        ON CONFLICT (user_id) DO UPDATE
            SET {column} = s.{column} + CASE WHEN s.user_id = ANY($2::text[]) THEN 1 ELSE 0 END
        RETURNING user_id, {column} AS version
        """,
        users,
        sorted(set(bump)),
    )
    return {r["user_id"]: r["version"] for r in rows}


async def current_version(conn: asyncpg.Connection, view: SyncView, user_id: str) -> int:
    column = _VERSION_COLUMN[view]
    value = await conn.fetchval(f"SELECT {column} FROM sync_users WHERE user_id = $1", user_id)
    return int(value or 0)


# --- watchlist -----------------------------------------------------------------------------------


async def load_titles(
    conn: asyncpg.Connection, keys: Iterable[tuple[str, uuid.UUID]]
) -> dict[str, dict[uuid.UUID, TitleState]]:
    pairs = sorted(set(keys))
    rows = await conn.fetch(
        """
        SELECT w.user_id, w.content_id, w.state
        FROM unnest($1::text[], $2::uuid[]) AS k(user_id, content_id)
        JOIN sync_watchlist w USING (user_id, content_id)
        """,
        [u for u, _ in pairs],
        [c for _, c in pairs],
    )
    out: dict[str, dict[uuid.UUID, TitleState]] = {}
    for r in rows:
        out.setdefault(r["user_id"], {})[r["content_id"]] = r["state"]
    return out


async def save_titles(conn: asyncpg.Connection, rows: Sequence[TitleRow]) -> None:
    if not rows:
        return
    await conn.execute(
        """
        INSERT INTO sync_watchlist AS w
            (user_id, content_id, state, visible, added_physical, added_logical, added_device)
        SELECT * FROM unnest(
            $1::text[], $2::uuid[], $3::jsonb[], $4::bool[], $5::bigint[], $6::int[], $7::text[]
        )
        ON CONFLICT (user_id, content_id) DO UPDATE SET
            state = EXCLUDED.state, visible = EXCLUDED.visible,
            added_physical = EXCLUDED.added_physical, added_logical = EXCLUDED.added_logical,
            added_device = EXCLUDED.added_device, updated_at = now()
        """,
        [r.user_id for r in rows],
        [r.content_id for r in rows],
        [r.state for r in rows],
        [r.visible for r in rows],
        [r.added_at.physical_us if r.added_at else None for r in rows],
        [r.added_at.logical if r.added_at else None for r in rows],
        [r.added_by for r in rows],
    )


async def delete_titles(conn: asyncpg.Connection, keys: Sequence[tuple[str, uuid.UUID]]) -> None:
    """Rows of titles that decide nothing any more (compacted to empty, not on the list)."""
    if not keys:
        return
    await conn.execute(
        "DELETE FROM sync_watchlist w USING unnest($1::text[], $2::uuid[]) AS k(user_id, cid) "
        "WHERE w.user_id = k.user_id AND w.content_id = k.cid AND NOT w.visible",
        [u for u, _ in keys],
        [c for _, c in keys],
    )


async def titles_to_compact(
    conn: asyncpg.Connection | asyncpg.Pool, untouched_since: datetime, limit: int
) -> list[tuple[str, uuid.UUID]]:
    """Titles holding tombstones or a clear and not written since `untouched_since`, oldest
    first. The caller passes a time two minutes before its retention cutoff: a client's stamp
    leads the server's clock by a minute at most, so every stamp in them has expired."""
    rows = await conn.fetch(
        """
        SELECT user_id, content_id FROM sync_watchlist
        WHERE updated_at < $1
          AND (state->'tombstones' NOT IN ('[]'::jsonb, '{}'::jsonb)
               OR jsonb_typeof(state->'cleared') = 'array')
        ORDER BY updated_at LIMIT $2
        """,
        untouched_since,
        limit,
    )
    return [(r["user_id"], r["content_id"]) for r in rows]


async def catalog_titles(conn: asyncpg.Connection, ids: Collection[uuid.UUID]) -> set[uuid.UUID]:
    """Which of `ids` the catalog has (the `content` table the titles agents own; read-only)."""
    if not ids:
        return set()
    rows = await conn.fetch(
        "SELECT canonical_id FROM content WHERE canonical_id = ANY($1::uuid[])", list(ids)
    )
    return {r["canonical_id"] for r in rows}


async def visible_counts(conn: asyncpg.Connection, user_ids: Collection[str]) -> dict[str, int]:
    """Titles on each user's watchlist now (for SYNC_MAX_WATCHLIST_SIZE)."""
    rows = await conn.fetch(
        "SELECT user_id, count(*) AS n FROM sync_watchlist "
        "WHERE user_id = ANY($1::text[]) AND visible GROUP BY user_id",
        sorted(set(user_ids)),
    )
    return {r["user_id"]: int(r["n"]) for r in rows}


async def visible_titles(
    conn: asyncpg.Connection, user_id: str
) -> list[tuple[uuid.UUID, HLC, str | None, list[uuid.UUID]]]:
    """The user's visible titles: (title, newest live add, its device, live tags).

    Rendered after every batch that touches the user, so it reads only the live tags (not the
    whole OR-Set state) and trusts the stored stamps: a long watchlist costs one row each."""
    rows = await conn.fetch(
        "SELECT content_id, added_physical, added_logical, added_device, "
        "ARRAY(SELECT jsonb_object_keys(state->'adds'))::uuid[] AS tags "
        "FROM sync_watchlist WHERE user_id = $1 AND visible",
        user_id,
    )
    return [
        (
            r["content_id"],
            HLC.model_construct(physical_us=r["added_physical"], logical=r["added_logical"]),
            r["added_device"],
            r["tags"],
        )
        for r in rows
    ]


# --- progress ------------------------------------------------------------------------------------


def position_of(r: Mapping[str, Any]) -> Position:
    return Position(
        user_id=r["user_id"],
        content_id=r["content_id"],
        position_seconds=r["position_seconds"],
        duration_seconds=r["duration_seconds"],
        state=PlaybackState(r["state"]),
        timestamp=HLC(physical_us=r["hlc_physical"], logical=r["hlc_logical"]),
        device_id=r["device_id"],
    )


async def load_positions(
    conn: asyncpg.Connection, keys: Iterable[tuple[str, uuid.UUID]]
) -> dict[tuple[str, uuid.UUID], Position]:
    pairs = sorted(set(keys))
    rows = await conn.fetch(
        """
        SELECT p.* FROM unnest($1::text[], $2::uuid[]) AS k(user_id, content_id)
        JOIN sync_progress p USING (user_id, content_id)
        """,
        [u for u, _ in pairs],
        [c for _, c in pairs],
    )
    return {(r["user_id"], r["content_id"]): position_of(r) for r in rows}


async def save_positions(
    conn: asyncpg.Connection, positions: Sequence[Position], complete: Sequence[bool]
) -> None:
    if not positions:
        return
    await conn.execute(
        """
        INSERT INTO sync_progress AS p
            (user_id, content_id, position_seconds, duration_seconds, state, hlc_physical,
             hlc_logical, device_id, complete)
        SELECT * FROM unnest(
            $1::text[], $2::uuid[], $3::float8[], $4::float8[], $5::text[], $6::bigint[],
            $7::int[], $8::text[], $9::bool[]
        )
        ON CONFLICT (user_id, content_id) DO UPDATE SET
            position_seconds = EXCLUDED.position_seconds,
            duration_seconds = EXCLUDED.duration_seconds, state = EXCLUDED.state,
            hlc_physical = EXCLUDED.hlc_physical, hlc_logical = EXCLUDED.hlc_logical,
            device_id = EXCLUDED.device_id, complete = EXCLUDED.complete, updated_at = now()
        """,
        [p.user_id for p in positions],
        [p.content_id for p in positions],
        [p.position_seconds for p in positions],
        [p.duration_seconds for p in positions],
        [p.state.value for p in positions],
        [p.timestamp.physical_us for p in positions],
        [p.timestamp.logical for p in positions],
        [p.device_id for p in positions],
        list(complete),
    )


async def open_positions(conn: asyncpg.Connection, user_id: str, limit: int) -> list[Position]:
    """The user's most recent positions of titles not yet complete."""
    rows = await conn.fetch(
        "SELECT * FROM sync_progress WHERE user_id = $1 AND NOT complete "
        "ORDER BY hlc_physical DESC, hlc_logical DESC LIMIT $2",
        user_id,
        limit,
    )
    return [position_of(r) for r in rows]


# --- devices -------------------------------------------------------------------------------------


def _device(r: Mapping[str, Any]) -> DeviceRecord:
    playing_at = (
        HLC(physical_us=r["now_playing_physical"], logical=r["now_playing_logical"])
        if r["now_playing_physical"] is not None
        else None
    )
    return DeviceRecord(
        user_id=r["user_id"],
        device_id=r["device_id"],
        info=DeviceInfo.model_validate(r["info"]) if r["info"] else None,
        membership=HLC(physical_us=r["membership_physical"], logical=r["membership_logical"]),
        removed=r["removed"],
        last_seen=r["last_seen"],
        announced_online=r["announced_online"],
        now_playing=NowPlaying.model_validate(r["now_playing"]) if r["now_playing"] else None,
        now_playing_at=playing_at,
    )


async def load_devices(
    conn: asyncpg.Connection, user_ids: Collection[str]
) -> dict[str, dict[str, DeviceRecord]]:
    """Every device of these users, removed ones included (their tombstones)."""
    rows = await conn.fetch(
        "SELECT * FROM sync_devices WHERE user_id = ANY($1::text[])", sorted(set(user_ids))
    )
    out: dict[str, dict[str, DeviceRecord]] = {}
    for r in rows:
        out.setdefault(r["user_id"], {})[r["device_id"]] = _device(r)
    return out


async def save_devices(conn: asyncpg.Connection, records: Sequence[DeviceRecord]) -> None:
    if not records:
        return
    await conn.execute(
        """
        INSERT INTO sync_devices AS d
            (user_id, device_id, info, membership_physical, membership_logical, removed,
             last_seen, announced_online, now_playing, now_playing_physical, now_playing_logical)
        SELECT * FROM unnest(
            $1::text[], $2::text[], $3::jsonb[], $4::bigint[], $5::int[], $6::bool[],
            $7::timestamptz[], $8::bool[], $9::jsonb[], $10::bigint[], $11::int[]
        )
        ON CONFLICT (user_id, device_id) DO UPDATE SET
            info = EXCLUDED.info, membership_physical = EXCLUDED.membership_physical,
            membership_logical = EXCLUDED.membership_logical, removed = EXCLUDED.removed,
            last_seen = EXCLUDED.last_seen, announced_online = EXCLUDED.announced_online,
            now_playing = EXCLUDED.now_playing,
            now_playing_physical = EXCLUDED.now_playing_physical,
            now_playing_logical = EXCLUDED.now_playing_logical, updated_at = now()
        """,
        [r.user_id for r in records],
        [r.device_id for r in records],
        [r.info.model_dump(mode="json") if r.info else None for r in records],
        [r.membership.physical_us for r in records],
        [r.membership.logical for r in records],
        [r.removed for r in records],
        [r.last_seen for r in records],
        [r.announced_online for r in records],
        [r.now_playing.model_dump(mode="json") if r.now_playing else None for r in records],
        [r.now_playing_at.physical_us if r.now_playing_at else None for r in records],
        [r.now_playing_at.logical if r.now_playing_at else None for r in records],
    )


async def silent_devices(
    conn: asyncpg.Connection, seen_before: datetime, limit: int
) -> list[DeviceRecord]:
    """Devices last announced online whose last heartbeat is older than `seen_before`."""
    rows = await conn.fetch(
        "SELECT * FROM sync_devices WHERE announced_online AND last_seen < $1 "
        "ORDER BY last_seen LIMIT $2",
        seen_before,
        limit,
    )
    return [_device(r) for r in rows]


async def announce_offline(
    conn: asyncpg.Connection, records: Sequence[DeviceRecord]
) -> list[DeviceRecord]:
    """Mark these devices announced offline, unless a heartbeat moved them meanwhile; returns
    the ones marked (only those may be announced)."""
    rows = await conn.fetch(
        """
        UPDATE sync_devices d SET announced_online = false, updated_at = now()
        FROM unnest($1::text[], $2::text[], $3::timestamptz[]) AS k(user_id, device_id, seen)
        WHERE d.user_id = k.user_id AND d.device_id = k.device_id
          AND d.announced_online AND d.last_seen = k.seen
        RETURNING d.*
        """,
        [r.user_id for r in records],
        [r.device_id for r in records],
        [r.last_seen for r in records],
    )
    return [_device(r) for r in rows]


# --- commands ------------------------------------------------------------------------------------


async def decided_commands(conn: asyncpg.Connection, ids: Collection[uuid.UUID]) -> set[uuid.UUID]:
    rows = await conn.fetch(
        "SELECT command_id FROM sync_commands WHERE command_id = ANY($1::uuid[])", list(ids)
    )
    return {r["command_id"] for r in rows}


async def save_decisions(
    conn: asyncpg.Connection, decisions: Sequence[tuple[RemoteCommandIssued, CommandResult]]
) -> None:
    if not decisions:
        return
    await conn.execute(
        """
        INSERT INTO sync_commands
            (command_id, user_id, source_device_id, target_device_id, command, issued_at,
             expires_at, status, error, message, decided_at)
        SELECT * FROM unnest(
            $1::uuid[], $2::text[], $3::text[], $4::text[], $5::jsonb[], $6::timestamptz[],
            $7::timestamptz[], $8::text[], $9::text[], $10::text[], $11::timestamptz[]
        )
        ON CONFLICT (command_id) DO NOTHING
        """,
        [i.command_id for i, _ in decisions],
        [i.user_id for i, _ in decisions],
        [i.source_device_id for i, _ in decisions],
        [i.target_device_id for i, _ in decisions],
        [i.command.model_dump(mode="json") for i, _ in decisions],
        [i.issued_at for i, _ in decisions],
        [i.expires_at for i, _ in decisions],
        [r.status.value for _, r in decisions],
        [r.error.value if r.error else None for _, r in decisions],
        [r.message for _, r in decisions],
        [r.decided_at for _, r in decisions],
    )


async def prune_commands(conn: asyncpg.Connection | asyncpg.Pool, decided_before: datetime) -> int:
    result = await conn.execute("DELETE FROM sync_commands WHERE decided_at < $1", decided_before)
    return int(result.split()[-1])


# --- Redis read models ---------------------------------------------------------------------------


async def write_views(
    redis: aioredis.Redis, prefix: str, view: SyncView, documents: Mapping[str, tuple[int, bytes]]
) -> dict[str, bytes]:
    return await write_documents(redis, prefix, view, dict(documents))


async def write_device_register(
    redis: aioredis.Redis,
    prefix: str,
    users: Collection[str],
    devices: Mapping[str, Mapping[str, DeviceRecord]],
) -> None:
    """Every device of each user, removed ones included, into the gateway's ownership check
    (agreements/device_register.py); a user without devices is written too (none owned)."""
    await mark_devices(
        redis,
        prefix,
        users,
        {
            user: {d: (r.membership, r.active) for d, r in records.items()}
            for user, records in devices.items()
        },
    )


async def mark_devices(
    redis: aioredis.Redis,
    prefix: str,
    users: Iterable[str],
    devices: Mapping[str, Mapping[str, tuple[HLC, bool]]],
    *,
    complete: bool = True,
) -> None:
    """Each of `users`' devices in `devices` into the register, in one pipeline: `complete`,
    every device each user has (a user without devices too, so the check knows they have
    none); else only those named (a refused registration marked removed)."""
    script = redis.register_script(MARK_SCRIPT)
    async with redis.pipeline(transaction=False) as pipe:
        for user_id in users:
            args = mark_arguments(complete, devices.get(user_id, {}))
            await script(keys=[register_key(prefix, user_id)], args=args, client=pipe)
        await pipe.execute()


async def claimed_messages(
    redis: aioredis.Redis, prefix: str, messages: list[tuple[str, uuid.UUID]]
) -> set[uuid.UUID]:
    """Which of these (user, message id) were claimed: sent, or being sent, on either path."""
    if not messages:
        return set()
    async with redis.pipeline(transaction=False) as pipe:
        for user_id, message_id in messages:
            pipe.exists(claim_key(prefix, user_id, message_id))
        found = await pipe.execute()
    return {message_id for (_, message_id), n in zip(messages, found, strict=True) if n}
