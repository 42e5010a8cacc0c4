"""`mgw bench embed`: how fast the embedder turns catalog text into vectors."""

from __future__ import annotations

import random
import statistics
import time
import uuid
from datetime import UTC, datetime

from agents.adapters.embeddings.base import Embedder, content_text
from schemas.content import CanonicalContent, ContentType

_WORDS = (
    "a detective returns to her hometown where a series of disappearances echoes an old "
    "case while a family of farmers hides a secret and a young pilot crosses the desert "
    "to find the lost city a comedy about rival chefs a war between stars and empires "
    "friendship love betrayal survival in the frozen north haunted house robots music"
).split()
_GENRES = ("drama", "comedy", "thriller", "science_fiction", "documentary", "horror", "romance")


def sample_texts(n: int, seed: int = 7) -> list[str]:
    """Catalog-like texts (title, type, year, genres, a 30-60 word description)."""
    rng = random.Random(seed)
    texts = []
    for i in range(n):
        content = CanonicalContent(
            canonical_id=uuid.UUID(int=i + 1),
            content_type=rng.choice(list(ContentType)),
            title=" ".join(rng.choices(_WORDS, k=3)).title(),
            release_year=rng.randint(1950, 2025),
            genres=rng.sample(_GENRES, k=2),
            description=" ".join(rng.choices(_WORDS, k=rng.randint(30, 60))).capitalize() + ".",
            updated_at=datetime(2025, 1, 1, tzinfo=UTC),
        )
        texts.append(content_text(content))
    return texts


async def bench_embeddings(
    n: int = 256, embedder: Embedder | None = None
) -> dict[str, float | str]:
    """Embed n texts one at a time, then in batches of 64; print and return the rates."""
    owned = embedder is None
    if embedder is None:
        from agents.adapters.embeddings.local import LocalEmbedder

        embedder = LocalEmbedder()
    texts = sample_texts(n)
    try:
        started = time.perf_counter()
        await embedder.embed(texts[:1])  # loads the model, so it is not counted below
        first_s = time.perf_counter() - started

        single: list[float] = []
        for text in texts:
            started = time.perf_counter()
            await embedder.embed([text])
            single.append(time.perf_counter() - started)

        started = time.perf_counter()
        for offset in range(0, n, 64):
            await embedder.embed(texts[offset : offset + 64])
        batch_s = time.perf_counter() - started
    finally:
        if owned:
            await embedder.close()

    result: dict[str, float | str] = {
        "model": embedder.model,
        "dimension": embedder.dimension,
        "texts": n,
        "first_call_s": round(first_s, 3),
        "single_p50_ms": round(statistics.median(single) * 1000, 2),
        "single_texts_per_s": round(n / sum(single), 1),
        "batch64_ms_per_text": round(batch_s / n * 1000, 2),
        "batch64_texts_per_s": round(n / batch_s, 1),
    }
    print(
        f"{result['model']} ({result['dimension']} dims), {n} texts: "
        f"single {result['single_texts_per_s']} texts/s (p50 {result['single_p50_ms']} ms), "
        f"batch of 64 {result['batch64_texts_per_s']} texts/s "
        f"({result['batch64_ms_per_text']} ms per text); first call {result['first_call_s']} s"
    )
    return result
