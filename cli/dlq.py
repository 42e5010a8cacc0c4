"""`mgw dlq list | show | replay`: dead-lettered records, why, and back onto their topic.

The work is in cli/dead_letters.py, imported when a command runs (the `mgw` start stays quick).
"""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import TYPE_CHECKING, Annotated

import orjson
import typer
from rich.markup import escape
from rich.table import Table

from cli.console import broker_reached, err, out, settings_or_exit

if TYPE_CHECKING:
    from cli.dead_letters import DeadLetterRecord
    from topics.registry import TopicSpec

dlq_app = typer.Typer(help="Dead-lettered records: list, show, replay.", no_args_is_help=True)


def _refs(refs: list[str]) -> set[tuple[int | None, int]]:
    from cli.dead_letters import parse_refs

    try:
        return parse_refs(refs)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None


# -- commands -------------------------------------------------------------------------------


# Why an agent sets a record aside: the `dlq.reason` header (docs/TOPICS.md).
REASONS = ("undecodable", "invalid", "processing_failed")


def _known_reason(reason: str | None) -> None:
    """A --reason no dead letter can carry is a typo: said, not answered "nothing matches"."""
    if reason is not None and reason not in REASONS:
        err.print(
            f"[red]unknown reason {escape(reason)!r}; the reasons: {', '.join(REASONS)}[/red]"
        )
        raise typer.Exit(2)


def _settings_and_names(topic: str) -> tuple[str, str, TopicSpec, str]:
    from cli.dead_letters import topics_for
    from cli.records import UnknownTopic

    s = settings_or_exit()
    try:
        spec, _, _, dlq_topic = topics_for(topic, s.kafka.topic_prefix)
    except UnknownTopic as exc:
        err.print(f"[red]{escape(str(exc))}[/red]")
        raise typer.Exit(2) from None
    return s.kafka.bootstrap, s.kafka.topic_prefix, spec, dlq_topic


def _read(bootstrap: str, dlq_topic: str) -> list[DeadLetterRecord]:
    from cli.dead_letters import read_dead_letters
    from cli.records import UnknownTopic

    try:
        with broker_reached(bootstrap):
            return asyncio.run(read_dead_letters(bootstrap, dlq_topic))
    except UnknownTopic as exc:
        err.print(f"[red]{escape(str(exc))}[/red]")
        raise typer.Exit(1) from None


@dlq_app.command("list")
def list_command(
    topic: Annotated[str, typer.Argument(help="The original topic (content.raw) or its .dlq.")],
    reason: Annotated[
        str | None,
        typer.Option(help="Only this reason: undecodable, invalid, processing_failed."),
    ] = None,
    limit: Annotated[int, typer.Option(min=1, help="Show the newest N.")] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="JSON lines instead of a table.")] = False,
) -> None:
    """The dead letters of a topic, newest last, with their reasons and a count by reason."""
    _known_reason(reason)
    bootstrap, _, _, dlq_topic = _settings_and_names(topic)
    letters = _read(bootstrap, dlq_topic)
    counts = Counter(letter.reason for letter in letters)
    if reason is not None:
        letters = [le for le in letters if le.reason == reason]
    shown_letters = letters[-limit:]
    if as_json:
        for le in shown_letters:
            out.print_json(
                data={
                    "ref": le.ref,
                    "time": le.timestamp.isoformat(),
                    "key": (le.key or b"").decode("utf-8", errors="replace"),
                    **{k: le.header(k) for k, _ in le.headers if k.startswith("dlq.")},
                },
                indent=None,
            )
        return
    if not letters:
        out.print(f"no dead letters on {dlq_topic}" + (f" with reason {reason}" if reason else ""))
        return
    table = Table("ref", "set aside", "reason", "agent", "from", "key", "error", title=dlq_topic)
    for le in shown_letters:
        table.add_row(
            le.ref,
            le.header("dlq.failed_at")[:19] or le.timestamp.isoformat()[:19],
            le.reason,
            le.header("dlq.agent"),
            f"{le.header('dlq.original_partition')}@{le.header('dlq.original_offset')}",
            escape((le.key or b"").decode("utf-8", errors="replace")),
            escape(le.header("dlq.error")[:120]),
        )
    out.print(table)
    summary = ", ".join(f"{name}: {count}" for name, count in sorted(counts.items()))
    out.print(f"{sum(counts.values())} dead letter(s) ({summary}); showing {len(shown_letters)}")


@dlq_app.command("show")
def show_command(
    topic: Annotated[str, typer.Argument(help="The original topic (content.raw) or its .dlq.")],
    ref: Annotated[str, typer.Argument(help="OFFSET or PARTITION:OFFSET in the .dlq topic.")],
) -> None:
    """One dead letter: every header, the value, and whether it would pass today."""
    from cli.dead_letters import chosen
    from cli.records import validation_error

    bootstrap, _, spec, dlq_topic = _settings_and_names(topic)
    refs = _refs([ref])
    found = chosen(_read(bootstrap, dlq_topic), refs, False, None)
    if not found:
        err.print(
            f"[red]no dead letter {escape(ref)} on {dlq_topic}; `mgw dlq list "
            f"{escape(spec.name)}` lists the ones it keeps, with their refs[/red]"
        )
        raise typer.Exit(1)
    letter = found[0]
    table = Table("header", "value", title=f"{dlq_topic} {letter.ref}")
    for key, value in letter.headers:
        table.add_row(key, escape(value.decode("utf-8", errors="replace")))
    out.print(table)
    out.print(f"key: {escape((letter.key or b'').decode('utf-8', errors='replace'))}")
    try:
        out.print_json(data=orjson.loads(letter.value))
    except orjson.JSONDecodeError:
        out.print(escape(letter.value.decode("utf-8", errors="replace")[:5000]))
    error = validation_error(spec, letter.value)
    if error is None:
        out.print(f"[green]valid for {spec.name} today[/green]: `mgw dlq replay` would send it")
    else:
        out.print(f"[yellow]still invalid for {spec.name}[/yellow]: {escape(error)}")


@dlq_app.command("replay")
def replay_command(
    topic: Annotated[str, typer.Argument(help="The original topic (content.raw) or its .dlq.")],
    refs: Annotated[
        list[str] | None, typer.Argument(help="Dead letters to replay: OFFSET or PARTITION:OFFSET.")
    ] = None,
    every: Annotated[bool, typer.Option("--all", help="Every dead letter of the topic.")] = False,
    reason: Annotated[str | None, typer.Option(help="Only dead letters with this reason.")] = None,
    merge: Annotated[
        str | None, typer.Option(help="A JSON merge patch (RFC 7386) applied to each record.")
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Send records that are still invalid too.")
    ] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Only say what would be sent.")
    ] = False,
) -> None:
    """Put chosen dead letters back on their topic (after a fix), each checked first."""
    from cli.dead_letters import replay
    from cli.records import UnknownTopic

    if not refs and not every and reason is None:
        err.print("[red]choose what to replay: OFFSET..., --all or --reason[/red]")
        raise typer.Exit(2)
    _known_reason(reason)
    patch = None
    if merge is not None:
        try:
            patch = orjson.loads(merge)
        except orjson.JSONDecodeError as exc:
            err.print(f"[red]--merge is not JSON: {exc}[/red]")
            raise typer.Exit(2) from None
        if not isinstance(patch, dict):
            err.print(
                "[red]--merge must be a JSON object (a merge patch of the record's fields, "
                'RFC 7386), e.g. \'{"title": "Heat"}\'[/red]'
            )
            raise typer.Exit(2)
    bootstrap, prefix, _, _ = _settings_and_names(topic)
    try:
        with broker_reached(bootstrap):
            results = asyncio.run(
                replay(
                    bootstrap,
                    prefix,
                    topic,
                    _refs(refs or []),
                    every,
                    reason,
                    patch,
                    force,
                    dry_run,
                )
            )
    except UnknownTopic as exc:
        err.print(f"[red]{escape(str(exc))}[/red]")
        raise typer.Exit(1) from None
    for result in results:
        colour = {"replayed": "green", "would replay": "cyan"}.get(result.status, "yellow")
        out.print(
            f"[{colour}]{result.status}[/{colour}] {result.ref} "
            f"({result.reason}): {escape(result.detail)}"
        )
    if not results:
        err.print(
            f"[red]no dead letter of {escape(topic)} matches: nothing replayed (`mgw dlq list "
            f"{escape(topic)}` lists the ones it keeps)[/red]"
        )
        raise typer.Exit(1)
    done = sum(r.status in ("replayed", "would replay") for r in results)
    out.print(f"{done} of {len(results)} {'would be ' if dry_run else ''}replayed")
    # Anything not replayed (refused, not found) is something asked for and not done.
    if done < len(results):
        raise typer.Exit(1)
