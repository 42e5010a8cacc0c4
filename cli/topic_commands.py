"""`mgw topics contracts | release | plan`: the published topic contracts and the broker plan."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from cli.console import err, failure_text, out, settings_or_exit
from topics.consumers import Consumer


def consumer_index() -> dict[str, list[Consumer]]:
    """Who consumes each topic, from the agents' own declarations (agents/groups.py)."""
    from agents.groups import ALL_AGENTS

    index: dict[str, list[Consumer]] = {}
    for spec in ALL_AGENTS:
        index.setdefault(spec.topic.name, []).append(
            Consumer(spec.group, spec.name, spec.description)
        )
    return index


def contracts(
    out_dir: Annotated[Path, typer.Argument(file_okay=False, help="Where to write them.")],
    prefix: Annotated[
        str | None, typer.Option(help="Topic prefix [default: KAFKA_TOPIC_PREFIX].")
    ] = None,
    bootstrap: Annotated[
        str | None, typer.Option(help="Broker address for the document [default: KAFKA_BROKERS].")
    ] = None,
) -> None:
    """Write the AsyncAPI 3 document, a JSON Schema per topic version and a readable page."""
    from gateway.realtime.socket_asyncapi import with_device_socket
    from topics.published import write_contracts

    if prefix is None or bootstrap is None:
        kafka = settings_or_exit().kafka
        prefix = kafka.topic_prefix if prefix is None else prefix
        bootstrap = kafka.bootstrap if bootstrap is None else bootstrap
    try:
        written = write_contracts(out_dir, consumer_index(), prefix, bootstrap, with_device_socket)
    except OSError as exc:
        err.print(
            f"[red]cannot write into {escape(str(out_dir))}: {escape(failure_text(exc))}[/red] "
            "(name a directory you may write to; it is created when missing)"
        )
        raise typer.Exit(2) from None
    schemas = sum(1 for p in written if p.suffix == ".json" and p.name != "asyncapi.json")
    out.print(
        f"{len(written)} files in {out_dir}: asyncapi.json, index.html, TOPICS.md and "
        f"{schemas} JSON Schemas (schemas/TOPIC/vN.json)"
    )


def release(
    check: Annotated[
        bool, typer.Option("--check", help="Only report; exit 1 when anything is out of step.")
    ] = False,
) -> None:
    """Record the schemas of the code as released (topics/released/), with the consumer
    index and docs/TOPICS.md; refuses, writing nothing, when a change is breaking."""
    from topics.compatibility import RELEASED_ROOT
    from topics.published import in_step, release_all

    index = consumer_index()
    if check:
        state = in_step(RELEASED_ROOT, index)
        for problem in state.problems:
            (err.print if problem.breaking else out.print)(f"- {problem}")
        for path in state.stale:
            out.print(f"- {path}: differs from a fresh generation")
        if not state.ok:
            raise typer.Exit(1)
        out.print("contracts in step with the code")
        return
    written, breaking = release_all(RELEASED_ROOT, index)
    if breaking:
        err.print("[red]nothing written: breaking change(s) under BACKWARD_TRANSITIVE[/red]")
        for problem in breaking:
            err.print(f"- {problem}")
        err.print("The rule and what to do instead: docs/TOPICS.md, 'Versions'.")
        raise typer.Exit(1)
    for path in written:
        out.print(f"written {path}")
    out.print(f"{len(written)} file(s) written" if written else "already in step")


def plan_command(
    apply: Annotated[
        bool, typer.Option("--apply", help="Carry out the steps the broker supports.")
    ] = False,
) -> None:
    """Compare the catalog with the broker: topics to create, partitions to add, config drift."""
    from topics.plan import apply as apply_plan
    from topics.plan import broker_state, plan
    from topics.registry import all_topics

    s = settings_or_exit()
    kafka = s.kafka
    try:
        broker = asyncio.run(broker_state(kafka.bootstrap, kafka.topic_prefix))
    except Exception as exc:
        err.print(f"[red]cannot reach the broker at {kafka.bootstrap}: {exc}[/red]")
        raise typer.Exit(1) from None
    actions = plan(all_topics(), kafka.topic_prefix, broker, kafka.topic_partitions_max)
    if not actions:
        out.print(f"the broker at {kafka.bootstrap} matches the catalog: nothing to do")
        return
    table = Table("topic", "step", "detail", title=f"plan for {kafka.bootstrap}")
    for action in actions:
        table.add_row(action.topic, action.kind, action.detail)
    out.print(table)
    if not apply:
        if any(a.applicable for a in actions):
            out.print("Run again with --apply to carry out create/add_partitions/set_config.")
        raise typer.Exit(1 if any(a.kind == "cannot" for a in actions) else 0)
    outcomes = asyncio.run(apply_plan(kafka.bootstrap, actions, broker, kafka.replication_factor))
    failed = 0
    for outcome in outcomes:
        action = outcome.action
        if outcome.applied:
            out.print(f"[green]done[/green] {action.kind} {action.topic} {outcome.error}".rstrip())
        else:
            failed += 1
            err.print(f"[red]not applied[/red] {action.kind} {action.topic}: {outcome.error}")
    manual = [a for a in actions if a.kind == "cannot"]
    for action in manual:
        err.print(f"[yellow]by hand[/yellow] {action.topic}: {action.detail}")
    if failed or manual:
        raise typer.Exit(1)


def register(topics_app: typer.Typer) -> None:
    topics_app.command("contracts")(contracts)
    topics_app.command("release")(release)
    topics_app.command("plan")(plan_command)
