"""The keyword strategy's PostgreSQL query alone (`store.keyword_search`), on `mgw bench
search`'s synthetic catalog and queries, with and without an index, in alternate rounds on the
same scratch database: what migration 0041's partial index of episodes is worth.

    python -m devtools.bench.keyword_sql SERVER_URL [--titles 100000] [--rounds 2]

SERVER_URL: a PostgreSQL server (e.g. postgresql://postgres@127.0.0.1:5432/postgres) where a
scratch database is created, migrated, filled and dropped at the end. Queries run as the agents
run them (prepared, `plan_cache_mode = force_custom_plan`), each query's plan from the local
parser as the discovery agent makes it.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
import uuid

import asyncpg

from agents.discovery import store
from agents.discovery.intent_rules import parse_intent
from agents.discovery.plan import KEYWORD_LIMIT, SearchPlan, plan_search
from agents.framework.db import SERVER_SETTINGS, _init_connection
from agents.framework.migrate import migrate_url
from agents.titles.store import Versioned, upsert_contents
from devtools.bench.search import percentile
from devtools.bench.search_catalog import queries, synthetic_content
from devtools.scratch_db import create_database, drop_database
from schemas.discovery import SearchRequested

INDEX = "content_episodes_idx"
CREATE = f"CREATE INDEX {INDEX} ON content (canonical_id) WHERE content_type = 'episode'"


async def _fill(pool: asyncpg.Pool, titles: int) -> list[str]:
    names: list[str] = []
    batch: list[Versioned] = []
    for content in synthetic_content(titles):
        names.append(content.title)
        batch.append(Versioned(content, uuid.uuid4()))
        if len(batch) == 2000:
            await upsert_contents(pool, batch)
            batch = []
    if batch:
        await upsert_contents(pool, batch)
    await pool.execute("ANALYZE content")
    return names


async def _time(pool: asyncpg.Pool, plans: list[SearchPlan]) -> list[float]:
    laps = []
    for plan in plans:
        started = time.perf_counter()
        await store.keyword_search(pool, plan.text, plan.title_form, plan.filters, KEYWORD_LIMIT)
        laps.append(1000 * (time.perf_counter() - started))
    return laps


async def run(server: str, titles: int, rounds: int) -> None:
    url = await create_database(server, f"mgw_bench_keyword_{uuid.uuid4().hex[:8]}")
    try:
        await migrate_url(url)
        pool = await asyncpg.create_pool(
            url, min_size=1, max_size=2, init=_init_connection, server_settings=SERVER_SETTINGS
        )
        try:
            started = time.perf_counter()
            names = await _fill(pool, titles)
            print(f"{titles:,} titles written in {time.perf_counter() - started:.0f} s")
            stats = await store.catalog_stats(pool)
            plans = [
                plan_search(SearchRequested(query=q, reply_channel="-"), parse_intent(q), stats)
                for q in queries(100, names)
            ]
            plans = [p for p in plans if p.text]
            laps: dict[str, list[float]] = {"with the index": [], "without": []}
            for _ in range(rounds):
                laps["with the index"] += await _time(pool, plans)
                await pool.execute(f"DROP INDEX {INDEX}")
                laps["without"] += await _time(pool, plans)
                await pool.execute(CREATE)
            load = " ".join(f"{x:.2f}" for x in os.getloadavg())
            print(f"{len(plans)} keyword searches x {rounds} rounds, load average {load}")
            for name, ms in laps.items():
                print(
                    f"  {name:15} mean {statistics.mean(ms):6.1f}  p50 {percentile(ms, 50):6.1f}"
                    f"  p95 {percentile(ms, 95):6.1f}  p99 {percentile(ms, 99):6.1f} ms"
                )
        finally:
            await pool.close()
    finally:
        await drop_database(server, url.rsplit("/", 1)[1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("server_url")
    parser.add_argument("--titles", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args(argv)
    asyncio.run(run(args.server_url, args.titles, args.rounds))
    return 0


if __name__ == "__main__":
    sys.exit(main())
