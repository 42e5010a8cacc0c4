"""The enrichment phase of `mgw bench ingest`: the real enrichment worker over the titles the
pipeline stored, with its event path (content.ingested) and its sweep (which also runs at
start) both live, as under `mgw up`. It reports the embedding work per title: each title
version must be embedded once, however the two paths interleave (docs/INGESTION.md).
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import httpx
from prometheus_client.parser import text_string_to_metric_families
from rich.console import Console

from core.embedded import free_port

TIMEOUT_S = 1800.0


@dataclass(frozen=True)
class EnrichFigures:
    titles: int
    embedded: float  # texts embedded by the worker (mgw_embedded_texts_total)
    seconds: float

    @property
    def per_title(self) -> float:
        return self.embedded / self.titles if self.titles else 0.0


async def _due(url: str) -> tuple[int, int]:
    conn = await asyncpg.connect(url)
    try:
        row = await conn.fetchrow(
            "SELECT count(*) AS titles, count(*) FILTER (WHERE enriched_version IS DISTINCT "
            "FROM updated_at) AS due FROM content"
        )
        return int(row["titles"]), int(row["due"])
    finally:
        await conn.close()


def _embedded(metrics_url: str) -> float:
    text = httpx.get(metrics_url, timeout=5).text
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        if family.name == "mgw_embedded_texts"
        for sample in family.samples
        if sample.name.endswith("_total")
    )


def run_enrichment(env: dict[str, str], workdir: Path, console: Console) -> EnrichFigures:
    port = free_port()
    worker_env = {
        **os.environ,
        **env,
        "METRICS_PORT": str(port),
        "QDRANT_PATH": str(workdir / "qdrant"),
    }
    log = (workdir / "enrichment.log").open("wb")
    worker = subprocess.Popen(
        [sys.executable, "-m", "cli.main", "worker", "enrichment"],
        env=worker_env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    started = time.perf_counter()
    try:
        with console.status("enriching the stored titles (event path and sweep)...") as status:
            while True:
                if worker.poll() is not None:
                    raise RuntimeError(
                        f"the enrichment worker exited ({worker.returncode}); "
                        f"see {workdir / 'enrichment.log'}"
                    )
                titles, due = asyncio.run(_due(env["DATABASE_URL"]))
                status.update(f"enriching: {titles - due:,} of {titles:,} titles done")
                if titles and not due:
                    break
                if time.perf_counter() - started > TIMEOUT_S:
                    raise RuntimeError(f"{due} titles still not enriched after {TIMEOUT_S:.0f} s")
                time.sleep(0.5)
        seconds = time.perf_counter() - started
        # A late duplicate would show here: give both paths a moment to finish what they took.
        time.sleep(2.0)
        embedded = _embedded(f"http://127.0.0.1:{port}/metrics")
    finally:
        worker.send_signal(signal.SIGTERM)
        try:
            worker.wait(30)
        except subprocess.TimeoutExpired:
            worker.kill()
        log.close()
    return EnrichFigures(titles=titles, embedded=embedded, seconds=seconds)
