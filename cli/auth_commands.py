"""`mgw keys ...` (API keys of machine clients) and `mgw token dev` (signed tokens for development).

Key text and tokens go to stdout alone, everything else to stderr, so `KEY=$(mgw keys create ...)`
captures just the key.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Annotated, TypeVar

import typer
from rich.markup import escape
from rich.table import Table

from cli.console import err, failure_text, out, settings_or_exit
from core.config import ConfigError, Settings
from gateway.auth.principal import GRANTABLE_TIERS, SCOPES, Tier

keys_app = typer.Typer(help="API keys of machine clients (stored hashed).", no_args_is_help=True)
token_app = typer.Typer(help="Signed JWTs for development.", no_args_is_help=True)

T = TypeVar("T")

DEV_KEY_NAME = "mgw up dev key"
DEV_KEY_SCOPES = ("content:write", "ingest:write")

ScopeOption = Annotated[
    list[str],
    typer.Option("--scope", help=f"A scope to grant (repeat). Known: {', '.join(SCOPES)}."),
]
TierOption = Annotated[
    str, typer.Option(help=f"Rate-limit tier: {', '.join(sorted(GRANTABLE_TIERS))}.")
]


def _check_tier(tier: str) -> None:
    if tier not in GRANTABLE_TIERS:
        err.print(f"[red]unknown tier {tier!r}; use one of {sorted(GRANTABLE_TIERS)}[/red]")
        raise typer.Exit(2)


def _with_store(settings: Settings, action: Callable[..., Awaitable[T]]) -> T:
    """Run `action(store)` against PostgreSQL and Redis; exit 1 with the reason if unreachable."""
    from redis.exceptions import RedisError

    from gateway.auth.key_store import KeyStore

    async def run() -> T:
        async with KeyStore.open(settings) as store:
            return await action(store)

    try:
        return asyncio.run(run())
    except ConfigError as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None
    except (OSError, RedisError) as exc:
        err.print(
            f"[red]cannot reach PostgreSQL or Redis: {escape(failure_text(exc))}[/red] (check "
            "DATABASE_URL and REDIS_URL)"
        )
        raise typer.Exit(1) from None


def _check_scopes(scopes: list[str]) -> None:
    """A typo in a scope refused here, not found later as a 403 (keys and dev tokens alike)."""
    from gateway.auth.api_keys import check_scopes

    unknown = check_scopes(scopes, SCOPES)
    if unknown:
        err.print(f"[red]unknown scope(s): {', '.join(unknown)}[/red]; known: {', '.join(SCOPES)}")
        raise typer.Exit(2)


@keys_app.command("create")
def keys_create(
    name: Annotated[str, typer.Option(help="Who uses the key (e.g. netflix-ingestion).")],
    scope: ScopeOption,
    tier: TierOption = Tier.free.value,
) -> None:
    """Create a key; it is printed once and cannot be shown again."""
    _check_tier(tier)
    _check_scopes(scope)
    if not 1 <= len(name) <= 200:
        err.print("[red]--name must have 1 to 200 characters[/red]")
        raise typer.Exit(2)
    stored, full_key = _with_store(
        settings_or_exit(), lambda store: store.create(name, scope, tier)
    )
    err.print(
        f"created key [bold]{stored.key_id}[/bold] ({stored.name}; "
        f"scopes: {' '.join(stored.scopes)}; tier: {stored.tier})."
    )
    err.print("[yellow]Store it now: only its hash is kept, it cannot be shown again.[/yellow]")
    print(full_key)


@keys_app.command("list")
def keys_list(
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
) -> None:
    """Every key with its scopes, tier and revocation time (never the key itself)."""
    keys = _with_store(settings_or_exit(), lambda store: store.list_keys())
    if as_json:
        for k in keys:
            print(
                json.dumps(
                    {
                        "key_id": k.key_id,
                        "name": k.name,
                        "scopes": list(k.scopes),
                        "tier": str(k.tier),
                        "created_at": k.created_at.isoformat(),
                        "revoked_at": k.revoked_at.isoformat() if k.revoked_at else None,
                    }
                )
            )
        return
    table = Table()
    # The id is what `revoke` takes: a narrow terminal must not truncate it.
    table.add_column("id", no_wrap=True, min_width=12)
    for column in ("name", "scopes", "tier", "created", "revoked"):
        table.add_column(column, overflow="fold")
    for k in keys:
        table.add_row(
            k.key_id,
            k.name,
            " ".join(k.scopes),
            str(k.tier),
            k.created_at.strftime("%Y-%m-%d %H:%M:%S"),
            k.revoked_at.strftime("%Y-%m-%d %H:%M:%S") if k.revoked_at else "-",
        )
    out.print(table)


@keys_app.command("revoke")
def keys_revoke(
    key_id: Annotated[str, typer.Argument(help="The key's id (see `mgw keys list`).")],
) -> None:
    """Revoke a key: the gateway refuses it from the next request on."""
    stored = _with_store(settings_or_exit(), lambda store: store.revoke(key_id))
    if stored is None:
        err.print(f"[red]no key with id {key_id!r}[/red]")
        raise typer.Exit(1)
    err.print(
        f"revoked key {stored.key_id} ({stored.name}) at {stored.revoked_at:%Y-%m-%d %H:%M:%S}"
    )


@keys_app.command("sync")
def keys_sync() -> None:
    """Copy every live key into Redis again (after a Redis restart: Redis keeps nothing on disk)."""
    result = _with_store(settings_or_exit(), lambda store: store.sync())
    err.print(f"mirrored {result.mirrored} live key(s); removed {result.removed} stale mirror(s)")


@token_app.command("dev")
def token_dev(
    user: Annotated[str, typer.Option(help="The user id (the token's sub).")],
    scope: ScopeOption,
    role: Annotated[list[str] | None, typer.Option("--role", help="A role (repeat).")] = None,
    tier: TierOption = Tier.free.value,
    ttl: Annotated[
        int | None, typer.Option(help="Lifetime in seconds (AUTH_ACCESS_TTL_S).")
    ] = None,
) -> None:
    """Print a signed access token. Only with AUTH_DEV_MODE=true: production tokens come from
    the identity provider."""
    from gateway.auth.tokens import issue_token

    settings = settings_or_exit()
    if not settings.auth.dev_mode:
        err.print(
            "[red]refused: `mgw token dev` needs AUTH_DEV_MODE=true[/red] (development "
            "only; `mgw up` sets it for its own processes and prints the export line)"
        )
        raise typer.Exit(2)
    _check_tier(tier)
    _check_scopes(scope)
    if ttl is not None and ttl < 1:
        err.print("[red]--ttl must be at least 1 second[/red]")
        raise typer.Exit(2)
    try:
        token = issue_token(
            settings.auth, subject=user, scopes=scope, roles=role or [], tier=tier, ttl_s=ttl
        )
    except ConfigError as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None
    print(token)


def create_dev_key(settings: Settings) -> str:
    """For `mgw up`: re-mirror live keys, retire the previous dev key, return a fresh one.

    Raises what the stores raise (OSError, RedisError, ConfigError); the caller reports it.
    """
    from gateway.auth.key_store import KeyStore

    async def run() -> str:
        async with KeyStore.open(settings) as store:
            await store.sync()
            for key in await store.list_keys(include_revoked=False):
                if key.name == DEV_KEY_NAME:
                    await store.revoke(key.key_id)
            _, full_key = await store.create(DEV_KEY_NAME, DEV_KEY_SCOPES, Tier.free)
            return full_key

    return asyncio.run(run())
