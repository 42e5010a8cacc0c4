"""`mgw bench ingest`: the pipeline's rate into PostgreSQL against a bare Faust agent's rate.

Both read the same pre-filled topic on a broker of the benchmark's own, one worker process
each, measured in the same run so the machine's noise hits both alike.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import asyncpg
import orjson
from rich.table import Table

from cli.console import console_for, out
from core.publisher import Publisher
from devtools.bench.enrich_phase import EnrichFigures, run_enrichment
from devtools.bench.services import bench_services

console = console_for(stderr=True)
TARGET_RATE = 5000.0
TARGET_RATIO = 0.8
# The share of the sample's series that get seasons and episodes (devtools/sample_series.py).
EPISODE_SHARE = 0.2
Figures = dict[str, Any]


async def _prepare(env: dict[str, str], items: list[dict[str, object]]) -> None:
    from agents.framework.migrate import migrate_url
    from core.config import load_settings
    from schemas.ingestion import CatalogItemReceived, RawCatalogItem
    from topics.admin import create_topics
    from topics.registry import CONTENT_RAW

    os.environ.update(env)
    settings = load_settings()
    await create_topics(settings.kafka.bootstrap, settings.kafka.topic_prefix)
    await migrate_url(env["DATABASE_URL"])
    publisher = Publisher(settings.kafka, source="bench")
    try:
        for start in range(0, len(items), 5000):
            envelopes = []
            for raw in items[start : start + 5000]:
                item = RawCatalogItem.model_validate(raw)
                envelopes.append(
                    (
                        CONTENT_RAW,
                        publisher.build_envelope(CatalogItemReceived(item=item), item.record_key),
                    )
                )
            await publisher.send_envelopes(envelopes)
    finally:
        await publisher.stop()


def _run_worker(mode: str, events: int, env: dict[str, str], workdir: Path) -> Figures:
    result = workdir / f"{mode}.json"
    with console.status(f"running the {mode} worker over {events} records..."):
        done = subprocess.run(
            [sys.executable, "-m", "cli.main", "bench", "worker", mode, str(events), str(result)],
            env={**os.environ, **env},
            capture_output=True,
            text=True,
            timeout=900,
        )
    if not result.exists():
        raise RuntimeError(f"{mode} worker failed (exit {done.returncode}):\n{done.stderr[-3000:]}")
    return orjson.loads(result.read_bytes())


def bench_ingest(events: int, seed: int, enrich: bool = True) -> int:
    from devtools.sample_catalog import generate_sample
    from schemas.ingestion import RawCatalogItem

    with console.status("generating the catalog..."):
        # About 2.2 items per title with the series' episodes (1.65 without), varying with the
        # few series of a small catalog: grown until it has the items asked for. The
        # episodes come after the titles, so the cut drops episodes, never their series.
        titles = max(1, int(events / 2.2) + 1)
        items: list[dict[str, Any]] = []
        for _ in range(5):
            items = []
            for raw in generate_sample(titles, seed, episode_share=EPISODE_SHARE).items:
                try:
                    RawCatalogItem.model_validate(raw)
                except ValueError:
                    continue
                items.append(raw)
            if len(items) >= events:
                break
            titles = int(titles * events / max(1, len(items)) * 1.05) + 1
        items = items[:events]
    with bench_services("ingest", console) as services:
        workdir = services.workdir
        env = {
            "KAFKA_BROKERS": services.broker_url,
            "KAFKA_TOPIC_PREFIX": f"bench{uuid.uuid4().hex[:6]}",
            "DATABASE_URL": services.database_url,
            "REDIS_URL": services.redis_url,
            "METRICS_PORT": "0",
            "LOG_LEVEL": "warning",
            "LOG_FORMAT": "json",
        }
        with console.status(f"publishing {len(items)} raw catalog items..."):
            asyncio.run(_prepare(env, items))
        n = len(items)
        baseline = _run_worker("count", n, env, workdir)
        pipeline = _run_worker("pipeline", n, env, workdir)
        stored = asyncio.run(_count_mappings(env["DATABASE_URL"]))
        tv = asyncio.run(series_figures(env["DATABASE_URL"]))
        enriched = run_enrichment(env, workdir, console) if enrich else None
    out.print(_rates_table(baseline, pipeline, n, stored))
    out.print(_breakdown_table(baseline, pipeline))
    if enriched is not None:
        out.print(_enrichment_table(enriched))
    out.print(_series_table(tv))
    # Every item is mapped, or parked until its series arrives (none in this catalog).
    return 0 if stored + tv["parked"] == n else 1


async def series_figures(url: str) -> dict[str, int]:
    """What the run made of the catalog's television (docs/INGESTION.md, "Series")."""
    conn = await asyncpg.connect(url)
    try:
        row = await conn.fetchrow(
            """
            SELECT
              (SELECT count(*) FROM content WHERE content_type = 'series') AS series,
              (SELECT count(DISTINCT series_id) FROM episodes) AS series_with_episodes,
              (SELECT count(*) FROM seasons) AS seasons,
              (SELECT count(*) FROM episodes) AS episodes,
              (SELECT count(*) FROM entity_mappings WHERE method LIKE 'episode_%')
                AS episode_listings,
              (SELECT count(*) FROM entity_mappings WHERE method LIKE 'season_%')
                AS season_listings,
              (SELECT count(*) FROM season_maps) AS season_maps,
              (SELECT count(*) FROM episodes WHERE season_number = 0) AS specials,
              (SELECT count(*) FROM pending_episodes) AS parked
            """
        )
        methods = await conn.fetch(
            "SELECT method, count(*) AS n FROM entity_mappings WHERE method LIKE 'episode_%' "
            "GROUP BY method ORDER BY method"
        )
    finally:
        await conn.close()
    return {**dict(row), **{r["method"]: r["n"] for r in methods}}


def _series_table(tv: dict[str, int]) -> Table:
    table = Table(title="Series, seasons and episodes")
    table.add_column("figure")
    table.add_column("count", justify="right")
    for name, label in (
        ("series", "series (canonical)"),
        ("series_with_episodes", "series with episodes"),
        ("seasons", "seasons"),
        ("episodes", "episodes (canonical)"),
        ("episode_listings", "episode listings"),
        ("season_listings", "season listings"),
        ("season_maps", "season maps learnt (split or renumbered seasons)"),
        ("specials", "specials (season 0)"),
        ("parked", "parked, waiting for their series"),
    ):
        table.add_row(label, str(tv.get(name, 0)))
    for name, value in sorted(tv.items()):
        if name.startswith("episode_") and name != "episode_listings":
            table.add_row(f"  placed by {name.removeprefix('episode_')}", str(value))
    return table


def _enrichment_table(figures: EnrichFigures) -> Table:
    once = abs(figures.per_title - 1.0) < 1e-9
    table = Table("measure", "value", "target", title="enrichment of the stored titles")
    table.add_row("titles", f"{figures.titles:,}", "")
    table.add_row("texts embedded", f"{figures.embedded:,.0f}", "")
    table.add_row(
        "embedding work per title", f"{figures.per_title:.3f}", f"= 1 {'ok' if once else 'MISSED'}"
    )
    table.add_row(
        "enrichment rate",
        f"{figures.titles / figures.seconds:,.0f} titles/s ({figures.seconds:.1f} s)",
        "",
    )
    return table


def _rates_table(baseline: Figures, pipeline: Figures, n: int, stored: int) -> Table:
    base_rate = baseline["events"] / baseline["seconds"]
    pipe_rate = pipeline["events"] / pipeline["seconds"]
    ratio = pipe_rate / base_rate
    table = Table("measure", "value", "target", title=f"mgw bench ingest ({n} catalog items)")
    table.add_row("bare Faust agent (consume + count)", f"{base_rate:,.0f} events/s", "")
    table.add_row(
        "process batch -> PostgreSQL",
        f"{pipe_rate:,.0f} events/s",
        f">= {TARGET_RATE:,.0f} {'ok' if pipe_rate >= TARGET_RATE else 'MISSED'}",
    )
    table.add_row(
        "ratio", f"{ratio:.2f}", f">= {TARGET_RATIO} {'ok' if ratio >= TARGET_RATIO else 'MISSED'}"
    )
    table.add_row(
        "items mapped in PostgreSQL", f"{stored}", f"= {n} {'ok' if stored == n else 'MISSED'}"
    )
    return table


# What each stage of process batch does, in the order it runs (mgw_agent_stage_duration_seconds).
STAGES = {
    "decode": "decode + validate the envelopes",
    "normalize": "normalize items",
    "load": "lock, load mappings and candidates (PostgreSQL)",
    "resolve": "resolve entities",
    "merge": "merge into canonical records, diff",
    "write": "upsert content, availability, mappings (PostgreSQL)",
    "events": "build lifecycle events",
    "outbox": "encode + stage them in the outbox (PostgreSQL)",
    "commit": "commit (PostgreSQL)",
    "publish": "publish (acks=all) + delete from the outbox",
}


def _breakdown_table(baseline: Figures, pipeline: Figures) -> Table:
    """Microseconds per item, stage by stage, against what the targets leave for them."""
    n = pipeline["events"]
    bare_us = 1e6 * baseline["seconds"] / baseline["events"]
    stages: dict[str, float] = pipeline["stages"]
    table = Table("where one item's time goes", "us/item", title="process batch, per item")

    def row(label: str, seconds: float) -> None:
        table.add_row(label, f"{1e6 * seconds / n:,.0f}")

    row("Faust: fetch, stream, ack, commit", pipeline["seconds"] - pipeline["handler_seconds"])
    for stage, label in STAGES.items():
        row(label, stages.get(stage, 0.0))
    row("other (dead letters, logs)", pipeline["handler_seconds"] - sum(stages.values()))
    table.add_section()
    table.add_row("total", f"{1e6 * pipeline['seconds'] / n:,.0f}")
    table.add_row("bare Faust agent, for comparison", f"{bare_us:,.0f}")
    # ratio >= r means pipeline time <= bare time / r; the rest of that is the pipeline's share.
    table.add_row(
        f"what ratio {TARGET_RATIO} leaves for everything after Faust",
        f"{bare_us * (1 / TARGET_RATIO - 1):,.0f}",
    )
    table.add_row(
        f"what {TARGET_RATE:,.0f} events/s leaves for everything", f"{1e6 / TARGET_RATE:,.0f}"
    )
    return table


async def _count_mappings(url: str) -> int:
    conn = await asyncpg.connect(url)
    try:
        return int(await conn.fetchval("SELECT count(*) FROM entity_mappings"))
    finally:
        await conn.close()
