"""Iterate on recommendation quality in process, on the state a kept `mgw bench
recommend-quality --keep` run stored (its scratch database and vector store): each sampled user's
answer from `recommendations_for` (this checkout's code) with the adapter and without, beside the
co-occurrence and most-popular baselines of the same users, and the time each answer took.

    DATABASE_URL=<kept database> QDRANT_PATH=<kept workdir>/qdrant \\
        python -m devtools.bench.quality_probe --split validation --users 300

Minutes instead of the bench's 24: for choosing on the validation split only (the split must
be the one the kept run replayed, or the history would hold the held-out films).
"""

from __future__ import annotations

import argparse
import ast
import asyncio
import importlib
import json
import os
import random
import time
import uuid
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import redis.asyncio as aioredis

from core.config import settings_with
from devtools.bench import movielens as ml
from devtools.bench.recommend_quality import _canonical_cases, _user_id


def _read_answers(path: Path | None) -> dict[int, list[uuid.UUID]] | None:
    if path is None or not path.exists():
        return None
    saved = json.loads(path.read_text())
    return {int(u): [uuid.UUID(c) for c in ids] for u, ids in saved.items()}


def _write_answers(path: Path, answers: Mapping[int, list[uuid.UUID]]) -> None:
    path.write_text(json.dumps({u: [str(c) for c in ids] for u, ids in answers.items()}))


async def _retrain_fresh(ctx: Any, users: list[str], rounds: int) -> None:
    """Each user's adapter trained again from a fresh start by this checkout's training code,
    `rounds` rounds on their stored rows (the replay trained every 10 events, each round
    continuing from the last): for comparing training designs on one kept state."""
    from agents.sona import store
    from agents.sona.handlers import _retrain

    dim = ctx.settings.embedding.dimension
    started = time.perf_counter()
    for user in users:
        async with ctx.pool.acquire() as conn:
            await conn.execute("DELETE FROM lora_adapters WHERE user_id = $1", user)
            for _ in range(rounds):
                stored = (await store.load_profiles(conn, {user}, dim))[user]
                await _retrain(ctx, conn, user, stored)
    took = time.perf_counter() - started
    print(f"retrained {len(users)} users x {rounds} rounds in {took:.0f} s")


async def _train_population(ctx: Any, options: Mapping[str, Any], seed: int) -> None:
    """Print the population layer's (agents/sona/population.py) pairwise accuracy against plain
    cosine on each user's last liked title, held out of a layer trained on the rest; then train
    the layer answers use on every user's stored rows of the kept state (their training
    histories: the split's held-out films never reached them) and store it, as the
    `sona-population` timer does."""
    from agents.sona import handlers, population

    rows = await ctx.pool.fetch(
        "SELECT user_id, content_id, taste_weight FROM sona_viewings"
        " ORDER BY user_id, watched_at, content_id"
    )
    histories: dict[str, list[tuple[uuid.UUID, float]]] = {}
    for r in rows:
        histories.setdefault(r["user_id"], []).append((r["content_id"], float(r["taste_weight"])))
    likers = {
        r["content_id"]: int(r["viewers"])
        for r in await ctx.pool.fetch("SELECT content_id, viewers FROM sona_title_viewers")
    }
    ids = list({c for h in histories.values() for c, _ in h} | set(likers))
    store = await ctx.vectors()
    vectors: dict[uuid.UUID, Any] = {}
    for start in range(0, len(ids), 1000):
        for cid, (vector, _payload) in (await store.get(ids[start : start + 1000])).items():
            vectors[cid] = np.asarray(vector, dtype=np.float32)
    # Check set: each user's last liked title, as the split holds out the last positives.
    fit: dict[str, list[tuple[uuid.UUID, float]]] = {}
    check: dict[str, list[tuple[uuid.UUID, float]]] = {}
    for user, history in histories.items():
        liked_at = [i for i, (c, w) in enumerate(history) if w > 0 and c in vectors]
        if len(liked_at) < 3:
            fit[user] = history
            continue
        last = liked_at[-1]
        fit[user] = history[:last] + history[last + 1 :]
        check[user] = history
    started = time.perf_counter()
    per = int(options.get("per_positive", 4))
    data = population.triples(fit, vectors, likers, per, seed)
    train_options = {k: v for k, v in options.items() if k != "per_positive"}
    layer = population.train(data, seed=seed, **train_options)
    held = _last_liked_triples(check, vectors, likers, seed + 1)
    print(
        f"population layer: {len(data.positive)} triples, trained in "
        f"{time.perf_counter() - started:.0f} s; pairwise accuracy on fit "
        f"{population.pairwise_accuracy(layer, data):.3f} (cosine "
        f"{population.pairwise_accuracy(None, data):.3f}); on each user's last liked title "
        f"{population.pairwise_accuracy(layer, held):.3f} (cosine "
        f"{population.pairwise_accuracy(None, held):.3f}, {len(held.positive)} triples)"
    )
    version = await handlers.train_population(ctx, force=True)
    print(f"population layer v{version} stored (every user's rows)")


def _last_liked_triples(
    histories: Mapping[str, list[tuple[uuid.UUID, float]]],
    vectors: Mapping[uuid.UUID, Any],
    likers: Mapping[uuid.UUID, int],
    seed: int,
) -> Any:
    from agents.sona import population

    prefs, pos, neg = [], [], []
    rng = np.random.default_rng(seed)
    pool = [c for c, n in likers.items() if n > 0 and c in vectors]
    weights = np.array([likers[c] for c in pool], dtype=np.float64)
    weights /= weights.sum()
    for _, history in sorted(histories.items()):
        kept = [(c, w) for c, w in history if c in vectors and w != 0]
        last = max(i for i, (c, w) in enumerate(kept) if w > 0)
        target = kept[last][0]
        rest = [x for i, x in enumerate(kept) if i != last]
        total = sum(w * vectors[c].astype(np.float64) for c, w in rest)
        norm = float(np.linalg.norm(total))
        if norm < 1e-9:
            continue
        mine = {c for c, _ in kept}
        # The layer's input as a request just before the held-out title would give it.
        recent = [vectors[c] for c, w in reversed(kept[:last]) if w > 0]
        p = population.layer_input(total / norm, recent)
        for i in rng.choice(len(pool), size=40, p=weights):
            if pool[i] in mine:
                continue
            prefs.append(p)
            pos.append(vectors[target])
            neg.append(vectors[pool[i]])
    return population.Triples(
        np.asarray(prefs, dtype=np.float32),
        np.asarray(pos, dtype=np.float32),
        np.asarray(neg, dtype=np.float32),
    )


async def _probe(
    split: str,
    users: int,
    seed: int,
    adapter_off: bool,
    retrain: int = 0,
    profile_answers: Path | None = None,
    population_train: bool = False,
    population_options: Mapping[str, Any] | None = None,
) -> None:
    from agents.framework.context import AgentContext
    from agents.framework.db import create_pool
    from agents.sona.handlers import recommendations_for
    from core.publisher import Publisher
    from schemas.sona import RecommendationsRequested

    env = {
        "DATABASE_URL": os.environ["DATABASE_URL"],
        "QDRANT_PATH": os.environ["QDRANT_PATH"],
        "REDIS_URL": os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"),
        "MGW_ENV_FILE": "/nonexistent/.env",
        "MGW_STACK_FILE": "none",
        "KAFKA_TOPIC_PREFIX": f"probe{uuid.uuid4().hex[:6]}",
    }
    settings = settings_with(env)
    data = ml.load()
    cases = ml.split(data, holdout=3, which=split, seed=seed)  # type: ignore[arg-type]
    pool = await create_pool(settings.postgres)
    rows = await pool.fetch(
        "SELECT platform_item_id, canonical_id FROM entity_mappings WHERE platform = $1",
        ml.PLATFORM,
    )
    canonical = {int(r["platform_item_id"]): r["canonical_id"] for r in rows}
    evaluated = [c for c in _canonical_cases(cases, canonical) if not c.cold]
    picked = random.Random(seed).sample(evaluated, min(users, len(evaluated)))
    picked.sort(key=lambda c: c.user)
    redis = aioredis.from_url(settings.redis.require_url())
    ctx = AgentContext(
        settings=settings,
        pool=pool,
        publisher=Publisher(settings.kafka, source="quality-probe"),
        redis=redis,
    )
    off = replace(ctx, settings=settings_with({**env, "SONA_ADAPTER_ENABLED": "false"}))
    if population_train:
        await _train_population(ctx, population_options or {}, seed)
        await redis.aclose()
        await pool.close()
        return
    if retrain:
        await _retrain_fresh(ctx, [_user_id(c.user) for c in picked], retrain)
    answers: dict[str, dict[int, list[uuid.UUID]]] = {"sona": {}, "profile": {}}
    times: list[float] = []
    # The answers without the adapter do not depend on how it is trained: asked once per state.
    known_profile = _read_answers(profile_answers)
    for case in picked:
        request = RecommendationsRequested(
            user_id=_user_id(case.user), at=case.asked_at, limit=10, reply_channel="probe"
        )
        for label, c in (("sona", ctx), ("profile", off))[: 2 if adapter_off else 1]:
            if label == "profile" and known_profile is not None:
                answers[label][case.user] = known_profile[case.user]
                continue
            started = time.perf_counter()
            response = await recommendations_for(c, request)
            if label == "sona":
                times.append((time.perf_counter() - started) * 1000)
            answers[label][case.user] = [r.canonical_id for r in response.recommendations]
    await redis.aclose()
    if profile_answers is not None and known_profile is None and adapter_off:
        _write_answers(profile_answers, answers["profile"])
    await pool.close()
    for label, films_of in (
        ("co-occurrence", ml.co_occurrence(cases)),
        ("popular", ml.most_popular(cases)),
    ):
        answers[label] = {
            u: list(dict.fromkeys(canonical[f] for f in fs)) for u, fs in films_of.items()
        }
    genres: Mapping[uuid.UUID, frozenset[str]] = {}
    scores = {
        label: ml.score(found, picked, genres)  # type: ignore[arg-type]
        for label, found in answers.items()
        if found
    }
    for label, s in scores.items():
        print(f"{label:14} HR@10 {s.hr:.3f}  NDCG@10 {s.ndcg:.4f}  ({s.users} users)")
    if adapter_off:
        low, high = ml.paired_difference(scores["sona"].gains, scores["profile"].gains, seed)
        hlow, hhigh = ml.paired_difference(scores["sona"].hits, scores["profile"].hits, seed)
        print(f"adapter gain: NDCG [{low:+.4f}, {high:+.4f}]  HR [{hlow:+.3f}, {hhigh:+.3f}]")
    clow, chigh = ml.paired_difference(scores["sona"].hits, scores["co-occurrence"].hits, seed)
    print(f"SONA - co-occurrence HR [{clow:+.3f}, {chigh:+.3f}]")
    p = np.percentile(times, [50, 95, 99])
    print(f"recommendations_for: p50 {p[0]:.1f} ms, p95 {p[1]:.1f} ms, p99 {p[2]:.1f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--split", default="validation", choices=["validation", "test"])
    parser.add_argument("--users", type=int, default=300)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--no-adapter-off", action="store_true", help="Skip the answers without the adapter."
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="MODULE.NAME=VALUE",
        help="Override a constant of agents.sona.MODULE (a Python literal), e.g. "
        "candidates_store.PEERS=100",
    )
    parser.add_argument(
        "--retrain",
        type=int,
        default=0,
        metavar="ROUNDS",
        help="Train the sampled users' adapters again, from fresh, with this checkout's code "
        "(ROUNDS rounds each) before asking; the kept database's adapters are replaced.",
    )
    parser.add_argument(
        "--profile-answers",
        type=Path,
        default=None,
        help="A JSON file of the answers without the adapter: read when it exists (those "
        "answers are not asked again), else written.",
    )
    parser.add_argument(
        "--population-train",
        action="store_true",
        help="Train the population layer on the kept state, store it (answers then use it "
        "while the adapter is on) and stop.",
    )
    parser.add_argument(
        "--population-option",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="An option of population.train (rank, epochs, lr, l2) or per_positive.",
    )
    args = parser.parse_args()
    for assignment in args.set:
        target, value = assignment.split("=", 1)
        module, name = target.rsplit(".", 1)
        found = importlib.import_module(f"agents.sona.{module}")
        if not hasattr(found, name):
            parser.error(f"agents.sona.{module} has no {name}")
        setattr(found, name, ast.literal_eval(value))
    asyncio.run(
        _probe(
            args.split,
            args.users,
            args.seed,
            not args.no_adapter_off,
            args.retrain,
            args.profile_answers,
            args.population_train,
            {k: ast.literal_eval(v) for k, v in (o.split("=", 1) for o in args.population_option)},
        )
    )


if __name__ == "__main__":
    main()
