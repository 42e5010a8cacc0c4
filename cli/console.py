"""What every `mgw` command shares: the two consoles and settings that explain a bad variable."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager

import typer
from rich.console import Console
from rich.markup import escape

from core.config import ConfigError, Settings, get_settings

# Wide enough that no table is ever cut; Rich tables still take only their natural width.
PIPED_WIDTH = 10_000


def console_for(stderr: bool = False) -> Console:
    """A console on stdout (or stderr): a terminal's width when it is one; when piped, no line
    is cut or wrapped at 80 columns (a program or a file reads it, not a screen)."""
    tty = (sys.stderr if stderr else sys.stdout).isatty()
    return Console(stderr=stderr, width=None if tty else PIPED_WIDTH, soft_wrap=not tty)


out = console_for()
err = console_for(stderr=True)


def settings_or_exit() -> Settings:
    try:
        return get_settings()
    except ConfigError as exc:
        err.print(f"[red]{exc}[/red]")
        err.print("Fix the variables above (environment or .env) and run the command again.")
        raise typer.Exit(2) from None


def failure_text(exc: BaseException) -> str:
    """An exception as one line: its kind and message; its kind alone when it has none (a
    timeout says nothing else)."""
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


@contextmanager
def broker_reached(bootstrap: str) -> Iterator[None]:
    """A broker that does not answer ends the command with a sentence and exit 1, not a
    traceback: for the commands that read or write topics (`mgw tail`, `mgw dlq`)."""
    from core.kafka import KafkaError

    try:
        yield
    except KafkaError as exc:
        err.print(
            f"[red]cannot reach the broker at {escape(bootstrap)}: {escape(failure_text(exc))}"
            "[/red] (is it running? check KAFKA_BROKERS; `mgw stack` shows a local stack's)"
        )
        raise typer.Exit(1) from None
