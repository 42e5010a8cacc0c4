"""Typo candidates two ways on a catalog's vocabulary (migration 0033), as docs/DISCOVERY.md
quotes them: pg_trgm similarity against the symmetric delete index of the word search.

`python -m devtools.bench.relevance_typos DATABASE_URL` (a database with titles, for example
one `mgw bench relevance` is running on): 500 words of 5 letters or more drawn from the
vocabulary with a seed, each typed with one typo (a second in words of 9 letters or more half
the time), kept when the typed word is within the rule of the word it was typed for.
"""

from __future__ import annotations

import asyncio
import random
import sys
import time

import asyncpg
from rapidfuzz.distance import OSA

from agents.discovery import store
from agreements.typo_rules import allowed_typos
from devtools.bench.relevance_catalog import typo


def _median_p95(values: list[float]) -> str:
    ordered = sorted(values)
    return (
        f"p50 {ordered[len(ordered) // 2]:.2f} ms, p95 {ordered[int(0.95 * len(ordered))]:.2f} ms"
    )


async def measure(url: str) -> None:
    pool = await asyncpg.create_pool(url, min_size=1, max_size=2)
    try:
        words = [
            r["word"]
            for r in await pool.fetch("SELECT word FROM search_words WHERE word ~ '^[a-z]{5,}$'")
        ]
        rng = random.Random(3)
        pairs = []
        for word in rng.sample(words, min(500, len(words))):
            typed = typo(word, rng)
            if len(typed) >= 9 and rng.random() < 0.5:
                typed = typo(typed, rng)
            if 1 <= OSA.distance(typed, word) <= allowed_typos(typed):
                pairs.append((typed, word))
        similar = await pool.fetch(
            "SELECT similarity(t, w) AS s FROM unnest($1::text[], $2::text[]) AS x(t, w)",
            [t for t, _ in pairs],
            [w for _, w in pairs],
        )
        found, lookups, scans = 0, [], []
        for typed, word in pairs:
            started = time.perf_counter()
            candidates = await store.word_candidates(pool, [typed])
            lookups.append(1000 * (time.perf_counter() - started))
            found += word in candidates.matches[0]
        for typed, _ in pairs[:200]:
            started = time.perf_counter()
            await pool.fetch("SELECT word FROM search_words WHERE word % $1", typed)
            scans.append(1000 * (time.perf_counter() - started))
        above = sum(r["s"] >= 0.3 for r in similar) / len(similar)
        print(
            f"{len(pairs)} typed words within the rule: trigram similarity >= 0.3 for {above:.3f}; "
            f"the delete index finds {found / len(pairs):.3f}; its lookup {_median_p95(lookups)}; "
            f"the trigram scan of the vocabulary {_median_p95(scans)}"
        )
    finally:
        await pool.close()


if __name__ == "__main__":
    asyncio.run(measure(sys.argv[1]))
