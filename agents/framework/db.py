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


# Agents run the same prepared statements over arrays of very different sizes
# (`= ANY($1)`, `unnest($1, ...)`). After five executions PostgreSQL may switch a prepared
# statement to a generic plan, estimated for no particular array: the ingestion candidate query
# then went from 0.03 s to 0.5 s per batch once the catalog held ~8,000 titles. Planning each
# execution costs well under a millisecond; these statements each carry a batch.
SERVER_SETTINGS = {"plan_cache_mode": "force_custom_plan"}


async def create_pool(settings: PostgresSettings) -> asyncpg.Pool:
    return await asyncpg.create_pool(
        settings.require_url(),
        min_size=settings.pool_min,
        max_size=settings.pool_max,
        command_timeout=settings.command_timeout_s,
        init=_init_connection,
        server_settings=SERVER_SETTINGS,
    )
