"""`mgw bench search`: search latency through the gateway, cache hits and misses, on a catalog
of 100,000 titles, against baselines measured in the same run.

A broker, PostgreSQL and Redis of the benchmark's own (or the machine's, by DATABASE_URL and
REDIS_URL), a scratch database, the synthetic catalog (devtools/bench/search_catalog.py), then
one discovery worker and one gateway process, as `mgw worker discovery` and `mgw gateway`.
One client asks each query once (a miss: intent by the local parser, query embedding by the
local model, vector + keyword search, fusion, all through Kafka request/reply) and then again
(a hit: the gateway answers from the Redis result cache). In the same run: the gateway's
/health/live (the floor of any request), a Redis GET, and calls to a loopback
OpenAI-compatible server answering after a realistic delay, which is what each repeated query
would cost without the intent cache when an LLM parses intents.
"""

from __future__ import annotations

import asyncio
import os
import random
import subprocess
import time
import uuid
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import httpx
import redis.asyncio as aioredis
from prometheus_client.parser import text_string_to_metric_families
from rich.console import Console
from rich.table import Table

from core.embedded import free_port
from devtools.bench.services import bench_services, spawn_mgw, stop_process, wait_ready

console = Console(stderr=True)

TARGET_HIT_P99_MS = 5.0
TARGET_MISS_P95_MS = 150.0
TARGET_SUGGEST_P99_MS = 10.0
SEARCH_AGENT = "discovery-search"
STAGES = {
    "intent": "intent (cache, then the local parser)",
    "embed": "query embedding (local model; none when cached)",
    "vector": "vector strategy (embedding + vector store)",
    "keyword": "keyword strategy (PostgreSQL full text + trigram)",
    "graph": "graph strategy ('like X': lookup + vector store)",
    "popularity": "popularity (browse queries only)",
    "payloads": "payloads of found titles (PostgreSQL)",
    "retrieve": "all strategies + payloads, wall time",
    "rank": "filter, fuse, facets, page, encode",
    "cache": "store the page in the result cache",
}


@dataclass
class Figures:
    health: list[float] = field(default_factory=list)
    redis_get: list[float] = field(default_factory=list)
    misses: list[float] = field(default_factory=list)
    miss_server_ms: list[float] = field(default_factory=list)
    hits: list[float] = field(default_factory=list)
    llm: list[float] = field(default_factory=list)
    suggest: list[float] = field(default_factory=list)
    suggest_empty: int = 0
    not_missed: int = 0
    not_hit: int = 0
    failed_strategies: int = 0
    stages_ms: dict[str, float] = field(default_factory=dict)
    load_s: float = 0.0


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered) + 0.5) - 1))]


# --------------------------------------------------------------------------- preparation


async def _prepare(env: dict[str, str], titles: int) -> tuple[list[str], float]:
    from agents.adapters.vectors.edge import EdgeVectorStore
    from agents.framework.db import _init_connection
    from agents.framework.migrate import migrate_url
    from core.config import load_settings
    from devtools.bench.search_catalog import load_catalog
    from topics.admin import create_topics

    os.environ.update(env)
    settings = load_settings()
    await create_topics(settings.kafka.bootstrap, settings.kafka.topic_prefix)
    await migrate_url(env["DATABASE_URL"])
    pool = await asyncpg.create_pool(
        env["DATABASE_URL"], min_size=1, max_size=4, init=_init_connection
    )
    vectors = EdgeVectorStore(Path(env["QDRANT_PATH"]) / "content", 384)
    started = time.perf_counter()
    try:
        await vectors.ensure_collection()
        names = await load_catalog(pool, vectors, titles)
        await pool.execute("ANALYZE content")
        # A Qdrant server indexes by itself; the in-process engine only when asked (VECTORS.md).
        await vectors.optimize()
    finally:
        await vectors.close()  # the worker opens it next: one process at a time
        await pool.close()
    return names, time.perf_counter() - started


# --------------------------------------------------------------------------- measurement


async def _stage_sums(
    client: httpx.AsyncClient, metrics_url: str
) -> dict[str, tuple[float, float]]:
    text = (await client.get(metrics_url)).text
    sums: dict[str, tuple[float, float]] = {}
    for family in text_string_to_metric_families(text):
        if family.name != "mgw_agent_stage_duration_seconds":
            continue
        for sample in family.samples:
            if sample.labels.get("agent") != SEARCH_AGENT:
                continue
            stage = sample.labels["stage"]
            total, count = sums.get(stage, (0.0, 0.0))
            if sample.name.endswith("_sum"):
                total = sample.value
            elif sample.name.endswith("_count"):
                count = sample.value
            sums[stage] = (total, count)
    return sums


async def _timed_get(
    client: httpx.AsyncClient, url: str, **params: str
) -> tuple[float, httpx.Response]:
    started = time.perf_counter()
    response = await client.get(url, params=params)
    return time.perf_counter() - started, response


async def _measure(
    gateway: str,
    metrics_url: str,
    redis_url: str,
    queries: list[str],
    llm_delay_s: float,
    names: list[str],
) -> Figures:
    from devtools.bench.search_llm import time_llm_calls

    figures = Figures()
    limits = httpx.Limits(max_keepalive_connections=1)
    async with httpx.AsyncClient(base_url=gateway, timeout=30, limits=limits) as client:
        for _ in range(200):
            seconds, _ = await _timed_get(client, "/health/live")
            figures.health.append(seconds)
        redis = aioredis.from_url(redis_url)
        try:
            for _ in range(200):
                started = time.perf_counter()
                await redis.get("mgw-bench-search-absent-key")
                figures.redis_get.append(time.perf_counter() - started)
        finally:
            await redis.aclose()
        for i in range(5):  # first requests: connections, plans, model caches
            await _timed_get(client, "/api/v1/search", q=f"warm up query number {i}")
        before = await _stage_sums(client, metrics_url)
        for query in queries:
            seconds, response = await _timed_get(client, "/api/v1/search", q=query)
            response.raise_for_status()
            body = response.json()
            figures.misses.append(seconds)
            figures.miss_server_ms.append(body["search_time_ms"])
            figures.failed_strategies += bool(body["strategies_failed"])
            figures.not_missed += response.headers["x-search-cache"] != "miss"
        after = await _stage_sums(client, metrics_url)
        for stage, (total, count) in after.items():
            done = count - before.get(stage, (0.0, 0.0))[1]
            if done > 0:
                spent = total - before.get(stage, (0.0, 0.0))[0]
                figures.stages_ms[stage] = 1000 * spent / done
        for query in queries:
            seconds, response = await _timed_get(client, "/api/v1/search", q=query)
            figures.hits.append(seconds)
            figures.not_hit += response.headers["x-search-cache"] != "hit"
        await _measure_suggest(client, figures, names)
    figures.llm = await time_llm_calls(llm_delay_s, 5)
    return figures


def _typed(names: list[str], n: int) -> list[str]:
    """What users type into the search box: titles cut after 2 letters or more, one in three
    with a typo (two letters swapped) in a word of 5 letters or more."""
    rng = random.Random(11)
    typed = []
    for i in range(n):
        name = rng.choice(names)
        text = name[: rng.randint(2, len(name))].rstrip()
        words = text.split()
        long = [j for j, w in enumerate(words) if len(w) >= 5 and w.isalpha()]
        if i % 3 == 0 and long:
            j = rng.choice(long)
            w = words[j]
            k = rng.randrange(len(w) - 1)
            words[j] = w[:k] + w[k + 1] + w[k] + w[k + 2 :]
        typed.append(" ".join(words) or name[:2])
    return typed


async def _measure_suggest(client: httpx.AsyncClient, figures: Figures, names: list[str]) -> None:
    """Suggestions as users type, once the gateway has the index the worker published."""
    deadline = time.monotonic() + 180
    while True:
        _, response = await _timed_get(client, "/api/v1/search/suggest", q=names[0][:4])
        if response.json()["suggestions"] or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.5)
    for text in _typed(names, 1000):
        seconds, response = await _timed_get(client, "/api/v1/search/suggest", q=text)
        response.raise_for_status()
        figures.suggest.append(seconds)
        figures.suggest_empty += not response.json()["suggestions"]


# --------------------------------------------------------------------------- report


def _row(table: Table, name: str, seconds: list[float], target: str = "") -> None:
    ms = [1000 * s for s in seconds]
    table.add_row(name, *(f"{percentile(ms, q):,.2f}" for q in (50, 95, 99)), str(len(ms)), target)


def _verdict(value: float, limit: float) -> str:
    return f"< {limit:g} ms {'ok' if value < limit else 'MISSED'}"


def report(figures: Figures, titles: int, llm_delay_ms: float) -> Table:
    hits_ms = [1000 * s for s in figures.hits]
    misses_ms = [1000 * s for s in figures.misses]
    suggest_ms = [1000 * s for s in figures.suggest]
    table = Table(
        "measure",
        "p50 ms",
        "p95 ms",
        "p99 ms",
        "n",
        "target",
        title=f"mgw bench search: {titles:,} titles, synthetic vectors, local parser + local model",
    )
    _row(table, "baseline: Redis GET (the floor of a hit)", figures.redis_get)
    _row(table, "baseline: gateway GET /health/live", figures.health)
    _row(
        table,
        "search, result-cache hit (gateway)",
        figures.hits,
        f"p99 {_verdict(percentile(hits_ms, 99), TARGET_HIT_P99_MS)}",
    )
    _row(
        table,
        "search, miss (gateway -> Kafka -> agent -> reply)",
        figures.misses,
        f"p95 {_verdict(percentile(misses_ms, 95), TARGET_MISS_P95_MS)}",
    )
    _row(
        table,
        "  of which in the agent (search_time_ms)",
        [ms / 1000 for ms in figures.miss_server_ms],
    )
    _row(
        table,
        "suggest as you type (gateway, its copy of the agents' index)",
        figures.suggest,
        f"p99 {_verdict(percentile(suggest_ms, 99), TARGET_SUGGEST_P99_MS)}",
    )
    _row(
        table,
        f"baseline: one LLM intent call (loopback, {llm_delay_ms:g} ms delay)",
        figures.llm,
        "what the intent cache saves",
    )
    return table


def stages_table(figures: Figures) -> Table:
    """Where a miss's time goes in the agent, stage by stage (strategies overlap in time)."""
    table = Table("stage of a miss in the agent", "mean ms", title="discovery-search, per miss")
    for stage, label in STAGES.items():
        if stage in figures.stages_ms:
            table.add_row(label, f"{figures.stages_ms[stage]:,.2f}")
    return table


def bench_search(titles: int, n_queries: int, llm_delay_ms: float) -> int:
    from devtools.bench.search_catalog import queries

    processes: list[subprocess.Popen[bytes]] = []
    cleanup = ExitStack()
    try:
        services = cleanup.enter_context(bench_services("search", console))
        workdir, redis_url = services.workdir, services.redis_url
        tag = uuid.uuid4().hex[:6]
        env = {
            "KAFKA_BROKERS": services.broker_url,
            "KAFKA_TOPIC_PREFIX": f"benchsearch{tag}",
            "DATABASE_URL": services.database_url,
            "REDIS_URL": redis_url,
            "REDIS_KEY_PREFIX": f"mgw-bench-search-{tag}",
            "QDRANT_PATH": str(workdir / "qdrant"),
            "LOG_LEVEL": "warning",
            "LOG_FORMAT": "json",
            "RATE_LIMIT_ENABLED": "false",
            "GATEWAY_WORKERS": "1",
            "MGW_ENV_FILE": "/nonexistent/.env",
        }
        with console.status(f"writing {titles:,} titles and their vectors..."):
            names, load_s = asyncio.run(_prepare(env, titles))
        worker_port, gateway_port, gateway_ops = free_port(), free_port(), free_port()
        with console.status("starting the discovery worker and the gateway..."):
            worker_log, gateway_log = workdir / "worker.log", workdir / "gateway.log"
            worker = spawn_mgw(
                ["worker", "discovery"], {**env, "METRICS_PORT": str(worker_port)}, worker_log
            )
            processes.append(worker)
            gateway = spawn_mgw(
                ["gateway"],
                {**env, "GATEWAY_PORT": str(gateway_port), "METRICS_PORT": str(gateway_ops)},
                gateway_log,
            )
            processes.append(gateway)
            wait_ready(f"http://127.0.0.1:{worker_port}/health/ready", worker, worker_log, 120)
            wait_ready(f"http://127.0.0.1:{gateway_port}/health/live", gateway, gateway_log, 60)
        with console.status(f"{n_queries} searches twice, and the baselines..."):
            figures = asyncio.run(
                _measure(
                    f"http://127.0.0.1:{gateway_port}",
                    f"http://127.0.0.1:{worker_port}/metrics",
                    redis_url,
                    queries(n_queries, names),
                    llm_delay_ms / 1000,
                    names,
                )
            )
        figures.load_s = load_s
    finally:
        for process in reversed(processes):
            stop_process(process)
        cleanup.close()
    out = Console(width=max(Console().width, 130))
    out.print(report(figures, titles, llm_delay_ms))
    out.print(stages_table(figures))
    out.print(
        f"Catalog written and its HNSW graph built in {figures.load_s:.0f} s. "
        "Vectors are synthetic (genre centroids + "
        "noise), not embeddings of the titles; query vectors come from the local model, intents "
        "from the local parser. Misses not answered as misses: "
        f"{figures.not_missed}; repeats not answered from the cache: {figures.not_hit} (empty or "
        f"partial pages are not cached); misses with a failed strategy: "
        f"{figures.failed_strategies}; suggestions typed that found nothing: "
        f"{figures.suggest_empty} of {len(figures.suggest)}."
    )
    hit_ok = percentile([1000 * s for s in figures.hits], 99) < TARGET_HIT_P99_MS
    miss_ok = percentile([1000 * s for s in figures.misses], 95) < TARGET_MISS_P95_MS
    suggest_ok = percentile([1000 * s for s in figures.suggest], 99) < TARGET_SUGGEST_P99_MS
    return 0 if hit_ok and miss_ok and suggest_ok else 1
