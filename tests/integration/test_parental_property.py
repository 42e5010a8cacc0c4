"""The property of parental controls against real parts: over generated catalogs (titles of
random maturity ratings and genres, written to PostgreSQL and embedded into the vector store)
and generated queries and profile limits, a kids profile never receives a title beyond its
limits from the search agent, the SONA agent's recommendations, the suggestion index, or a
title's document read directly. The catalog grows with every example (each adds its titles),
so later examples search among earlier ones' titles too.

Hypothesis drives a test of its own event loop (its examples are synchronous calls); the
discovery engine, the SONA handler and the suggestion index are the workers' own code over
this test's PostgreSQL database, Redis prefix and vector store.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from typing import Any

import numpy as np
import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agents.adapters.embeddings.base import content_text
from agents.adapters.vectors.payload import content_payload
from agents.adapters.vectors.store import VectorPoint
from agents.discovery.handlers import DISCOVERY, search
from agents.discovery.suggest_store import build_index
from agents.framework.context import AgentContext, ContextHolder
from agents.sona.handlers import recommendations_for
from agents.titles.store import Versioned, upsert_contents
from agreements.discovery_cache import request_results_key
from agreements.parental_controls import refusal, title_refusal, within_limits
from agreements.suggest_index import SuggestIndex
from gateway.routes.suggest import suggestions_for
from schemas.accounts import ProfileLimits
from schemas.content import CanonicalContent, MaturityRating
from schemas.discovery import SearchFilters, SearchRequested, SearchResponse
from schemas.sona import RecommendationsRequested
from tests.conftest import Isolated
from tests.discovery.catalog import Title

WORDS = ("dragon", "robot", "pirate", "castle", "ghost", "ninja", "forest", "ocean")
GENRES = ("animation", "comedy", "family", "horror", "crime", "thriller", "drama", "adventure")
RATINGS = [*MaturityRating, None]
# The limits a kids profile has: a rating limit always, blocked genres sometimes.
KIDS_LIMITS = st.builds(
    ProfileLimits,
    content_rating_limit=st.sampled_from(
        [MaturityRating.G, MaturityRating.PG, MaturityRating.TV_Y7, MaturityRating.PG_13]
    ),
    blocked_genres=st.lists(st.sampled_from(GENRES), max_size=2, unique=True),
)
TITLES = st.builds(
    lambda words, genres, rating, popularity, cid: (
        cid,
        Title(
            " ".join(words).title(),
            2000,
            tuple(genres),
            f"A story of a {' and a '.join(words)}.",
            (("netflix", ("US", "GB")),),
            rating.value if rating is not None else None,
            6.5,
            popularity,
            tuple(words),
        ),
    ),
    st.lists(st.sampled_from(WORDS), min_size=1, max_size=3, unique=True),
    st.lists(st.sampled_from(GENRES), min_size=1, max_size=3, unique=True),
    st.sampled_from(RATINGS),
    st.floats(min_value=1, max_value=100),
    st.uuids(version=4),
)
QUERIES = st.lists(
    st.one_of(
        st.sampled_from(WORDS),
        st.sampled_from(GENRES).map(lambda g: f"{g} movies"),
        st.sampled_from(WORDS).map(lambda w: f"something like {w}"),
        st.just(""),
    ),
    min_size=1,
    max_size=3,
)


class World:
    """The test's event loop, context and every title written so far."""

    def __init__(self, isolated: Isolated) -> None:
        self.loop = asyncio.new_event_loop()
        self.holder = ContextHolder(isolated.settings, source="test")
        self.ctx: AgentContext = self.loop.run_until_complete(self.holder.get()).for_agent("t")
        self.titles: dict[uuid.UUID, CanonicalContent] = {}
        self.adult_saw_beyond = 0
        self.kid_got = 0
        self.kid_recs = 0
        self.kid_suggestions = 0

    def run(self, coroutine: Any) -> Any:
        return self.loop.run_until_complete(coroutine)

    def close(self) -> None:
        self.run(self.holder.close())
        self.loop.close()

    async def add(self, generated: list[tuple[uuid.UUID, Title]]) -> None:
        contents = [
            t.content(canonical_id=str(cid)) for cid, t in generated if cid not in self.titles
        ]
        if not contents:
            return
        await upsert_contents(self.ctx.pool, [Versioned(c, uuid.uuid4()) for c in contents])
        embedder = await self.ctx.embedder()
        matrix = await embedder.embed([content_text(c) for c in contents])
        await (await self.ctx.vectors()).upsert(
            [
                VectorPoint(c.canonical_id, np.asarray(v), content_payload(c))
                for c, v in zip(contents, matrix, strict=True)
            ]
        )
        self.titles.update({c.canonical_id: c for c in contents})

    def beyond(self, canonical_id: uuid.UUID, limits: ProfileLimits) -> str | None:
        title = self.titles[canonical_id]
        rating = title.maturity_rating.value if title.maturity_rating else None
        return refusal(rating, title.genres, limits)

    async def check(self, queries: list[str], limits: ProfileLimits, user: str) -> None:
        engine = self.ctx.use(DISCOVERY)
        prefix = self.ctx.prefix
        for query in queries:
            for filters in (within_limits(SearchFilters(), limits), SearchFilters()):
                request = SearchRequested(
                    query=query or "movies", filters=filters, reply_channel="x", page_size=50
                )
                body = SearchResponse.model_validate_json(
                    await search(engine, request, request_results_key(prefix, request))
                )
                found = [r.canonical_id for r in body.results]
                if filters == SearchFilters():
                    self.adult_saw_beyond += sum(1 for c in found if self.beyond(c, limits))
                    continue
                self.kid_got += len(found)
                for cid in found:
                    assert self.beyond(cid, limits) is None, (query, limits, self.titles[cid])
        # Recommendations for a kids profile of an account with no history.
        at = datetime(2026, 12, 6, 19, tzinfo=UTC)
        answer = await recommendations_for(
            self.ctx,
            RecommendationsRequested(user_id=user, at=at, reply_channel="x", limits=limits),
        )
        self.kid_recs += len(answer.recommendations)
        for rec in answer.recommendations:
            assert self.beyond(rec.canonical_id, limits) is None, (limits, rec)
        # Suggestions: the index the discovery worker publishes, filtered as the gateway does.
        index = SuggestIndex.decode(await build_index(self.ctx.pool))
        for query in [*queries, *WORDS]:
            for entry in suggestions_for(index, query[:3] or "a", limits):
                if entry.kind == "title":
                    self.kid_suggestions += 1
                    assert self.beyond(uuid.UUID(entry.canonical_id), limits) is None
        # A title read directly: the stored document, as the read model holds it.
        for cid in self.titles:
            doc = await self.ctx.pool.fetchval(
                "SELECT doc::text FROM content WHERE canonical_id = $1", cid
            )
            assert (title_refusal(orjson.loads(doc), limits) is None) == (
                self.beyond(cid, limits) is None
            )


def test_a_kids_profile_never_receives_a_title_beyond_its_limits(isolated: Isolated) -> None:
    world = World(isolated)
    try:

        @settings(
            max_examples=25,
            deadline=None,
            suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
        )
        @given(
            catalog=st.lists(TITLES, min_size=1, max_size=6),
            queries=QUERIES,
            limits=KIDS_LIMITS,
        )
        def example(
            catalog: list[tuple[uuid.UUID, Title]], queries: list[str], limits: ProfileLimits
        ) -> None:
            world.run(world.add(catalog))
            world.run(world.check(queries, limits, f"kid-{uuid.uuid4().hex[:6]}"))

        example()
    finally:
        world.close()
    # Not vacuous: the same searches without the limits found titles beyond them, and the
    # limited ones found titles.
    assert world.adult_saw_beyond > 0
    assert world.kid_got > 0 and world.kid_recs > 0 and world.kid_suggestions > 0
