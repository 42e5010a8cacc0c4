"""The PostgreSQL pool every agent process shares."""

from __future__ import annotations

import asyncpg
import orjson

from core.config import PostgresSettings


async def _init_connection(conn: asyncpg.Connection) -> None:
    # jsonb in and out as orjson bytes-speed dicts rather than the stdlib json module.
    await conn.set_type_codec(
        "jsonb",
        encoder=lambda v: orjson.dumps(v).decode(),
        decoder=orjson.loads,
        schema="pg_catalog",
    )


async def create_pool(settings: PostgresSettings) -> asyncpg.Pool:
    return await asyncpg.create_pool(
        settings.require_url(),
        min_size=settings.pool_min,
        max_size=settings.pool_max,
        command_timeout=settings.command_timeout_s,
        init=_init_connection,
    )
