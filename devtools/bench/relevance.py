"""`mgw bench relevance`: does search find what people type, on a real catalog?

The catalog is ggplot2movies' `movies` (devtools/bench/relevance_catalog.py), written through
the titles store as the pipeline writes titles (so every index the writes maintain is built
the way production builds it), with real embeddings of each title by the local model in the
in-process vector store (cached on disk between runs: embedding 58,788 titles takes minutes).
Each query runs through the discovery agent's own search (the `search` of
agents/discovery/handlers.py: intent, plan, strategies, fusion), without Kafka and the gateway,
whose latency `mgw bench search` measures; the result cache is bypassed (a fresh key prefix
per query set, and each query is asked once).

Beside every figure: ten lines of rapidfuzz (WRatio over the titles' matching forms) on the
same queries in the same run. Targets: first result right for >= 0.98 of exact titles and >=
0.95 of one-typo titles, in the first five for >= 0.98 of one-typo titles, browsing totals
exact for every genre + decade.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import numpy as np
import redis.asyncio as aioredis
from loguru import logger
from rapidfuzz import fuzz, process
from rich.console import Console
from rich.table import Table

from agents.adapters.embeddings.base import content_text
from agents.adapters.embeddings.local import LocalEmbedder
from agents.adapters.vectors.edge import EdgeVectorStore
from agents.adapters.vectors.payload import content_payload
from agents.adapters.vectors.store import VectorPoint, VectorStore
from agents.discovery.cache_store import DiscoveryCache
from agents.discovery.handlers import Discovery, search
from agents.discovery.intent_client import IntentResolver
from agents.discovery.retrieval_store import Retriever
from agents.framework.db import _init_connection
from agents.framework.migrate import migrate_url
from agents.titles.names import normalize_title
from agents.titles.store import Versioned, upsert_contents
from agreements.discovery_cache import request_results_key
from core.config import DiscoverySettings, OpenAISettings, load_settings
from devtools.bench.relevance_catalog import Film, Query, draw_queries, load_films
from devtools.bench.services import forget_keys
from devtools.scratch_db import create_database, drop_database
from schemas.discovery import SearchRequested, SearchResponse

console = Console(stderr=True)
CACHE_DIR = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "mgw-bench"
BATCH = 2000
TARGETS = {
    ("exact title", "first"): 0.98,
    ("one typo", "first"): 0.95,
    ("one typo", "top 5"): 0.98,
    ("genre + decade browse", "total exact"): 1.0,
}


@dataclass
class Scores:
    first: list[bool] = field(default_factory=list)
    top5: list[bool] = field(default_factory=list)
    base_first: list[bool] = field(default_factory=list)
    base_top5: list[bool] = field(default_factory=list)
    precision: list[float] = field(default_factory=list)
    total_exact: list[bool] = field(default_factory=list)
    ms: list[float] = field(default_factory=list)
    base_ms: list[float] = field(default_factory=list)
    misses: list[str] = field(default_factory=list)


def _mean(values: list[bool] | list[float]) -> str:
    return f"{sum(values) / len(values):.3f}" if values else "-"


def _p95(values: list[float]) -> str:
    if not values:
        return "-"
    ordered = sorted(values)
    return f"{ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]:.1f}"


async def _embeddings(embedder: LocalEmbedder, texts: list[str]) -> np.ndarray:
    """The texts' embeddings, from the disk cache when this exact list was embedded before."""
    digest = hashlib.sha256("\n".join([embedder.model, *texts]).encode()).hexdigest()[:16]
    path = CACHE_DIR / f"relevance-{digest}.npy"
    if path.exists():
        return np.load(path)
    chunks = []
    for start in range(0, len(texts), BATCH):
        chunks.append(np.asarray(await embedder.embed(texts[start : start + BATCH])))
        console.print(f"  embedded {min(start + BATCH, len(texts))} of {len(texts)}")
    matrix = np.vstack(chunks).astype(np.float32)
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    np.save(path, matrix)
    return matrix


async def _load(
    pool: asyncpg.Pool, vectors: VectorStore, embedder: LocalEmbedder, films: list[Film]
) -> None:
    contents = [f.content() for f in films]
    for start in range(0, len(contents), BATCH):
        batch = contents[start : start + BATCH]
        await upsert_contents(pool, [Versioned(c, uuid.uuid4()) for c in batch])
    matrix = await _embeddings(embedder, [content_text(c) for c in contents])
    for start in range(0, len(contents), BATCH):
        await vectors.upsert(
            [
                VectorPoint(c.canonical_id, matrix[i], content_payload(c))
                for i, c in enumerate(contents[start : start + BATCH], start)
            ]
        )
    optimize = getattr(vectors, "optimize", None)
    if optimize is not None:
        await optimize()


def _baseline(query: str, choices: dict[int, str], films: list[Film]) -> tuple[list[str], float]:
    """Ten lines of rapidfuzz: the five titles closest to the query."""
    started = time.perf_counter()
    found = process.extract(normalize_title(query), choices, scorer=fuzz.WRatio, limit=5)
    return [films[i].form for _, _, i in found], (time.perf_counter() - started) * 1000


async def _run(films: list[Film], queries: list[Query], page_size: int) -> dict[str, Scores]:
    base = os.environ.get("DATABASE_URL") or "postgresql://postgres@127.0.0.1:5432/postgres"
    name = f"mgw_bench_relevance_{uuid.uuid4().hex[:8]}"
    url = await create_database(base, name)
    redis_url = os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/0"
    redis = aioredis.from_url(redis_url)
    # The run's keys in that Redis (often the machine's shared one), all removed after.
    prefix = f"mgw-bench-relevance-{uuid.uuid4().hex[:8]}"
    embedder = LocalEmbedder()
    try:
        await migrate_url(url)
        pool = await asyncpg.create_pool(url, min_size=1, max_size=6, init=_init_connection)
        with tempfile.TemporaryDirectory(prefix="mgw-bench-relevance-") as tmp:
            vectors = EdgeVectorStore(Path(tmp) / "content", embedder.dimension)
            await vectors.ensure_collection()
            started = time.perf_counter()
            with console.status(f"ingesting {len(films)} films..."):
                await _load(pool, vectors, embedder, films)
            console.print(
                f"catalog of {len(films)} films ready in {time.perf_counter() - started:.0f} s"
            )
            try:
                return await _ask(pool, vectors, embedder, redis, prefix, films, queries, page_size)
            finally:
                await vectors.close()
                await pool.close()
    finally:
        await embedder.close()
        await redis.aclose()
        await forget_keys(redis_url, prefix)
        await drop_database(base, name)


async def _ask(
    pool: asyncpg.Pool,
    vectors: VectorStore,
    embedder: LocalEmbedder,
    redis: aioredis.Redis,
    prefix: str,
    films: list[Film],
    queries: list[Query],
    page_size: int,
) -> dict[str, Scores]:
    settings = load_settings(env_file=Path("/nonexistent.env"))
    # Relevance, not speed: a loaded machine must not time strategies out (latency is
    # `mgw bench search`'s); no LLM: the local parser reads every intent.
    discovery_settings = DiscoverySettings(strategy_timeout_s=10.0, search_timeout_s=20.0)
    settings = settings.model_copy(
        update={"discovery": discovery_settings, "openai": OpenAISettings(api_key=None)}
    )
    cache = DiscoveryCache(redis, prefix, discovery_settings)

    async def get_vectors() -> VectorStore:
        return vectors

    async def get_embedder() -> LocalEmbedder:
        return embedder

    engine = Discovery(
        cache=cache,
        intents=IntentResolver(settings, cache),
        retriever=Retriever(pool, get_vectors, get_embedder, cache, discovery_settings),
    )
    form_of = {f.canonical_id: f.form for f in films}
    choices = {i: f.form for i, f in enumerate(films)}
    scores: dict[str, Scores] = defaultdict(Scores)
    with console.status(f"asking {len(queries)} queries...") as status:
        for n, q in enumerate(queries, 1):
            status.update(f"asking {len(queries)} queries... {n}")
            request = SearchRequested.model_validate(
                {"query": q.text, "reply_channel": "unused", "page_size": page_size}
            )
            started = time.perf_counter()
            body = await search(engine, request, request_results_key(prefix, request))
            s = scores[q.kind]
            s.ms.append((time.perf_counter() - started) * 1000)
            found = SearchResponse.model_validate_json(body)
            ids = [r.canonical_id for r in found.results]
            if q.forms:
                forms = [form_of.get(cid, "") for cid in ids]
                s.first.append(bool(forms) and forms[0] in q.forms)
                s.top5.append(any(f in q.forms for f in forms[:5]))
                if not s.first[-1] and len(s.misses) < 5:
                    s.misses.append(f"{q.text!r} -> {[r.title for r in found.results[:3]]}")
                got, ms = _baseline(q.text, choices, films)
                s.base_ms.append(ms)
                s.base_first.append(bool(got) and got[0] in q.forms)
                s.base_top5.append(any(f in q.forms for f in got[:5]))
            else:
                wanted = min(page_size, len(q.expected))
                s.precision.append(sum(cid in q.expected for cid in ids[:wanted]) / wanted)
                s.total_exact.append(found.total_count == len(q.expected))
                if (s.precision[-1] < 1 or not s.total_exact[-1]) and len(s.misses) < 5:
                    s.misses.append(
                        f"{q.text!r}: total {found.total_count} of {len(q.expected)}, "
                        f"precision {s.precision[-1]:.2f}"
                    )
    return scores


def _report(scores: dict[str, Scores], films: int, seed: int) -> int:
    table = Table(title=f"search relevance on ggplot2movies ({films} films, seed {seed})")
    for column in (
        "query kind",
        "n",
        "measure",
        "this project",
        "rapidfuzz baseline",
        "target",
        "p95 ms (project / baseline)",
    ):
        table.add_column(column)
    failed = 0
    for kind, s in scores.items():
        n = str(len(s.ms))
        timing = f"{_p95(s.ms)} / {_p95(s.base_ms)}"
        rows: list[tuple[str, str, str, float | None]] = []
        if s.first:
            rows.append(
                (
                    "first result right",
                    _mean(s.first),
                    _mean(s.base_first),
                    TARGETS.get((kind, "first")),
                )
            )
            rows.append(
                (
                    "in the first five",
                    _mean(s.top5),
                    _mean(s.base_top5),
                    TARGETS.get((kind, "top 5")),
                )
            )
        else:
            rows.append(("precision of the first 10", _mean(s.precision), "-", None))
            rows.append(
                ("total_count exact", _mean(s.total_exact), "-", TARGETS.get((kind, "total exact")))
            )
        for i, (measure, value, baseline, target) in enumerate(rows):
            verdict = ""
            if target is not None:
                met = float(value) >= target
                failed += not met
                verdict = f">= {target:.2f}: {'met' if met else 'MISSED'}"
            table.add_row(
                kind if i == 0 else "",
                n if i == 0 else "",
                measure,
                value,
                baseline,
                verdict,
                timing if i == 0 else "",
            )
    out = Console(width=170)
    out.print(table)
    out.print(
        "People are generated (the catalog has no credits): devtools/bench/relevance_catalog.py"
    )
    for kind, s in scores.items():
        for miss in s.misses:
            console.print(f"  [dim]{kind}: {miss}[/dim]")
    return 1 if failed else 0


def bench_relevance(titles: int | None, queries: int, seed: int) -> int:
    logger.remove()
    logger.add(sys.stderr, level="WARNING")
    films = load_films(titles, seed)
    drawn = draw_queries(films, queries, seed)
    console.print(f"{len(films)} films, {len(drawn)} queries (seed {seed})")
    scores = asyncio.run(_run(films, drawn, page_size=10))
    return _report(scores, len(films), seed)
