"""`mgw`: run the stack, a worker group or the gateway; manage topics and the database."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from cli.auth_commands import keys_app, token_app
from cli.auth_service_commands import auth_app
from cli.console import err, failure_text, out, settings_or_exit
from cli.dlq import dlq_app
from cli.k8s_manifests import ops_app
from cli.tail import tail
from cli.topic_commands import register as register_topic_commands
from core.config import ConfigError

app = typer.Typer(
    help="Media Gateway: event-driven back end for a streaming guide.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
topics_app = typer.Typer(help="The topic catalog against the broker.", no_args_is_help=True)
db_app = typer.Typer(help="The PostgreSQL schema.", no_args_is_help=True)
app.add_typer(topics_app, name="topics")
app.add_typer(db_app, name="db")
readmodel_app = typer.Typer(help="The Redis read models.", no_args_is_help=True)
app.add_typer(readmodel_app, name="readmodel")
bench_app = typer.Typer(help="Benchmarks that print figures.", no_args_is_help=True)
app.add_typer(bench_app, name="bench")
app.add_typer(keys_app, name="keys")
app.add_typer(token_app, name="token")
app.add_typer(auth_app, name="auth")
register_topic_commands(topics_app)
app.add_typer(dlq_app, name="dlq")
app.add_typer(ops_app, name="ops")
app.command("tail")(tail)


@app.callback()
def _find_running_stack(ctx: typer.Context) -> None:
    # Every command but `up` reaches the stack `mgw up` runs, unless a variable says otherwise.
    if ctx.invoked_subcommand != "up":
        from core.stack_file import apply_running_stack

        apply_running_stack()
    _log_for_people()


def _log_for_people() -> None:
    """A tool's log lines, readable, at LOG_LEVEL (info by default): without this loguru would
    print its debug lines, and the values of a traceback's variables. `up`, `worker` and
    `gateway` configure their own logging when they start."""
    from pydantic import ValidationError

    from core.config import LogSettings
    from core.observability.logging import init_logging

    try:
        level = LogSettings().level
    except ValidationError:
        level = LogSettings.model_fields["level"].default  # the command reports the bad setting
    # httpx logs each request at info: a tool's own requests are not news to its user.
    quiet = "" if "httpx=" in level else ",httpx=warning"
    init_logging(level + quiet, "pretty", process="mgw")


@app.command()
def stack(
    key: Annotated[bool, typer.Option("--key", help="Print only the dev API key.")] = False,
) -> None:
    """Where the stack of `mgw up` listens, as every `mgw` command here finds it."""
    from core.stack_file import DEV_KEY_VARIABLE, PID_VARIABLE, running_stack, stack_file

    values = running_stack()
    if not values:
        path = stack_file()
        if path is None:
            err.print("[red]MGW_STACK_FILE is empty or none: no stack file is read[/red]")
            err.print("Unset it (or name the stack.env of a running `mgw up`).")
            raise typer.Exit(1)
        err.print(f"[red]no running stack recorded in {escape(str(path))}[/red]")
        err.print("Start one with `make up` (or `mgw up`) in this directory.")
        raise typer.Exit(1)
    if key:
        if DEV_KEY_VARIABLE not in values:
            err.print("[red]the running stack has no dev API key; see its banner[/red]")
            raise typer.Exit(1)
        out.print(values[DEV_KEY_VARIABLE], soft_wrap=True)
        return
    table = Table("variable", "value", title=f"mgw up, pid {values[PID_VARIABLE]}")
    for name, value in values.items():
        if name != PID_VARIABLE:
            shown = "(set; `mgw stack --key`)" if name == DEV_KEY_VARIABLE else value
            table.add_row(name, "(set)" if name == "AUTH_JWT_SECRET" else shown)
    out.print(table)


@app.command()
def up(
    data_dir: Annotated[
        str, typer.Option(help="Where embedded PostgreSQL and Qdrant keep their data.")
    ] = ".mgw",
    gateway_port: Annotated[int, typer.Option(help="Gateway HTTP port.")] = 8080,
    durable: Annotated[
        bool,
        typer.Option(
            help="Keep the embedded broker's events and offsets on disk (an S3 object store "
            "under --data-dir), across its death and restarts of the stack."
        ),
    ] = False,
) -> None:
    """Run the whole stack on this machine: broker, databases, topics, workers and gateway."""
    from cli.up import run_stack

    sys.exit(run_stack(data_dir=data_dir, gateway_port=gateway_port, durable=durable))


@app.command()
def worker(
    groups: Annotated[
        list[str], typer.Argument(help="Worker groups to run (e.g. ingestion), or 'all'.")
    ],
) -> None:
    """Run the agents of one or more worker groups (each group is its own consumer group)."""
    from agents.framework.kafka.worker import run_worker
    from agents.groups import agents_for, broadcasts_for, timers_for

    settings = settings_or_exit()
    try:
        specs = agents_for(groups)
    except KeyError as exc:
        err.print(f"[red]{exc.args[0]}[/red]")
        raise typer.Exit(2) from None
    run_worker(settings, groups, specs, timers_for(groups), broadcasts_for(groups))


@app.command()
def gateway(
    workers: Annotated[
        int | None,
        typer.Option(min=1, help="Processes serving the port [default: GATEWAY_WORKERS or cores]."),
    ] = None,
) -> None:
    """Run the HTTP gateway."""
    from gateway.server import run_gateway

    run_gateway(settings_or_exit(), workers)


@app.command()
def mcp() -> None:
    """The MCP server on stdio, for desktop assistants (MCP_TOKEN: the user's token).

    docs/MCP.md. The gateway serves the same server at /mcp over HTTP."""
    from assistant.stdio import run_stdio

    settings = settings_or_exit()
    if settings.mcp.token is None:
        err.print("[red]MCP_TOKEN: the user's bearer token is required[/red]")
        raise typer.Exit(2)
    asyncio.run(run_stdio(settings, settings.mcp.token.get_secret_value()))


@topics_app.command("create")
def topics_create() -> None:
    """Create every catalog topic that the broker lacks; existing ones are left alone."""
    from topics.admin import create_topics

    s = settings_or_exit()
    try:
        states = asyncio.run(
            create_topics(
                s.kafka.bootstrap,
                s.kafka.topic_prefix,
                s.kafka.replication_factor,
                partitions_max=s.kafka.topic_partitions_max,
            )
        )
    except Exception as exc:
        err.print(f"[red]cannot create topics on {s.kafka.bootstrap}: {exc}[/red]")
        err.print("Is the broker running? Check KAFKA_BROKERS.")
        raise typer.Exit(1) from None
    table = Table("topic", "result", "partitions")
    for st in states:
        table.add_row(st.name, st.status, str(st.broker_partitions))
    out.print(table)


@topics_app.command("list")
def topics_list() -> None:
    """Show the catalog and what the broker has of it."""
    from topics.admin import describe_topics

    s = settings_or_exit()
    try:
        states = asyncio.run(
            describe_topics(
                s.kafka.bootstrap, s.kafka.topic_prefix, partitions_max=s.kafka.topic_partitions_max
            )
        )
    except Exception as exc:
        err.print(f"[red]cannot reach the broker at {s.kafka.bootstrap}: {exc}[/red]")
        raise typer.Exit(1) from None
    table = Table("topic", "key", "payload", "cleanup", "declared", "broker", "status")
    for st in states:
        spec = st.spec
        table.add_row(
            st.name,
            spec.key,
            spec.payload.__name__ if spec.payload else "raw bytes",
            spec.cleanup_policy,
            str(st.declared_partitions),
            "-" if st.broker_partitions is None else str(st.broker_partitions),
            st.status,
        )
    out.print(table)


@db_app.command("migrate")
def db_migrate() -> None:
    """Apply every migration not yet applied (safe to run again)."""
    from agents.framework.migrate import MigrationError, migrate_url

    s = settings_or_exit()
    try:
        results = asyncio.run(migrate_url(s.postgres.require_url()))
    except ConfigError as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None
    except MigrationError as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from None
    except OSError as exc:
        err.print(f"[red]cannot reach PostgreSQL: {exc}[/red] (check DATABASE_URL)")
        raise typer.Exit(1) from None
    for r in results:
        out.print(f"{r.version:04d}_{r.name}: {r.status}")


@app.command()
def ingest(
    file: Annotated[
        Path, typer.Argument(exists=True, dir_okay=False, help="JSON lines, one item each.")
    ],
    batch: Annotated[int, typer.Option(min=1, max=1000, help="Items per publish round.")] = 500,
    strict: Annotated[
        bool, typer.Option("--strict", help="Exit 1 when any line is rejected, not only all.")
    ] = False,
) -> None:
    """Validate and publish a catalog file to the raw topic, with a per-item summary.

    Exits 1 when no line was accepted (or, with --strict, when any was rejected)."""
    from cli.ingest import ingest_file
    from core.publisher import BrokerUnavailable

    settings = settings_or_exit()
    try:
        accepted, rejected = asyncio.run(ingest_file(settings, file, batch))
    except BrokerUnavailable as exc:
        err.print(f"[red]{exc}[/red]")
        err.print(
            "Nothing after the last progress update was accepted; check KAFKA_BROKERS and rerun."
        )
        raise typer.Exit(1) from None
    if not accepted:
        err.print(f"[red]nothing of {file} was accepted: fix the lines above and rerun[/red]")
        raise typer.Exit(1)
    if strict and rejected:
        err.print(f"[red]{rejected} line(s) rejected (--strict)[/red]")
        raise typer.Exit(1)


@app.command("ingest-report")
def ingest_report(
    platform: Annotated[
        str | None,
        typer.Option(help="Only items of this platform, named as in a feed (Max, prime, Disney+)."),
    ] = None,
    kind: Annotated[
        str | None, typer.Option(help="Only this kind of warning (e.g. unknown_genre).")
    ] = None,
    limit: Annotated[int, typer.Option(min=1, help="Items to list.")] = 50,
) -> None:
    """What normalization dropped or changed of the stored catalog items, by kind and item."""
    import asyncpg

    from cli.ingest import ReportFilterError, warnings_report

    settings = settings_or_exit()
    try:
        asyncio.run(warnings_report(settings, platform, kind, limit))
    except ReportFilterError as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None
    except (OSError, asyncpg.PostgresConnectionError, asyncpg.InterfaceError) as exc:
        err.print(
            f"[red]cannot reach PostgreSQL: {escape(failure_text(exc))}[/red] (check "
            "DATABASE_URL; `mgw stack` shows a local stack's)"
        )
        raise typer.Exit(1) from None


@app.command("sample-catalog")
def sample_catalog(
    out_file: Annotated[Path, typer.Argument(dir_okay=False, help="Where to write JSON lines.")],
    titles: Annotated[
        int, typer.Option(min=0, help="Distinct titles (each on 1-3 platforms).")
    ] = 2000,
    seed: Annotated[int, typer.Option(help="Same seed, same file.")] = 7,
    invalid: Annotated[float, typer.Option(min=0, max=1, help="Fraction of broken items.")] = 0.01,
    episodes: Annotated[
        float,
        typer.Option(
            min=0, max=1, help="Share of the series given seasons, episodes and season listings."
        ),
    ] = 0.2,
) -> None:
    """Write a messy multi-platform catalog file for demos, tests and benchmarks."""
    from cli.ingest import write_sample

    try:
        count, tv = write_sample(out_file, titles, seed, invalid, episodes)
    except OSError as exc:
        err.print(
            f"[red]cannot write {escape(str(out_file))}: {escape(exc.strerror or str(exc))}; "
            "name a file in a directory that exists and that you may write to[/red]"
        )
        raise typer.Exit(2) from None
    out.print(
        f"{count} items for {titles} titles written to {out_file} "
        f"({tv['episode']} episode listings, {tv['season']} season listings)"
    )


@db_app.command("reindex-search")
def db_reindex_search() -> None:
    """Derive the search's vocabulary, typo variants and credits index again from every title."""
    import asyncpg

    s = settings_or_exit()

    async def rebuild() -> int:
        conn = await asyncpg.connect(s.postgres.require_url())
        try:
            return int(await conn.fetchval("SELECT mgw_rebuild_search_words()"))
        finally:
            await conn.close()

    try:
        words = asyncio.run(rebuild())
    except ConfigError as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None
    except OSError as exc:
        err.print(f"[red]cannot reach PostgreSQL: {exc}[/red] (check DATABASE_URL)")
        raise typer.Exit(1) from None
    out.print(f"search index rebuilt: {words} words")


@readmodel_app.command("rebuild")
def readmodel_rebuild() -> None:
    """Rewrite every read-model document from PostgreSQL (after a Redis loss)."""
    import asyncpg
    from redis.exceptions import RedisError

    from cli.ingest import rebuild_read_model

    settings = settings_or_exit()
    try:
        done = asyncio.run(rebuild_read_model(settings))
    except ConfigError as exc:
        err.print(f"[red]{escape(str(exc))}[/red]")
        raise typer.Exit(2) from None
    except (OSError, RedisError, asyncpg.PostgresConnectionError, asyncpg.InterfaceError) as exc:
        err.print(
            f"[red]cannot reach PostgreSQL or Redis: {escape(failure_text(exc))}[/red] (check "
            "DATABASE_URL and REDIS_URL, `mgw stack` shows a local stack's; run it again once "
            "both answer: it rewrites every document, and a worker's read-model guard rebuilds "
            "a read model it finds missing by itself)"
        )
        raise typer.Exit(1) from None
    out.print(f"{done} document(s) written; read model ready")


@bench_app.command("ingest")
def bench_ingest_command(
    events: Annotated[int, typer.Option(min=100, help="Catalog items to push through.")] = 20000,
    seed: Annotated[int, typer.Option(help="Catalog generator seed.")] = 7,
    enrich: Annotated[
        bool, typer.Option(help="Then enrich the stored titles; print embedding work per title.")
    ] = True,
) -> None:
    """Pipeline events/s into PostgreSQL vs a bare Faust agent's, on one worker each; then the
    enrichment worker's embedding work per title."""
    from devtools.bench.ingest import bench_ingest

    raise typer.Exit(bench_ingest(events, seed, enrich))


@bench_app.command("embed")
def bench_embed_command(
    texts: Annotated[int, typer.Option(min=8, help="Catalog-like texts to embed.")] = 256,
) -> None:
    """The offline embedding model: texts/s one at a time and in batches of 64."""
    from devtools.bench.embed import bench_embeddings

    asyncio.run(bench_embeddings(texts))


@bench_app.command("search")
def bench_search_command(
    titles: Annotated[int, typer.Option(min=100, help="Titles in the catalog.")] = 100_000,
    queries: Annotated[int, typer.Option(min=10, help="Different queries asked.")] = 200,
    llm_delay_ms: Annotated[
        float, typer.Option(min=0, help="Delay of the loopback LLM baseline.")
    ] = 600.0,
) -> None:
    """Search latency through the gateway: result-cache hits and misses, against baselines."""
    from devtools.bench.search import bench_search

    raise typer.Exit(bench_search(titles, queries, llm_delay_ms))


@bench_app.command("relevance")
def bench_relevance_command(
    titles: Annotated[
        int,
        typer.Option(
            min=100,
            help="A random sample of this many films; 58788 is the whole catalog (embedding it "
            "takes ~5 min on an idle 2-core machine, once: the vectors are cached).",
        ),
    ] = 20_000,
    queries: Annotated[int, typer.Option(min=10, help="Queries of each title kind.")] = 200,
    seed: Annotated[int, typer.Option(help="Seed of the sample, the credits and the queries.")] = 7,
) -> None:
    """Search relevance on a real public catalog (ggplot2movies), beside a rapidfuzz baseline."""
    from devtools.bench.relevance import bench_relevance

    raise typer.Exit(bench_relevance(titles, queries, seed))


@bench_app.command("sync")
def bench_sync_command(
    count: Annotated[int, typer.Option(min=50, help="Commands and watchlist adds, each.")] = 1000,
    path: Annotated[
        list[str] | None,
        typer.Option(help="Delivery path(s): fanout, pubnub, socket (default: fanout, pubnub)."),
    ] = None,
    durable: Annotated[
        bool, typer.Option(help="The broker durable on an object store, as `mgw up --durable`.")
    ] = False,
) -> None:
    """Phone -> TV command and watchlist add -> second device: p50/p95/p99 per delivery path,
    against the transport's own floor."""
    from devtools.bench.sync import bench_sync

    paths = tuple(path or ("fanout", "pubnub"))
    unknown = [p for p in paths if p not in ("fanout", "pubnub", "socket")]
    if unknown:
        out.print(f"[red]unknown path(s) {', '.join(unknown)}; use fanout, pubnub or socket[/red]")
        raise typer.Exit(2)
    raise typer.Exit(bench_sync(count, paths, durable))


@bench_app.command("web")
def bench_web_command(
    count: Annotated[int, typer.Option(min=50, help="Remote commands, each path.")] = 200,
) -> None:
    """The web app in Chromium: a click on the phone's remote -> the TV page shows it,
    p50/p95/p99, beside the same command without a browser (docs/WEB_APP.md)."""
    from devtools.bench.web import bench_web

    raise typer.Exit(bench_web(count))


@bench_app.command("sona")
def bench_sona_command(
    users: Annotated[int, typer.Option(min=10, help="Users trained, each with an adapter.")] = 300,
    requests: Annotated[
        int, typer.Option(min=20, help="Recommendation requests: each a miss, then a hit.")
    ] = 500,
    titles: Annotated[int, typer.Option(min=1000, help="Titles in the catalog.")] = 5000,
) -> None:
    """Adapter loads (PostgreSQL, LRU), scoring 1,000 candidates and recommendations through
    the gateway (miss, hit): p50/p95/p99 against targets and same-run baselines."""
    from devtools.bench.sona import bench_sona

    raise typer.Exit(bench_sona(users, requests, titles))


@bench_app.command("recommend-quality")
def bench_recommend_quality_command(
    users: Annotated[
        int | None, typer.Option(min=5, help="Users drawn (seeded) from the 671; all by default.")
    ] = None,
    holdout: Annotated[int, typer.Option(min=1, help="Last positives held out per user.")] = 3,
    split: Annotated[
        str, typer.Option(help="test, or validation (for tuning: never sees a test film).")
    ] = "test",
    seed: Annotated[int, typer.Option(help="Seed of the user draw and the cold-start pick.")] = 7,
    keep: Annotated[
        bool, typer.Option(help="Keep the scratch database and work directory afterwards.")
    ] = False,
) -> None:
    """HR@10, NDCG@10, coverage and diversity of SONA (with and without its adapter), most
    popular, item co-occurrence and ALS on real ratings replayed through the system."""
    from devtools.bench.recommend_quality import bench_recommend_quality

    if split not in ("test", "validation"):
        out.print(f"[red]--split must be test or validation, not {split!r}[/red]")
        raise typer.Exit(2)
    raise typer.Exit(bench_recommend_quality(users, holdout, split, seed, keep=keep))  # type: ignore[arg-type]


@bench_app.command("gateway")
def bench_gateway_command(
    seconds: Annotated[float, typer.Option(min=1, help="Seconds per load run.")] = 10.0,
    connections: Annotated[int, typer.Option(min=1, help="Concurrent connections.")] = 32,
    threads: Annotated[int, typer.Option(min=1, help="wrk threads.")] = 2,
    workers: Annotated[int, typer.Option(min=1, help="Gateway processes.")] = 1,
    code_dir: Annotated[
        Path | None, typer.Option(help="Run the gateway of another checkout (a baseline).")
    ] = None,
    only: Annotated[
        list[str] | None,
        typer.Option(
            help="Only these runs (repeatable): post, batch, read, hit, sync, fixed, raw."
        ),
    ] = None,
    profile: Annotated[
        Path | None, typer.Option(help="Record the gateway with py-spy to this file.")
    ] = None,
    near_ttl: Annotated[
        float,
        typer.Option(min=0, max=60, help="RESPONSE_CACHE_NEAR_TTL_S of the gateway (0: off)."),
    ] = 0.0,
    generator: Annotated[
        str | None,
        typer.Option(help="Load generator: wrk or built-in [default: wrk when installed]."),
    ] = None,
    durable: Annotated[
        bool, typer.Option(help="The broker durable on an object store, as `mgw up --durable`.")
    ] = False,
    auth: Annotated[
        str,
        typer.Option(
            help="Bearer tokens verified by: hs256 (a dev token), jwks (a loopback provider's "
            "JWKS, ES256), or both (each authenticated run twice, back to back)."
        ),
    ] = "hs256",
) -> None:
    """Gateway requests/s and latencies (wrk) against a raw producer's rate, in one run."""
    from devtools.bench.gateway import AUTH_CHOICES, GENERATORS, SCENARIOS, bench_gateway

    chosen = frozenset(only or SCENARIOS)
    if unknown := chosen - set(SCENARIOS):
        err.print(
            f"unknown run(s) {', '.join(sorted(unknown))}: choose from {', '.join(SCENARIOS)}"
        )
        raise typer.Exit(2)
    if generator is not None and generator not in GENERATORS:
        err.print(f"unknown generator {generator!r}: choose from {', '.join(GENERATORS)}")
        raise typer.Exit(2)
    if auth not in AUTH_CHOICES:
        err.print(f"unknown --auth {auth!r}: choose from {', '.join(AUTH_CHOICES)}")
        raise typer.Exit(2)
    code = bench_gateway(
        seconds,
        connections,
        threads,
        workers,
        code_dir,
        chosen,
        profile,
        near_ttl,
        generator,
        durable,
        AUTH_CHOICES[auth],
    )
    raise typer.Exit(code)


@bench_app.command("broker")
def bench_broker_command(
    count: Annotated[int, typer.Option(min=50, help="Records sent one at a time, each way.")] = 500,
    senders: Annotated[int, typer.Option(min=1, help="Concurrent senders for the rate.")] = 32,
    seconds: Annotated[float, typer.Option(min=1, help="Seconds of concurrent sending.")] = 5.0,
) -> None:
    """The embedded broker in memory and durable, in one run: publish p50/p99 one at a time,
    records/s with concurrent senders, and the fetch latency of an agent's hop."""
    from devtools.bench.broker import bench_broker

    raise typer.Exit(bench_broker(count, senders, seconds))


@bench_app.command("edge")
def bench_edge_command(
    slow: Annotated[int, typer.Option(min=1, help="Slowloris connections.")] = 200,
    streams: Annotated[int, typer.Option(min=1, help="Event streams opened per round.")] = 5000,
    rounds: Annotated[int, typer.Option(min=1, help="Rounds of opening and closing them.")] = 3,
) -> None:
    """The gateway against a slowloris (408s, and its latency meanwhile) and many event
    streams opened and closed (its memory after each round)."""
    from devtools.bench.edge import bench_edge

    raise typer.Exit(bench_edge(slow, streams, rounds))


@bench_app.command("sockets")
def bench_sockets_command(
    sockets: Annotated[int, typer.Option(min=1, help="Device WebSockets held at once.")] = 1000,
    hold: Annotated[float, typer.Option(min=1, help="Seconds they are held.")] = 60.0,
) -> None:
    """One gateway process holding many device WebSockets: its memory (RSS) before, while
    held and after, against the per-socket budget of docs/DEVICE_PROTOCOL.md."""
    from devtools.bench.sockets import bench_sockets

    raise typer.Exit(bench_sockets(sockets, hold))


@bench_app.command("idle")
def bench_idle_command(
    seconds: Annotated[float, typer.Option(min=10, help="Seconds of CPU sampling at rest.")] = 60.0,
    settle: Annotated[
        float,
        typer.Option(
            min=0,
            help="Seconds to wait after start before sampling (past 60 s the devices it "
            "registered have gone offline, a message each, before the window).",
        ),
    ] = 70.0,
    durable: Annotated[
        bool, typer.Option(help="Run the stack as `mgw up --durable` (broker on disk).")
    ] = False,
) -> None:
    """CPU of a whole idle `mgw up` stack per process kind (against the bare services), then
    the first command after a quiet minute and the next ones."""
    from devtools.bench.idle import bench_idle

    raise typer.Exit(bench_idle(seconds, settle, durable))


@bench_app.command("notify")
def bench_notify_command(
    users: Annotated[int, typer.Option(min=1, help="Users seeded in PostgreSQL.")] = 1_000_000,
    watchers: Annotated[
        int, typer.Option(min=1, help="Of them, those with the title on their watchlist.")
    ] = 100_000,
    workers: Annotated[
        int, typer.Option(min=1, help="Notifications workers of the second run (1 first).")
    ] = 2,
    devices: Annotated[int, typer.Option(min=1, help="Connected devices listening.")] = 1000,
    profile: Annotated[
        Path | None,
        typer.Option(help="py-spy the (first) notifications worker into PROFILE.<n>w.txt."),
    ] = None,
) -> None:
    """Watchlist alerts at scale: one title arriving for WATCHERS of USERS users."""
    from devtools.bench.notify import bench_notify

    raise typer.Exit(bench_notify(users, watchers, workers, devices, profile))


@bench_app.command("worker", hidden=True)
def bench_worker_command(mode: str, expected: int, result_file: Path) -> None:
    """(internal) One timed benchmark worker."""
    from devtools.bench.ingest_worker import run_bench_worker

    run_bench_worker(settings_or_exit(), mode, expected, result_file)  # type: ignore[arg-type]


def main() -> None:
    app()


if __name__ == "__main__":
    main()
