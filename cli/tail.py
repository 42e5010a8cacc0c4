"""`mgw tail TOPIC`: decoded envelopes as they arrive, from now, an offset or a time.

The work is in cli/tailing.py, imported when the command runs (the `mgw` start stays quick).
"""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer
from rich.markup import escape

from cli.console import broker_reached, err, out, settings_or_exit


def tail(
    topic: Annotated[str, typer.Argument(help="A catalog topic (content.raw) or its .dlq.")],
    from_beginning: Annotated[
        bool, typer.Option("--from-beginning", help="Start at the first record kept.")
    ] = False,
    offset: Annotated[
        int | None, typer.Option(min=0, help="Start at this offset in each partition.")
    ] = None,
    since: Annotated[
        str | None, typer.Option(help="Start at a time: 15m, 2h, 1d ago, or ISO 8601.")
    ] = None,
    partition: Annotated[
        list[int] | None, typer.Option(help="Only this partition (repeatable).")
    ] = None,
    key: Annotated[str | None, typer.Option(help="Only records with this key.")] = None,
    event_type: Annotated[
        str | None, typer.Option("--type", help="Only this event type (e.g. content.updated).")
    ] = None,
    fmt: Annotated[
        str | None,
        typer.Option("--format", help="json or pretty [default: pretty on a terminal]."),
    ] = None,
    follow: Annotated[
        bool, typer.Option("--follow/--no-follow", help="Keep waiting for new records.")
    ] = True,
    limit: Annotated[int | None, typer.Option(min=1, help="Stop after this many.")] = None,
) -> None:
    """Print a topic's records as they arrive, decoded and checked against its schema."""
    from cli.records import UnknownTopic
    from cli.tailing import Filters, Start, parse_since, print_json, print_pretty, tail_topic

    chosen = [from_beginning, offset is not None, since is not None]
    if sum(chosen) > 1:
        err.print("[red]choose one of --from-beginning, --offset, --since[/red]")
        raise typer.Exit(2)
    if fmt not in (None, "json", "pretty"):
        err.print(f"[red]--format {fmt!r}: choose json or pretty[/red]")
        raise typer.Exit(2)
    try:
        when = parse_since(since) if since else None
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--since") from None
    pretty = (fmt or ("pretty" if out.is_terminal else "json")) == "pretty"
    emit = print_pretty if pretty else print_json
    s = settings_or_exit()
    try:
        with broker_reached(s.kafka.bootstrap):
            asyncio.run(
                tail_topic(
                    s.kafka.bootstrap,
                    s.kafka.topic_prefix,
                    topic,
                    Start(from_beginning, offset, when),
                    Filters(key, event_type, when),
                    emit,
                    partition,
                    follow,
                    limit,
                    ready=lambda text: err.print(f"[dim]{escape(text)}; Ctrl-C stops[/dim]"),
                )
            )
    except UnknownTopic as exc:
        err.print(f"[red]{escape(str(exc))}[/red]")
        raise typer.Exit(2) from None
    except KeyboardInterrupt:
        pass
