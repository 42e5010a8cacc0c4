"""Runs a search plan's strategies against PostgreSQL, the vector store and the embedder, all
at once, each within DISCOVERY_STRATEGY_TIMEOUT_S (a browse, alone, within
DISCOVERY_SEARCH_TIMEOUT_S); then reads the payloads of what they found within what is left of
DISCOVERY_SEARCH_TIMEOUT_S.

A strategy that fails or runs out of time is reported and left out; the others answer alone.
When the payloads cannot be read from PostgreSQL, the vector store's own payloads stand in
(`degraded`): conditions they cannot show (rating, maturity) then exclude the title, as an
unknown value fails a bound, and the response is not cached.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import asyncpg
import numpy as np
from loguru import logger
from prometheus_client import Counter

from agents.adapters.embeddings.base import Embedder
from agents.adapters.vectors.store import ScoredPoint, VectorFilter, VectorStore
from agents.discovery import store
from agents.discovery.cache_store import DiscoveryCache, normalized_text
from agents.discovery.fusion import Hit
from agents.discovery.plan import KEYWORD_LIMIT, REFERENCE_MIN_SIMILARITY, BrowseWindow, SearchPlan
from agents.discovery.ranking import BrowsePage, Retrieved, close_enough
from agents.titles.names import normalize_title
from core.config import DiscoverySettings
from core.observability.stages import observe, timed
from schemas.discovery import SearchFilters, Strategy

STRATEGY_FAILURES = Counter(
    "mgw_discovery_strategy_failures_total",
    "Search strategies left out of an answer, by strategy and reason (timeout, error)",
    ["strategy", "reason"],
)
# Reading payloads gets at least this long, however much of the search budget is left.
MIN_PAYLOAD_BUDGET_S = 0.05
# The agent whose stage timings (mgw_agent_stage_duration_seconds) a search records: one stage
# per strategy, the query embedding, and the payloads. They overlap: strategies run at once.
SEARCH_AGENT = "discovery-search"

Getter = Callable[[], Awaitable[Any]]


def vector_filter(filters: SearchFilters, exclude: Sequence[uuid.UUID] = ()) -> VectorFilter:
    """The conditions the vector store can check itself (its payload has no rating or
    maturity; those are checked on the payloads afterwards)."""
    years = filters.year_range
    return VectorFilter(
        genres=filters.genres,
        platforms=filters.platforms,
        regions=[filters.region] if filters.region else [],
        year_min=years[0] if years else None,
        year_max=years[1] if years else None,
        exclude_ids=list(exclude),
        exclude_genres=filters.blocked_genres,
    )


class Retriever:
    def __init__(
        self,
        pool: asyncpg.Pool,
        vectors: Getter,
        embedder: Getter,
        cache: DiscoveryCache,
        settings: DiscoverySettings,
    ) -> None:
        self._pool = pool
        self._vectors = vectors
        self._embedder = embedder
        self._cache = cache
        self._settings = settings

    async def query_vector(self, text: str) -> np.ndarray:
        """The search words' embedding, from the cache when it has it."""
        embedder: Embedder = await self._embedder()
        normalized = normalized_text(text)
        cached = await self._cache.get_embedding(normalized, embedder.model, embedder.dimension)
        if cached is not None:
            return cached
        with timed(SEARCH_AGENT, "embed"):
            vector = (await embedder.embed([normalized]))[0]
        await self._cache.set_embedding(normalized, embedder.model, vector)
        return vector

    async def _nearest(
        self, vector: np.ndarray, plan: SearchPlan, exclude: Sequence[uuid.UUID] = ()
    ) -> list[ScoredPoint]:
        vectors: VectorStore = await self._vectors()
        if plan.vector.filter_in_store:
            flt = vector_filter(plan.filters, exclude)
        else:
            # Loose filters: the nearest titles unfiltered, checked afterwards (docs/DOMAIN.md).
            flt = VectorFilter(exclude_ids=list(exclude)) if exclude else None
        found = await vectors.search(vector, plan.vector.fetch_k, flt)
        return found[: close_enough([p.score for p in found])]

    async def _vector(self, plan: SearchPlan) -> list[ScoredPoint]:
        return await self._nearest(await self.query_vector(plan.text), plan)

    async def _keyword(self, plan: SearchPlan) -> list[uuid.UUID]:
        found = await store.keyword_search(
            self._pool, plan.text, plan.title_form, plan.filters, KEYWORD_LIMIT
        )
        return [cid for cid, _ in found]

    async def _graph(self, plan: SearchPlan) -> tuple[list[ScoredPoint], dict[uuid.UUID, str]]:
        """Titles nearest to the referenced titles' own vectors, and the referenced titles."""
        forms = {normalize_title(r): r for r in plan.references}
        named = await store.resolve_references(self._pool, list(forms), REFERENCE_MIN_SIMILARITY)
        references = {cid: forms[form] for form, cid in named.items()}
        ids = list(references)
        if not ids:
            return [], {}
        vectors: VectorStore = await self._vectors()
        stored = await vectors.get(ids)
        lists = await asyncio.gather(
            *(self._nearest(vector, plan, exclude=ids) for vector, _ in stored.values())
        )
        # Several references: take turns, so each reference's nearest titles lead the list.
        merged: dict[uuid.UUID, ScoredPoint] = {}
        for rank in range(max((len(found) for found in lists), default=0)):
            for found in lists:
                if rank < len(found) and found[rank].id not in merged:
                    merged[found[rank].id] = found[rank]
        return list(merged.values()), references

    async def _browse(self, window: BrowseWindow, filters: SearchFilters) -> BrowsePage:
        return await store.browse(self._pool, filters, window.offset, window.limit)

    async def _timed(self, strategy: Strategy, work: Awaitable[Any], limit_s: float) -> Any:
        started = time.perf_counter()
        try:
            async with asyncio.timeout(limit_s):
                found = await work
            observe(SEARCH_AGENT, strategy, time.perf_counter() - started)
            return found
        except TimeoutError:
            STRATEGY_FAILURES.labels(strategy, "timeout").inc()
            logger.warning(
                "search strategy {} took longer than {:g} s; answering without it",
                strategy,
                limit_s,
            )
            raise
        except Exception as exc:
            STRATEGY_FAILURES.labels(strategy, "error").inc()
            logger.warning(
                "search strategy {} failed ({}: {}); answering without it",
                strategy,
                type(exc).__name__,
                str(exc)[:300],
            )
            raise

    async def retrieve(self, plan: SearchPlan) -> Retrieved:
        started = time.monotonic()
        work: dict[Strategy, Awaitable[Any]] = {}
        if plan.text:
            work["vector"] = self._vector(plan)
            work["keyword"] = self._keyword(plan)
        if plan.references:
            work["graph"] = self._graph(plan)
        if plan.browse:
            work["popularity"] = self._browse(plan.browse, plan.filters)
        # A browse runs alone, and counts every title passing the filters: it has the time of
        # the whole search, where strategies running side by side have one share each.
        limit_s = (
            self._settings.search_timeout_s if plan.browse else self._settings.strategy_timeout_s
        )
        outcomes = await asyncio.gather(
            *(self._timed(s, w, limit_s) for s, w in work.items()), return_exceptions=True
        )
        rankings: dict[Strategy, list[Hit]] = {}
        failed: list[Strategy] = []
        points: dict[uuid.UUID, ScoredPoint] = {}
        references: dict[uuid.UUID, str] = {}
        browse: BrowsePage | None = None
        for strategy, outcome in zip(work, outcomes, strict=True):
            if isinstance(outcome, BaseException):
                if not isinstance(outcome, Exception):
                    raise outcome  # cancellation and the like are not a strategy's failure
                failed.append(strategy)
                continue
            if strategy == "graph":
                outcome, references = outcome
            if isinstance(outcome, BrowsePage):
                browse, outcome = outcome, list(outcome.ids)
            if outcome and isinstance(outcome[0], ScoredPoint):
                points.update((p.id, p) for p in outcome)
                outcome = [p.id for p in outcome]
            rankings[strategy] = [Hit(cid) for cid in outcome]
        found = list(dict.fromkeys(h.canonical_id for hits in rankings.values() for h in hits))
        budget = max(
            MIN_PAYLOAD_BUDGET_S,
            self._settings.search_timeout_s - (time.monotonic() - started),
        )
        try:
            async with asyncio.timeout(budget):
                with timed(SEARCH_AGENT, "payloads"):
                    payloads: dict[uuid.UUID, Any] = await store.payloads(
                        self._pool, [*found, *references]
                    )
            degraded = False
        except (TimeoutError, OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            logger.warning(
                "payloads of found titles unreadable ({}); using the vector store's",
                type(exc).__name__,
            )
            payloads = {cid: point.payload for cid, point in points.items()}
            degraded = True
            if browse is not None:
                # A browse's titles come from PostgreSQL alone: no payload stands in for them.
                browse = None
                del rankings["popularity"]
                failed.append("popularity")
        return Retrieved(
            rankings=rankings,
            failed=failed,
            payloads=payloads,
            references=references,
            degraded=degraded,
            browse=browse,
        )
