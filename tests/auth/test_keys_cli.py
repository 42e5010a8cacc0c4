"""`mgw keys ...` and `mgw token dev` as an operator runs them: subprocesses on the session's
PostgreSQL and Redis."""

from __future__ import annotations

import json
import os
import subprocess
from typing import Any

import asyncpg
import pytest
import redis.asyncio as aioredis

from core.config import Settings
from gateway.auth.api_keys import ApiKeyRecord, hash_secret, parse_key, redis_key
from gateway.auth.tokens import TokenVerifier
from tests.helpers import run_cli


async def mgw(
    service_env: dict[str, str],
    *args: str,
    extra_env: dict[str, str] | None = None,
    drop: tuple[str, ...] = (),
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **service_env}
    for name in ("AUTH_DEV_MODE", *drop):
        env.pop(name, None)
    env.update(extra_env or {})
    code, out, err = await run_cli(*args, env=env, limit_s=60)
    return subprocess.CompletedProcess(list(args), code, out, err)


async def listed(service_env: dict[str, str]) -> dict[str, dict[str, Any]]:
    result = await mgw(service_env, "keys", "list", "--json")
    assert result.returncode == 0, result.stderr
    rows = [json.loads(line) for line in result.stdout.splitlines() if line.strip()]
    return {row["key_id"]: row for row in rows}


async def test_create_list_revoke(
    service_env: dict[str, str],
    settings: Settings,
    pool: asyncpg.Pool,
    redis_client: aioredis.Redis,
) -> None:
    created = await mgw(
        service_env, "keys", "create", "--name", "cli-producer",
        "--scope", "content:write", "--scope", "content:read", "--tier", "pro",
    )  # fmt: skip
    assert created.returncode == 0, created.stderr
    full_key = created.stdout.strip()
    key_id, secret = parse_key(full_key)
    assert "cannot be shown again" in created.stderr

    # Stored hashed: the secret is nowhere in the row.
    row = await pool.fetchrow("SELECT * FROM api_keys WHERE key_id = $1", key_id)
    assert row["hash"] == hash_secret(secret)
    assert secret not in " ".join(str(v) for v in row.values())
    assert row["scopes"] == ["content:read", "content:write"] and row["tier"] == "pro"

    mirror = await redis_client.get(redis_key(settings.redis.key_prefix, hash_secret(secret)))
    assert ApiKeyRecord.from_json(mirror) == ApiKeyRecord(
        key_id, "cli-producer", ("content:read", "content:write"), "pro"
    )

    entry = (await listed(service_env))[key_id]
    assert entry["name"] == "cli-producer" and entry["revoked_at"] is None
    table = await mgw(service_env, "keys", "list")
    assert key_id in table.stdout and secret not in table.stdout

    revoked = await mgw(service_env, "keys", "revoke", key_id)
    assert revoked.returncode == 0, revoked.stderr
    assert (await listed(service_env))[key_id]["revoked_at"] is not None
    assert await redis_client.get(redis_key(settings.redis.key_prefix, row["hash"])) is None

    unknown = await mgw(service_env, "keys", "revoke", "ffffffffffff")
    assert unknown.returncode == 1 and "no key with id" in unknown.stderr


async def test_sync_restores_live_mirrors_and_drops_stale_ones(
    service_env: dict[str, str], settings: Settings, redis_client: aioredis.Redis
) -> None:
    live = await mgw(
        service_env, "keys", "create", "--name", "cli-live", "--scope", "content:write"
    )
    gone = await mgw(
        service_env, "keys", "create", "--name", "cli-gone", "--scope", "content:write"
    )
    assert live.returncode == gone.returncode == 0
    live_mirror = redis_key(settings.redis.key_prefix, hash_secret(parse_key(live.stdout)[1]))
    gone_id, gone_secret = parse_key(gone.stdout)
    gone_mirror = redis_key(settings.redis.key_prefix, hash_secret(gone_secret))
    assert (await mgw(service_env, "keys", "revoke", gone_id)).returncode == 0

    # What a Redis restart does to the live key, and a mirror nothing backs.
    await redis_client.delete(live_mirror)
    stray = redis_key(settings.redis.key_prefix, "0" * 64)
    await redis_client.set(stray, b'{"key_id": "000000000000", "scopes": ["content:write"]}')
    await redis_client.set(gone_mirror, b'{"key_id": "%s"}' % gone_id.encode())

    synced = await mgw(service_env, "keys", "sync")
    assert synced.returncode == 0, synced.stderr
    assert "removed" in synced.stderr
    assert await redis_client.get(live_mirror) is not None
    assert await redis_client.get(stray) is None
    assert await redis_client.get(gone_mirror) is None


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--scope", "contnet:write"], "unknown scope(s): contnet:write"),
        (["--scope", "content:write", "--tier", "gold"], "unknown tier 'gold'"),
        (["--scope", "content:write", "--tier", "anonymous"], "unknown tier"),
    ],
)
async def test_create_refuses_bad_input(
    service_env: dict[str, str], args: list[str], message: str
) -> None:
    result = await mgw(service_env, "keys", "create", "--name", "bad", *args)
    assert result.returncode == 2
    assert message in result.stderr
    assert result.stdout == ""


async def test_unreachable_database_is_reported(service_env: dict[str, str]) -> None:
    result = await mgw(
        service_env, "keys", "list",
        extra_env={"DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none"},
    )  # fmt: skip
    assert result.returncode == 1
    assert "cannot reach PostgreSQL or Redis" in result.stderr


async def test_dev_token_refused_without_dev_mode(service_env: dict[str, str]) -> None:
    result = await mgw(service_env, "token", "dev", "--user", "alice", "--scope", "watchlist:write")
    assert result.returncode == 2
    assert "AUTH_DEV_MODE=true" in result.stderr
    assert result.stdout == ""


async def test_dev_token_in_dev_mode_is_accepted_by_the_gateway_verifier(
    service_env: dict[str, str], settings: Settings
) -> None:
    result = await mgw(
        service_env, "token", "dev", "--user", "alice", "--scope", "watchlist:write",
        "--tier", "pro", "--ttl", "120",
        extra_env={"AUTH_DEV_MODE": "true"},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    principal = TokenVerifier.from_settings(settings.auth).verify(result.stdout.strip())
    assert principal.subject == "alice" and principal.scopes == {"watchlist:write"}
    assert str(principal.tier) == "pro"


async def test_dev_token_without_a_signing_key(service_env: dict[str, str]) -> None:
    result = await mgw(
        service_env, "token", "dev", "--user", "alice", "--scope", "watchlist:read",
        extra_env={"AUTH_DEV_MODE": "true"}, drop=("AUTH_JWT_SECRET", "AUTH_JWT_PRIVATE_KEY"),
    )  # fmt: skip
    assert result.returncode == 2
    assert "AUTH_JWT_SECRET or AUTH_JWT_PRIVATE_KEY: set one to sign tokens" in result.stderr


async def test_dev_token_with_an_unknown_scope_is_refused(service_env: dict[str, str]) -> None:
    # Found by hand: `mgw keys create` refused a typo in a scope, `mgw token dev` signed it.
    result = await mgw(
        service_env, "token", "dev", "--user", "alice", "--scope", "watchlist:wirte",
        extra_env={"AUTH_DEV_MODE": "true"},
    )  # fmt: skip
    assert result.returncode == 2
    assert "unknown scope(s): watchlist:wirte" in result.stderr
    assert result.stdout == ""
