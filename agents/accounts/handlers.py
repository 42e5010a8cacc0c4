"""Handlers of accounts (group accounts): apply profile changes and render the profiles read
model, and apply the API keys admins issue or revoke over HTTP.

Profiles (`accounts-profiles`, on accounts.profiles): a batch's changes are stored in one
transaction (an older change arriving late loses to the stored one), then each touched
account's hash is rendered whole from the table, and its cached recommendations are dropped:
they were computed under the limits that just changed. Search pages need no drop: their cache
key holds the limits they were computed under (agreements/discovery_cache.py), so a changed
limit asks for other pages.

Notifications (agents/notifications) are raised per account and filtered by the acting
profile where they are read (the inbox GET, a stream or socket as it opens: docs/AUTH.md),
so `notify_limits_changed` below has nothing to tell them.

API keys (`accounts-api-keys`, on accounts.api_keys): the row is written and the Redis mirror
set (issued) or deleted (revoked) inside the transaction, which commits only after Redis took
the change, as `mgw keys` does (gateway/auth/key_store.py).
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

import asyncpg
from loguru import logger

from agents.accounts import store
from agents.framework.context import AgentContext
from agents.framework.runtime import TAKE_WHAT_IS_READY, AgentSpec, TimerSpec
from agreements.api_key_mirror import index_key, listing_json, mirror_key, record_json
from agreements.profiles_read_model import render_profiles, rendered_key
from agreements.sona_cache import drop_recommendations
from core.observability.metrics import BOUND_REFUSALS
from schemas.accounts import ApiKeyChanged, ProfileChanged
from schemas.envelope import Envelope
from topics.registry import ACCOUNTS_API_KEYS, ACCOUNTS_PROFILES


async def notify_limits_changed(ctx: AgentContext, user_ids: Collection[str]) -> None:
    """Hook for notifications. Nothing to tell: the gateway filters alerts by the acting
    profile's limits as it reads them (the inbox on every GET; a stream or socket with the
    limits read when it opened, kept until it reconnects: docs/NOTIFICATIONS.md, Limits)."""


async def apply_profiles(ctx: AgentContext, batch: list[Envelope[Any]]) -> None:
    touched: set[str] = set()
    cap = ctx.settings.auth.max_profiles
    async with ctx.pool.acquire() as conn, conn.transaction():
        for env in batch:
            change: ProfileChanged = env.payload
            await conn.execute(
                "SELECT pg_advisory_xact_lock(hashtext('account_profiles'), hashtext($1))",
                change.user_id,
            )
            if not change.removed and await store.count_live(conn, change.user_id) >= cap:
                exists = await conn.fetchval(
                    "SELECT NOT removed FROM account_profiles "
                    "WHERE user_id = $1 AND profile_id = $2",
                    change.user_id,
                    change.profile_id,
                )
                if not exists:
                    BOUND_REFUSALS.labels(bound="profiles_per_account", where="agent").inc()
                    logger.warning(
                        "account {} already has {} profiles: {} not created",
                        change.user_id,
                        cap,
                        change.profile_id,
                    )
                    continue
            await store.apply_profile(conn, change)
            touched.add(change.user_id)
    if not touched:
        return
    await render_profiles(ctx.redis, ctx.prefix, await store.live_profiles(ctx.pool, touched))
    await drop_recommendations(ctx.redis, ctx.prefix, touched, ctx.settings.sona.cache_ttl_s)
    await notify_limits_changed(ctx, touched)
    logger.info("profiles of {} account(s) changed", len(touched))


# Every account is rendered again this long after the last full render (a safety net: changes
# are rendered as they are applied) ...
FULL_RENDER_EVERY_S = 3600
# ... or within this long of Redis losing its data (it keeps nothing on disk): a gateway that
# cannot find a named profile refuses the request, so a kids TV stops working until then.
GUARD_INTERVAL_S = 10.0


async def render_all_profiles(ctx: AgentContext) -> int:
    """Render every account's profiles when the rendered marker is gone (Redis lost its data,
    or the hour since the last full render passed); how many accounts were rendered. At rest a
    run is one Redis EXISTS. A gateway never guesses limits away for a profile it cannot find."""
    if await ctx.redis.exists(rendered_key(ctx.prefix)):
        return 0
    accounts = await store.live_profiles(ctx.pool)
    await render_profiles(ctx.redis, ctx.prefix, accounts, rendered_ttl_s=FULL_RENDER_EVERY_S)
    if accounts:
        logger.info("profiles of every account ({}) rendered into Redis", len(accounts))
    return len(accounts)


async def _mirror(ctx: AgentContext, row: asyncpg.Record) -> None:
    listing = listing_json(
        row["key_id"], row["name"], row["scopes"], row["tier"], row["created_at"], row["revoked_at"]
    )
    async with ctx.redis.pipeline(transaction=True) as pipe:
        if row["revoked_at"] is None:
            pipe.set(
                mirror_key(ctx.prefix, row["hash"]),
                record_json(row["key_id"], row["name"], row["scopes"], row["tier"]),
            )
        else:
            pipe.delete(mirror_key(ctx.prefix, row["hash"]))
        pipe.hset(index_key(ctx.prefix), row["key_id"], listing)
        await pipe.execute()


async def apply_api_keys(ctx: AgentContext, batch: list[Envelope[Any]]) -> None:
    for env in batch:
        change: ApiKeyChanged = env.payload
        async with ctx.pool.acquire() as conn, conn.transaction():
            if change.action == "issued":
                row = await store.issue_key(conn, change)
            else:
                row = await store.revoke_key(conn, change.key_id, change.changed_at)
            if row is None:
                logger.warning(
                    "API key {} {}: no such key (or id taken)", change.key_id, change.action
                )
                continue
            # Inside the transaction: the row commits only once Redis has the change.
            await _mirror(ctx, row)
        logger.info("API key {} {} by admin {}", change.key_id, change.action, change.changed_by)


AGENTS = [
    AgentSpec(
        name="accounts-profiles",
        group="accounts",
        topic=ACCOUNTS_PROFILES,
        handler=apply_profiles,
        batch_within_s=TAKE_WHAT_IS_READY,
        description="stores profile changes, renders the profiles read model, drops the "
        "account's cached recommendations",
    ),
    AgentSpec(
        name="accounts-api-keys",
        group="accounts",
        topic=ACCOUNTS_API_KEYS,
        handler=apply_api_keys,
        batch_within_s=TAKE_WHAT_IS_READY,
        description="stores API keys admins issue or revoke and keeps their Redis mirror",
    ),
]

TIMERS = [
    TimerSpec(
        name="accounts-profiles-render",
        group="accounts",
        interval_s=GUARD_INTERVAL_S,
        run=render_all_profiles,
        at_start=True,
    ),
]
