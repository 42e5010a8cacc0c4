"""What every `mgw` command shares: the two consoles and settings that explain a bad variable."""

from __future__ import annotations

import typer
from rich.console import Console

from core.config import ConfigError, Settings, get_settings

out = Console()
err = Console(stderr=True)


def settings_or_exit() -> Settings:
    try:
        return get_settings()
    except ConfigError as exc:
        err.print(f"[red]{exc}[/red]")
        err.print("Fix the variables above (environment or .env) and run the command again.")
        raise typer.Exit(2) from None
