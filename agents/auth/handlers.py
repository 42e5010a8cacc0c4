"""Handlers of the token service (group auth): answer the token endpoint's grants and the
revocation endpoint, and keep the public signing keys published in Redis.

Each grant runs in one unit of work (its session rows and its SessionChanged event commit
together); what Redis must know (a new key, a denied session) is written after the commit and
before the answer, so a client holding the answer is already known, or already refused, by
every gateway within AUTH_REVOCATION_POLL_S.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import redis.asyncio as aioredis
from loguru import logger

from agents.auth import device_flow, grants, keys, store
from agents.auth.device_flow import DeviceStatus, PollState
from agents.auth.grants import Answer, RefreshState
from agents.framework.context import AgentContext
from agents.framework.runtime import TAKE_WHAT_IS_READY, AgentSpec, TimerSpec
from agents.framework.unit_of_work import UnitOfWork, unit_of_work
from agreements.auth_state import deny, sync_keys
from core.config import AuthSettings
from schemas.auth import (
    DeviceApprovalRequested,
    DeviceAuthorizationRequested,
    GrantType,
    RevocationRequested,
    SessionChange,
    SessionChanged,
    TokenRequested,
)
from schemas.envelope import Envelope
from topics.registry import (
    AUTH_DEVICE_APPROVALS,
    AUTH_DEVICE_AUTHORIZATIONS,
    AUTH_REVOCATIONS,
    AUTH_SESSIONS,
    AUTH_TOKEN_REQUESTS,
)


def utcnow() -> datetime:
    return datetime.now(UTC)


def _event(
    uow: UnitOfWork,
    env: Envelope[Any],
    change: SessionChange,
    user_id: str,
    session_id: str,
    grant_type: GrantType | None,
    now: datetime,
) -> None:
    uow.emit(
        AUTH_SESSIONS,
        SessionChanged(
            change=change, user_id=user_id, session_id=session_id, grant_type=grant_type, at=now
        ),
        key=user_id,
        cause=env,
    )


async def publish_keys(ctx: AgentContext) -> None:
    await publish_verifying_keys(ctx.pool, ctx.redis, ctx.prefix, ctx.settings.auth.leeway_s)


async def publish_verifying_keys(
    pool: asyncpg.Pool, redis: aioredis.Redis, prefix: str, leeway_s: float
) -> None:
    """Publish every key that still verifies (creating the first one), withdraw the others.
    A retired key is published with `exp_after`, its verify_until plus the leeway."""
    now = utcnow()
    async with pool.acquire() as conn, conn.transaction():
        await store.active_key(conn)
        verifying = await store.verifying_keys(conn, now)
    wanted = {}
    for jwk, until in verifying:
        entry = dict(jwk)
        if until is not None:
            entry["exp_after"] = int(until.timestamp() + leeway_s)
        wanted[str(jwk["kid"])] = entry
    if await sync_keys(redis, prefix, wanted):
        logger.info("auth: signing keys published: {}", ", ".join(sorted(wanted)))


async def rotate_signing_key(
    pool: asyncpg.Pool, redis: aioredis.Redis, prefix: str, auth: AuthSettings
) -> tuple[str, datetime]:
    """A new active key; the old one verifies until its last token expires (the access-token
    lifetime from now). The new kid and that time."""
    now = utcnow()
    verify_until = now + timedelta(seconds=auth.access_ttl_s)
    async with pool.acquire() as conn, conn.transaction():
        key = await store.rotate_key(conn, verify_until)
    await publish_verifying_keys(pool, redis, prefix, auth.leeway_s)
    return key.kid, verify_until


async def _sign_in(ctx: AgentContext, env: Envelope[Any], request: TokenRequested) -> Answer:
    auth = ctx.settings.auth
    if not auth.dev_mode:
        return grants.error("unsupported_grant_type", "the dev grant needs AUTH_DEV_MODE=true")
    if not request.username:
        return grants.error("invalid_request", "field username: required by the dev grant")
    scopes = grants.requested_scopes(request.scope)
    if isinstance(scopes, Answer):
        return scopes
    return await _new_session(ctx, env, request.username, " ".join(sorted(scopes)), request)


async def _open_session(
    uow: UnitOfWork,
    env: Envelope[Any],
    auth: AuthSettings,
    *,
    user_id: str,
    scope: str,
    grant_type: GrantType,
    now: datetime,
    profile: str | None = None,
) -> tuple[keys.SigningKey, bool, str, str]:
    """A new session with its first refresh token: the signing key (and whether it was just
    created), the session id and the refresh token. A profile binds the whole family."""
    session_id = grants.new_session_id()
    refresh, refresh_hash = grants.new_refresh_token()
    key, created = await store.active_key(uow.conn)
    await store.create_session(
        uow.conn,
        session_id=session_id,
        user_id=user_id,
        grant_type=grant_type.value,
        scope=scope,
        roles=[],
        tier="free",
        profile_id=profile,
    )
    await store.add_refresh_token(
        uow.conn, refresh_hash, session_id, now + timedelta(seconds=auth.refresh_ttl_s)
    )
    _event(uow, env, SessionChange.signed_in, user_id, session_id, grant_type, now)
    return key, created, session_id, refresh


async def _signed_in(
    ctx: AgentContext,
    opened: tuple[keys.SigningKey, bool, str, str],
    user_id: str,
    scope: str,
    now: datetime,
    profile: str | None = None,
) -> Answer:
    """The token response of a session opened (and committed): publish a new key first."""
    auth = ctx.settings.auth
    key, created, session_id, refresh = opened
    if created:
        await publish_keys(ctx)
    claims = grants.access_claims(
        auth, user_id=user_id, session_id=session_id, scope=scope, roles=[], tier="free",
        now=now, profile=profile,
    )  # fmt: skip
    return grants.token_response(keys.sign(key, claims), refresh, auth, scope)


async def _new_session(
    ctx: AgentContext, env: Envelope[Any], user_id: str, scope: str, request: TokenRequested
) -> Answer:
    now = utcnow()
    async with unit_of_work(ctx) as uow:
        opened = await _open_session(
            uow, env, ctx.settings.auth, user_id=user_id, scope=scope,
            grant_type=request.grant_type, now=now, profile=request.profile,
        )  # fmt: skip
    return await _signed_in(ctx, opened, user_id, scope, now, request.profile)


async def _device_code(ctx: AgentContext, env: Envelope[Any], request: TokenRequested) -> Answer:
    """A TV polls with its device code (RFC 8628 section 3.4/3.5)."""
    code_hash = request.device_code_hash
    if code_hash is None:
        return grants.error("invalid_request", "field device_code: required by this grant")
    now = utcnow()
    opened = None
    async with unit_of_work(ctx) as uow:
        row = await store.lock_device_code(uow.conn, code_hash)
        state = device_flow.poll_state(row, now)
        if row is not None and state in (PollState.pending, PollState.slow_down):
            step = device_flow.SLOW_DOWN_STEP_S if state is PollState.slow_down else 0
            await store.record_poll(uow.conn, code_hash, now, row.interval_s + step)
        if row is not None and state is PollState.approved and row.user_id is not None:
            await store.consume_device_code(uow.conn, code_hash)
            opened = await _open_session(
                uow, env, ctx.settings.auth, user_id=row.user_id, scope=row.granted_scope or "",
                grant_type=GrantType.device_code, now=now, profile=row.profile_id,
            )  # fmt: skip
    if opened is None or row is None or row.user_id is None:
        return grants.error(*device_flow.POLL_ERRORS[state])
    return await _signed_in(ctx, opened, row.user_id, row.granted_scope or "", now, row.profile_id)


async def _refresh(ctx: AgentContext, env: Envelope[Any], request: TokenRequested) -> Answer:
    auth = ctx.settings.auth
    if request.refresh_token_hash is None:
        return grants.error("invalid_request", "field refresh_token: required by this grant")
    now = utcnow()
    refresh, refresh_hash = grants.new_refresh_token()
    async with unit_of_work(ctx) as uow:
        found = await store.lock_refresh_token(uow.conn, request.refresh_token_hash)
        row, record = found if found is not None else (None, None)
        state = grants.refresh_state(row, now)
        if state is RefreshState.reused and row is not None:
            await store.revoke_session(uow.conn, row.session_id, "refresh token reused", now)
            _event(uow, env, SessionChange.reuse_detected, row.user_id, row.session_id,
                   request.grant_type, now)  # fmt: skip
        if state is RefreshState.usable and row is not None and record is not None:
            key, created = await store.active_key(uow.conn)
            await store.mark_used(uow.conn, request.refresh_token_hash, now)
            await store.add_refresh_token(
                uow.conn, refresh_hash, row.session_id, now + timedelta(seconds=auth.refresh_ttl_s)
            )
            _event(uow, env, SessionChange.refreshed, row.user_id, row.session_id,
                   request.grant_type, now)  # fmt: skip
    if row is None or record is None or state is not RefreshState.usable:
        if state is RefreshState.reused and row is not None:
            await deny(
                ctx.redis, ctx.prefix, {row.session_id: grants.session_deny_until(auth, now)}
            )
            logger.bind(correlation_id=env.correlation_id).warning(
                "auth: refresh token of session {} (user {}) used twice: session revoked",
                row.session_id,
                row.user_id,
            )
        return grants.error("invalid_grant", grants.REFRESH_REFUSALS[state])
    if created:
        await publish_keys(ctx)
    claims = grants.access_claims(
        auth,
        user_id=row.user_id,
        session_id=row.session_id,
        scope=record["scope"],
        roles=list(record["roles"]),
        tier=record["tier"],
        now=now,
        profile=record["profile_id"],
    )
    return grants.token_response(keys.sign(key, claims), refresh, auth, record["scope"])


async def _grant(ctx: AgentContext, env: Envelope[Any]) -> Answer:
    request: TokenRequested = env.payload
    if request.grant_type is GrantType.dev:
        return await _sign_in(ctx, env, request)
    if request.grant_type is GrantType.refresh_token:
        return await _refresh(ctx, env, request)
    if request.grant_type is GrantType.device_code:
        return await _device_code(ctx, env, request)
    return grants.error("unsupported_grant_type", f"grant type {request.grant_type.value!r}")


async def answer_token_requests(ctx: AgentContext, batch: list[Envelope[Any]]) -> None:
    for env in batch:
        answer = await _grant(ctx, env)
        await ctx.redis.publish(env.payload.reply_channel, json.dumps(answer.to_json()))


async def answer_revocations(ctx: AgentContext, batch: list[Envelope[Any]]) -> None:
    """Revoke the named session (RFC 7009: an unknown token is not an error, the answer is 200
    either way) and deny it, and the access token named, in Redis before answering."""
    auth = ctx.settings.auth
    for env in batch:
        request: RevocationRequested = env.payload
        now = utcnow()
        denied: dict[str, float] = {}
        async with unit_of_work(ctx) as uow:
            session_id = request.session_id
            if session_id is None and request.refresh_token_hash is not None:
                session_id = await store.session_of_refresh_token(
                    uow.conn, request.refresh_token_hash
                )
            if session_id is not None:
                user_id = await store.revoke_session(uow.conn, session_id, "signed out", now)
                if user_id is not None:
                    denied[session_id] = grants.session_deny_until(auth, now)
                    _event(uow, env, SessionChange.revoked, user_id, session_id, None, now)
        if request.token_id is not None and request.token_expires_at is not None:
            denied[request.token_id] = request.token_expires_at + auth.leeway_s
        await deny(ctx.redis, ctx.prefix, denied)
        await ctx.redis.publish(request.reply_channel, json.dumps(Answer(200).to_json()))


async def answer_device_authorizations(ctx: AgentContext, batch: list[Envelope[Any]]) -> None:
    """Store each new device code, pending (409 when its user code is taken: the gateway
    makes another)."""
    for env in batch:
        request: DeviceAuthorizationRequested = env.payload
        now = utcnow()
        async with ctx.pool.acquire() as conn:
            stored = await store.add_device_code(
                conn,
                device_code_hash=request.device_code_hash,
                user_code_hash=request.user_code_hash,
                client_id=request.client_id,
                scope=request.scope,
                device=request.device.model_dump(mode="json"),
                expires_at=now + timedelta(seconds=request.expires_in_s),
                interval_s=request.interval_s,
            )
        answer = Answer(200) if stored else grants.error("user_code_taken", "try another", 409)
        await ctx.redis.publish(request.reply_channel, json.dumps(answer.to_json()))


async def answer_device_approvals(ctx: AgentContext, batch: list[Envelope[Any]]) -> None:
    """Approve or deny the pending code with this user code; answer with the device to
    register (the gateway registers it, as its devices route does). The profile the TV is
    bound to is stored with the code, checked already by the gateway (it reads profiles)."""
    for env in batch:
        request: DeviceApprovalRequested = env.payload
        now = utcnow()
        async with ctx.pool.acquire() as conn, conn.transaction():
            found, scope = await store.pending_scope(conn, request.user_code_hash, now)
            decided = None
            if found:
                granted = device_flow.granted_scope(scope, frozenset(request.approver_scopes))
                decided = await store.decide_device_code(
                    conn,
                    request.user_code_hash,
                    status=DeviceStatus.approved if request.approved else DeviceStatus.denied,
                    user_id=request.user_id,
                    granted_scope=granted,
                    now=now,
                    profile_id=request.profile_id if request.approved else None,
                )
        if decided is None:
            answer = grants.error(
                "invalid_user_code", "no device is waiting with this code (expired or used?)"
            )
        else:
            device, client_id = decided
            answer = Answer(200, {"device": device, "client_id": client_id})
        await ctx.redis.publish(request.reply_channel, json.dumps(answer.to_json()))


async def prune_device_codes(ctx: AgentContext) -> int:
    """Forget device codes a day after they expired (their user codes become free again)."""
    async with ctx.pool.acquire() as conn:
        return await store.prune_device_codes(conn, utcnow() - timedelta(days=1))


AGENTS = [
    AgentSpec(
        name="auth-tokens",
        group="auth",
        topic=AUTH_TOKEN_REQUESTS,
        handler=answer_token_requests,
        batch_within_s=TAKE_WHAT_IS_READY,
        description="answers the token endpoint: sign-ins, refresh rotation, reuse detection",
    ),
    AgentSpec(
        name="auth-revocations",
        group="auth",
        topic=AUTH_REVOCATIONS,
        handler=answer_revocations,
        batch_within_s=TAKE_WHAT_IS_READY,
        description="revokes sessions and tokens; the deny-list every gateway reads",
    ),
]

AGENTS += [
    AgentSpec(
        name="auth-device-authorizations",
        group="auth",
        topic=AUTH_DEVICE_AUTHORIZATIONS,
        handler=answer_device_authorizations,
        batch_within_s=TAKE_WHAT_IS_READY,
        description="stores TVs' device codes (RFC 8628), pending approval",
    ),
    AgentSpec(
        name="auth-device-approvals",
        group="auth",
        topic=AUTH_DEVICE_APPROVALS,
        handler=answer_device_approvals,
        batch_within_s=TAKE_WHAT_IS_READY,
        description="approves or denies a TV's user code for the signed-in user",
    ),
]

TIMERS = [
    TimerSpec(name="auth-keys", group="auth", interval_s=60.0, run=publish_keys, at_start=True),
    TimerSpec(
        name="auth-device-code-prune", group="auth", interval_s=3600.0, run=prune_device_codes
    ),
]
