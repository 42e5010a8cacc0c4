"""`mgw auth rotate-key`: a new signing key for the built-in token service (docs/AUTH.md).

Like `mgw keys`, it needs PostgreSQL and Redis: the key is stored by the auth agents' table
and published where every gateway reads it. The retired key keeps verifying until the last
token it signed has expired.
"""

from __future__ import annotations

import asyncio

import typer

from cli.console import err, out, settings_or_exit

auth_app = typer.Typer(help="The built-in token service's signing keys.", no_args_is_help=True)


@auth_app.command("rotate-key")
def rotate_key() -> None:
    """Make a new signing key active; the old one verifies until its last token expires."""
    import redis.asyncio as aioredis
    from redis.exceptions import RedisError

    from agents.auth.handlers import rotate_signing_key
    from agents.framework.db import create_pool

    settings = settings_or_exit()

    async def run() -> tuple[str, object]:
        pool = await create_pool(settings.postgres)
        redis = aioredis.from_url(settings.redis.require_url())
        try:
            return await rotate_signing_key(pool, redis, settings.redis.key_prefix, settings.auth)
        finally:
            await redis.aclose()
            await pool.close()

    try:
        kid, until = asyncio.run(run())
    except (OSError, RedisError) as exc:
        err.print(f"[red]cannot reach PostgreSQL or Redis: {exc}[/red]")
        raise typer.Exit(1) from None
    out.print(kid)
    err.print(f"new signing key {kid} active; the previous one verifies until {until}")
