"""Recommendations count a series once: its episodes are never listed apart, whichever source
found them (the popular titles, the titles users here like)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest

from agents.adapters.vectors.payload import content_payload
from agents.adapters.vectors.store import VectorPoint
from agents.framework.context import AgentContext, ContextHolder
from agents.sona.handlers import recommendations_for
from agents.titles.store import Versioned, upsert_contents
from agreements.read_model import reply_channel
from schemas.content import CanonicalContent
from schemas.sona import RecommendationsRequested
from tests.conftest import Isolated
from tests.sona_catalog import UPDATED, seed, vectors

AT = datetime(2026, 11, 2, 20, tzinfo=UTC)
SERIES = uuid.uuid5(uuid.NAMESPACE_URL, "mgw-test-sona/series")
EPISODES = [uuid.uuid5(uuid.NAMESPACE_URL, f"mgw-test-sona/series/e{n}") for n in range(1, 5)]


def content(cid: uuid.UUID, kind: str, title: str, popularity: float) -> CanonicalContent:
    data: dict[str, Any] = {
        "canonical_id": str(cid),
        "content_type": kind,
        "title": title,
        "genres": ["drama"],
        "runtime_minutes": 50,
        "popularity_score": popularity,
        "availability": [
            {"platform": "netflix", "availability_type": "subscription", "regions": ["US"]}
        ],
        "updated_at": UPDATED.isoformat(),
    }
    return CanonicalContent.model_validate(data)


@pytest.fixture
async def ctx(isolated: Isolated) -> AsyncIterator[AgentContext]:
    holder = ContextHolder(isolated.settings, source="test")
    context = (await holder.get()).for_agent("sona-series-test")
    store = await context.vectors()
    await seed(isolated.pool, store)
    # A series whose episodes are the most popular titles of the catalog and well liked here.
    titles = [content(SERIES, "series", "The Long Series", 900.0)] + [
        content(cid, "episode", f"Chapter {n}", 1000.0 + n) for n, cid in enumerate(EPISODES, 1)
    ]
    await upsert_contents(isolated.pool, [Versioned(c, uuid.uuid4()) for c in titles])
    await isolated.pool.execute(
        "INSERT INTO episodes (canonical_id, series_id, season_number, episode_number) "
        "SELECT unnest($1::uuid[]), $2, 1, generate_subscripts($1::uuid[], 1)",
        EPISODES,
        SERIES,
    )
    await isolated.pool.executemany(
        "INSERT INTO sona_title_viewers (content_id, viewers) VALUES ($1, $2)",
        [(cid, 50) for cid in EPISODES],
    )
    # Vectors like the catalog's dramas, so the vector search finds the episodes too.
    drama = next(v for v in vectors(store.dimension).values())
    await store.upsert([VectorPoint(c.canonical_id, drama, content_payload(c)) for c in titles])
    yield context
    await holder.close()


def request(user: str, **fields: Any) -> RecommendationsRequested:
    return RecommendationsRequested(
        user_id=user, at=AT, reply_channel=reply_channel("x", uuid.uuid4()), **fields
    )


async def test_a_series_is_recommended_once_and_its_episodes_never(ctx: AgentContext) -> None:
    for asked in (request("u-series", region="US"), request("u-series", limit=20)):
        answer = await recommendations_for(ctx, asked)
        ids = [r.canonical_id for r in answer.recommendations]
        assert not set(ids) & set(EPISODES), "an episode was recommended apart from its series"
        assert ids.count(SERIES) == 1, ids
