"""`mgw ingest FILE`, `mgw ingest-report`, `mgw sample-catalog`, `mgw readmodel rebuild`: catalog
work from a shell."""

from __future__ import annotations

import codecs
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import redis.asyncio as aioredis
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from agreements.catalog_producer import (
    AVAILABILITY_READINGS,
    MAX_BATCH_ITEMS,
    CatalogProducer,
    ItemResult,
    summarize,
)
from agreements.catalog_warnings import KINDS, SENT_ONLY
from cli.console import console_for, out
from core.broker_wakeup import BrokerWakeup, wakeup_channel
from core.config import Settings
from core.publisher import Publisher
from schemas.ingestion import normalize_platform
from topics.registry import CONTENT_RAW

console = console_for(stderr=True)


def read_jsonl(path: Path) -> Iterator[tuple[int, Any]]:
    """(line number, parsed value or the parse error text) of each non-blank line."""
    with path.open("rb") as handle:
        for number, line in enumerate(handle, start=1):
            if number == 1:
                # Files saved by Windows tools (Excel, PowerShell, Notepad) open with a UTF-8
                # byte order mark, which JSON forbids: the first item was rejected for it.
                line = line.removeprefix(codecs.BOM_UTF8)
            if not line.strip():
                continue
            try:
                yield number, orjson.loads(line)
            except orjson.JSONDecodeError as exc:
                yield number, exc


def _progress() -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[status]}"),
        TimeRemainingColumn(),
        console=console,
    )


async def ingest_file(settings: Settings, path: Path, batch_size: int) -> tuple[int, int]:
    """Publish every valid line; print a summary; return (accepted, rejected)."""
    lines = list(read_jsonl(path))
    # Without Redis the workers still fetch what arrives, within KAFKA_IDLE_FETCH_INTERVAL_MS.
    redis = aioredis.from_url(settings.redis.url) if settings.redis.url else None
    wakeup = BrokerWakeup(redis, wakeup_channel(settings)) if redis is not None else None
    publisher = Publisher(settings.kafka, source="mgw-ingest", wakeup=wakeup)
    producer = CatalogProducer(publisher)
    counts: Counter[str] = Counter()
    reasons: Counter[str] = Counter()
    examples: list[str] = []
    warned: Counter[str] = Counter()
    warned_items = 0
    warning_examples: list[str] = []
    readings: Counter[str] = Counter()
    try:
        with _progress() as progress:
            task = progress.add_task(f"ingesting {path.name}", total=len(lines), status="")
            for start in range(0, len(lines), batch_size):
                chunk = lines[start : start + batch_size]
                items = [v for _, v in chunk if not isinstance(v, Exception)]
                numbers = [n for n, v in chunk if not isinstance(v, Exception)]
                for number, value in chunk:
                    if isinstance(value, Exception):
                        counts["rejected"] += 1
                        reasons["(line): not JSON"] += 1
                        if len(examples) < 10:
                            examples.append(f"line {number}: not JSON: {value}")
                results: list[ItemResult] = await producer.send(items) if items else []
                counts.update(summarize(results))
                for result in results:
                    if result.availability is not None:
                        readings[result.availability] += 1
                    warned.update(w.kind for w in result.warnings)
                    warned_items += bool(result.warnings)
                    if result.warnings and len(warning_examples) < 10:
                        first_warning = result.warnings[0]
                        warning_examples.append(
                            f"line {numbers[result.index]}: {first_warning.field}: "
                            f"{first_warning.message}"
                        )
                    for err in result.errors:
                        reasons[f"{err.field}: {err.reason}"] += 1
                    if result.errors and len(examples) < 10:
                        first = result.errors[0]
                        examples.append(
                            f"line {numbers[result.index]}: {first.field}: {first.reason}"
                        )
                progress.update(
                    task,
                    advance=len(chunk),
                    status=f"[green]{counts['accepted']} accepted[/] "
                    f"[red]{counts['rejected']} rejected[/]",
                )
    finally:
        await publisher.stop()
        if redis is not None:
            await redis.aclose()
    console.print(
        f"[bold]{path.name}[/]: [green]{counts['accepted']} accepted[/], "
        f"[red]{counts['rejected']} rejected[/] of {len(lines)} lines "
        f"-> topic {publisher.topic_name(CONTENT_RAW)}"
    )
    if readings:
        # What each accepted item's availability was taken to mean: a feed that leaves it out
        # by mistake is told here, not by offers that never change.
        console.print("availability of the accepted items:")
        for reading, meaning in AVAILABILITY_READINGS.items():
            if readings[reading]:
                console.print(f"  {readings[reading]:>6} x {reading} ({meaning})")
    if reasons:
        console.print("most common reasons:")
        for reason, n in reasons.most_common(5):
            console.print(f"  {n:>6} x {reason}")
        console.print("first rejected lines:")
        for example in examples:
            console.print(f"  {example}")
    if warned:
        # Accepted, but not kept as sent: say what, so a feed can be fixed.
        console.print(
            f"[yellow]{warned_items} accepted item(s) with warnings[/] "
            "(what the pipeline drops or changes; `mgw ingest-report` lists them once stored, "
            f"all but {' and '.join(SENT_ONLY)}: the fields the schema ignores never reach the "
            "pipeline, nor does the batch an item came in, so they are named here only):"
        )
        for kind, n in warned.most_common():
            console.print(f"  {n:>6} x {kind}")
        console.print("first warned lines:")
        for example in warning_examples:
            console.print(f"  {example}")
    return counts["accepted"], counts["rejected"]


class ReportFilterError(ValueError):
    """A filter of `mgw ingest-report` that no stored warning can match; says why."""


def report_filters(platform: str | None, kind: str | None) -> tuple[str | None, str | None]:
    """The filters as stored: a platform as `mgw ingest` names it ("Max" is hbo_max, the same
    rule as the items' own field), a kind checked against the kinds there are."""
    if kind is not None and kind not in KINDS:
        raise ReportFilterError(f"unknown warning kind {kind!r}; the kinds: {', '.join(KINDS)}")
    if kind in SENT_ONLY:
        raise ReportFilterError(
            f"{kind} warnings are named only when an item is sent (`mgw ingest`, the batch "
            "endpoint's answer): the fields the schema ignores never reach the pipeline, nor "
            "does the batch an item came in, so no stored item keeps them"
        )
    return (normalize_platform(platform) if platform is not None else None), kind


async def warnings_report(
    settings: Settings, platform: str | None, kind: str | None, limit: int
) -> int:
    """Print what normalization dropped or changed of the stored items: counts per kind, then
    the items (newest first). Returns the number of items with warnings that match. Raises
    ReportFilterError for a filter that cannot match."""
    import asyncpg
    from rich.table import Table

    from agents.ingestion.store import warned_items, warning_counts

    platform, kind = report_filters(platform, kind)
    conn = await asyncpg.connect(settings.postgres.require_url())
    try:
        counts = await warning_counts(conn, platform, kind)
        rows = await warned_items(conn, platform, kind, limit)
    finally:
        await conn.close()
    if not counts:
        console.print("no stored item has warnings" + (" matching" if platform or kind else ""))
        return 0
    summary = Table("kind", "items", "warnings", title="warnings of stored catalog items")
    for name, (items, warnings) in sorted(counts.items()):
        summary.add_row(name, str(items), str(warnings))
    out.print(summary)
    listing = Table(
        "platform", "item", "canonical id", "field", "warning", title=f"items (up to {limit})"
    )
    for row in rows:
        for warning in row.warnings:
            if kind is None or warning.kind == kind:
                listing.add_row(
                    row.platform,
                    row.platform_item_id,
                    str(row.canonical_id),
                    warning.field,
                    warning.message,
                )
    out.print(listing)
    return len(rows)


def write_sample(
    path: Path, titles: int, seed: int, invalid: float, episodes: float = 0.0
) -> tuple[int, dict[str, int]]:
    """Items written, and how many of them are episode and season listings."""
    from devtools.sample_catalog import generate_sample

    items = generate_sample(titles, seed, invalid_fraction=invalid, episode_share=episodes).items
    tv = {"episode": 0, "season": 0}
    with path.open("wb") as handle:
        for item in items:
            handle.write(orjson.dumps(item) + b"\n")
            kind = str(item.get("content_type", "")).casefold()
            if kind == "season":
                tv["season"] += 1
            elif kind in ("episode", "tv episode"):
                tv["episode"] += 1
    return len(items), tv


async def rebuild_read_model(settings: Settings) -> int:
    import redis.asyncio as aioredis

    from agents.framework.db import create_pool
    from agents.readmodel.store import rebuild

    pool = await create_pool(settings.postgres)
    redis = aioredis.from_url(settings.redis.require_url())
    try:
        with _progress() as progress:
            task = progress.add_task("rebuilding read model", total=None, status="")

            def report(done: int, total: int) -> None:
                progress.update(task, completed=done, total=total)

            return await rebuild(pool, redis, settings.redis.key_prefix, report) or 0
    finally:
        await redis.aclose()
        await pool.close()


DEFAULT_BATCH = min(500, MAX_BATCH_ITEMS)
