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
from dataclasses import dataclass
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
from agents.discovery.plan import (
    KEYWORD_LIMIT,
    REFERENCE_MIN_SIMILARITY,
    BrowseWindow,
    SearchPlan,
    by_words,
)
from agents.discovery.ranking import BrowsePage, Retrieved, close_enough
from agents.discovery.words import (
    credit_reason,
    credit_roles,
    numbers_to_keep,
    rank_people,
    rank_titles,
)
from agents.titles.names import normalize_title
from core.config import DiscoverySettings
from core.observability.stages import observe, timed
from schemas.discovery import SearchFilters, Strategy

STRATEGY_FAILURES = Counter(
    "mgw_discovery_strategy_failures_total",
    "Search strategies left out of an answer, by strategy and reason (timeout, error)",
    ["strategy", "reason"],
)
# Titles the word search reads before ranking them (the query's own title and the shortest
# first), and credits: every title of a person with many, up to this many.
WORD_FETCH_LIMIT = 1000
PEOPLE_FETCH_LIMIT = 300
TITLE_REASON = "title matches your query"


@dataclass(frozen=True)
class WordHits:
    """The keyword strategy's titles, and those of them the word search matched, in order."""

    hits: list[Hit]
    word_order: list[uuid.UUID]
    typed: bool = False  # matched by the words as typed, under the request's own filters
    people: bool = False  # matched by credits: the query names people, whose titles it wants


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
        # An episode stands for its series (agents/discovery/series.py).
        content_types=[
            *filters.content_types,
            *(["episode"] if "series" in filters.content_types else []),
        ],
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
            # Loose filters: the nearest titles unfiltered, checked afterwards (docs/RULES.md).
            flt = VectorFilter(exclude_ids=list(exclude)) if exclude else None
        found = await vectors.search(vector, plan.vector.fetch_k, flt)
        return found[: close_enough([p.score for p in found])]

    async def _vector(self, plan: SearchPlan) -> list[ScoredPoint]:
        return await self._nearest(await self.query_vector(plan.text), plan)

    async def _keyword(self, plan: SearchPlan) -> WordHits:
        """The typo-tolerant word search's titles first (their own words, then their credits),
        then full text and trigram similarity's."""
        matched, found = await asyncio.gather(
            self._words(plan),
            store.keyword_search(
                self._pool, plan.text, plan.title_form, plan.filters, KEYWORD_LIMIT
            ),
        )
        return WordHits(
            [*matched.hits, *(Hit(cid) for cid, _ in found)],
            matched.word_order,
            typed=matched.typed,
            people=matched.people,
        )

    async def _words(self, plan: SearchPlan) -> WordHits:
        """Titles holding every query word within its typos, by the ranking rules: the words
        as typed (under the request's own filters), else those the filters left; else the
        titles of the people the words name."""
        attempts = (
            (plan.words, plan.title_filters, True),
            (plan.fallback_words, plan.filters, False),
        )
        for words, filters, as_typed in attempts:
            if not words or (
                not as_typed and words == plan.words and filters == plan.title_filters
            ):
                continue
            query = await store.word_candidates(self._pool, list(words))
            rows = await store.titles_with_words(
                self._pool, query, " ".join(words), filters, WORD_FETCH_LIMIT
            )
            titles = rank_titles(
                query, rows, () if as_typed else numbers_to_keep(plan.words, words)
            )
            if titles:
                hits = [Hit(cid, TITLE_REASON) for cid, _ in titles[:KEYWORD_LIMIT]]
                return WordHits(hits, [h.canonical_id for h in hits], typed=as_typed)
        if not plan.fallback_words:
            return WordHits([], [])
        query = await store.word_candidates(self._pool, list(plan.fallback_words))
        credits = await store.people_with_words(
            self._pool, query, credit_roles(plan.words), plan.filters, PEOPLE_FETCH_LIMIT
        )
        ranked = rank_people(query, credits)
        hits = [Hit(cid, credit_reason(role, name)) for cid, role, name in ranked]
        return WordHits(hits, [h.canonical_id for h in hits], people=bool(hits))

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
        # The facets get what is left of the browse's time once the page query is sent.
        counts_within_s = max(0.0, self._settings.search_timeout_s - MIN_PAYLOAD_BUDGET_S)
        return await store.browse(self._pool, filters, window.offset, window.limit, counts_within_s)

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
        if (
            plan.browse
            and plan.words
            and await store.title_named(self._pool, " ".join(plan.words), plan.title_filters)
        ):
            plan = by_words(plan)
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
        words = WordHits([], [])
        for strategy, outcome in zip(work, outcomes, strict=True):
            if isinstance(outcome, BaseException):
                if not isinstance(outcome, Exception):
                    raise outcome  # cancellation and the like are not a strategy's failure
                failed.append(strategy)
                continue
            if strategy == "graph":
                outcome, references = outcome
            if isinstance(outcome, WordHits):
                words = outcome
                rankings[strategy] = outcome.hits
                continue
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
            word_order=words.word_order,
            typed_titles=words.word_order if words.typed else (),
            people_only=words.people,
        )
