"""SONA's feedback and the users it must never leave stuck, against the real PostgreSQL, Redis,
broker and vector store (the handlers, no Faust): a viewing of a title embedded only later,
ratings and dismissals, and the hourly pattern on the user's own clock."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest

from agents.adapters.vectors.payload import content_payload
from agents.adapters.vectors.store import VectorPoint
from agents.framework.context import AgentContext, ContextHolder
from agents.sona import store
from agents.sona.handlers import (
    fold_new_vectors,
    recommendations_for,
    train_from_feedback,
    train_from_progress,
)
from agents.sync.clock import to_physical_us
from agents.titles.store import Versioned, upsert_contents
from agreements.read_model import reply_channel
from agreements.sona_cache import read_recommendations, store_recommendations
from schemas.content import MetadataEnriched
from schemas.envelope import Envelope, wrap
from schemas.sona import ContentDismissed, ContentRated, RecommendationsRequested
from schemas.sync import HLC, ProgressUpdate
from schemas.time_zone import zone_of
from tests.conftest import Isolated
from tests.sona_catalog import BY_GENRE, GENRE_OF, Title, seed

DAY = datetime(2026, 11, 2, tzinfo=UTC)
LATE = [Title(f"late comedy {i:02d}", "comedy", 95, 3.0) for i in range(12)]


@pytest.fixture
async def ctx(isolated: Isolated) -> AsyncIterator[AgentContext]:
    holder = ContextHolder(isolated.settings, source="test")
    context = (await holder.get()).for_agent("sona-test")
    await seed(isolated.pool, await context.vectors())
    yield context
    await holder.close()


def progress(
    user: str, content_id: uuid.UUID, at: datetime, time_zone: str | None = None
) -> Envelope[Any]:
    payload = ProgressUpdate(
        user_id=user,
        content_id=content_id,
        position_seconds=3600,
        duration_seconds=3600,
        state="stopped",
        timestamp=HLC(physical_us=to_physical_us(at)),
        device_id="tv-1",
        time_zone=time_zone,
    )
    return wrap(payload, key=user, source="test")


def rated(user: str, content_id: uuid.UUID, rating: int, at: datetime) -> Envelope[Any]:
    payload = ContentRated(user_id=user, content_id=content_id, rating=rating, timestamp=at)
    return wrap(payload, key=user, source="test")


def dismissed(user: str, content_id: uuid.UUID, at: datetime) -> Envelope[Any]:
    payload = ContentDismissed(user_id=user, content_id=content_id, timestamp=at)
    return wrap(payload, key=user, source="test")


def request(user: str, at: datetime, **fields: Any) -> RecommendationsRequested:
    return RecommendationsRequested(
        user_id=user, at=at, reply_channel=reply_channel("x", uuid.uuid4()), **fields
    )


async def test_a_viewing_before_its_vector_is_folded_in_when_the_vector_arrives(
    ctx: AgentContext, isolated: Isolated
) -> None:
    """The race of a new user under `mgw up`: titles finished before enrichment embedded them.
    The user is answered meanwhile (their genres), and the vectors join their taste on arrival."""
    user = "u-race"
    await upsert_contents(isolated.pool, [Versioned(t.content(), uuid.uuid4()) for t in LATE])
    await train_from_progress(
        ctx,
        [
            progress(user, t.canonical_id, DAY + timedelta(hours=20, minutes=i))
            for i, t in enumerate(LATE)
        ],
    )
    stored = (await store.load_profiles(ctx.pool, [user], 384))[user]
    assert not stored.profile.has_taste  # no vector yet: nothing to fold
    assert stored.events_since_training == 12  # due, but no taste to train against
    assert await store.adapter_versions(ctx.pool, user) == []

    waiting = await recommendations_for(ctx, request(user, DAY + timedelta(hours=21)))
    top = [GENRE_OF[r.canonical_id] for r in waiting.recommendations[:5]]
    assert top == ["comedy"] * 5, top  # the genres they watched, not a crash
    cached = request(user, DAY + timedelta(hours=21), region="US")
    await store_recommendations(ctx.redis, ctx.prefix, cached, b"{}", 0, 60)

    vectors = await ctx.vectors()
    known = BY_GENRE["comedy"][0].canonical_id
    comedy = np.asarray((await vectors.get([known]))[known][0])
    await vectors.upsert(
        [VectorPoint(t.canonical_id, comedy, content_payload(t.content())) for t in LATE]
    )
    enriched = [
        wrap(
            MetadataEnriched(
                canonical_id=t.canonical_id,
                source_version=DAY,
                data_quality_score=0.5,
                embedding_model="test",
                dimension=384,
            ),
            key=str(t.canonical_id),
            source="test",
        )
        for t in LATE
    ]
    await fold_new_vectors(ctx, enriched)
    stored = (await store.load_profiles(ctx.pool, [user], 384))[user]
    assert stored.profile.has_taste
    assert float(stored.profile.preference @ comedy) == pytest.approx(1.0, abs=1e-4)
    assert await store.adapter_versions(ctx.pool, user) == [1]  # the round that was waiting
    assert await read_recommendations(ctx.redis, ctx.prefix, cached) is None  # taste changed

    # The enrichment event again (a redelivery, the sweep): nothing moves.
    await fold_new_vectors(ctx, enriched)
    again = (await store.load_profiles(ctx.pool, [user], 384))[user]
    assert np.array_equal(again.profile.taste, stored.profile.taste)
    assert await store.adapter_versions(ctx.pool, user) == [1]
    answer = await recommendations_for(ctx, request(user, DAY + timedelta(hours=21)))
    assert answer.adapter_version == 1
    # The taste now names what the user watched.
    reasons = [reason for r in answer.recommendations for reason in r.reasons]
    assert any(reason.startswith("because you watched late comedy") for reason in reasons), reasons


async def test_a_user_never_seen_is_answered_from_what_is_popular(ctx: AgentContext) -> None:
    answer = await recommendations_for(ctx, request("u-nobody", DAY + timedelta(hours=20)))
    assert answer.adapter_version is None
    assert len(answer.recommendations) == 20


async def test_a_one_star_rating_pushes_the_taste_away_from_the_title(ctx: AgentContext) -> None:
    liked, hated = BY_GENRE["comedy"][0], BY_GENRE["horror"][0]
    at = DAY + timedelta(hours=20)
    for user, rating in (("u-rates-well", 5), ("u-rates-badly", 1)):
        await train_from_progress(
            ctx, [progress(user, liked.canonical_id, at), progress(user, hated.canonical_id, at)]
        )
        await train_from_feedback(ctx, [rated(user, hated.canonical_id, rating, at)])
    vectors = await ctx.vectors()
    found = await vectors.get([hated.canonical_id])
    horror = np.asarray(found[hated.canonical_id][0])
    profiles = await store.load_profiles(ctx.pool, ["u-rates-well", "u-rates-badly"], 384)
    assert float(profiles["u-rates-well"].profile.preference @ horror) > 0.5
    assert float(profiles["u-rates-badly"].profile.preference @ horror) < 0
    # The latest rating counts, whatever order they arrive in; a rating again changes nothing.
    user = "u-rates-badly"
    await train_from_feedback(ctx, [rated(user, hated.canonical_id, 5, at - timedelta(days=1))])
    same = (await store.load_profiles(ctx.pool, [user], 384))[user]
    assert np.array_equal(same.profile.taste, profiles[user].profile.taste)
    rows = await store.load_viewings(ctx.pool, {(user, hated.canonical_id)})
    assert rows[(user, hated.canonical_id)].rating == 1


async def test_the_kept_like_counts_follow_every_change_of_liking(ctx: AgentContext) -> None:
    """sona_title_viewers and sona_user_likes, kept in the training transactions, equal a
    recount of the liked rows after likes, a one-star rating turning one into a dislike, a
    redelivery and a dismissal."""
    comedies, horror = BY_GENRE["comedy"][:3], BY_GENRE["horror"][0]
    at = DAY + timedelta(hours=20)
    for user in ("u-likes-a", "u-likes-b"):
        views = [progress(user, t.canonical_id, at) for t in [*comedies, horror]]
        await train_from_progress(ctx, views)
        await train_from_progress(ctx, views)
    await train_from_feedback(ctx, [rated("u-likes-a", horror.canonical_id, 1, at)])
    await train_from_feedback(ctx, [dismissed("u-likes-b", comedies[0].canonical_id, at)])

    recount = await ctx.pool.fetch(
        "SELECT user_id, count(*) AS n FROM sona_viewings WHERE taste_weight > 0 GROUP BY user_id"
    )
    kept = await ctx.pool.fetch("SELECT user_id, liked FROM sona_user_likes WHERE liked > 0")
    assert {r["user_id"]: r["n"] for r in recount} == {r["user_id"]: r["liked"] for r in kept}
    # A finished title dismissed afterwards still weighs its engagement less 0.5: still liked.
    assert {r["user_id"]: r["liked"] for r in kept} == {"u-likes-a": 3, "u-likes-b": 4}
    by_title = await ctx.pool.fetch(
        "SELECT content_id, count(*) AS n FROM sona_viewings WHERE taste_weight > 0 "
        "GROUP BY content_id"
    )
    viewers = await ctx.pool.fetch(
        "SELECT content_id, viewers FROM sona_title_viewers WHERE viewers > 0"
    )
    assert {r["content_id"]: r["n"] for r in by_title} == {
        r["content_id"]: r["viewers"] for r in viewers
    }


async def test_a_rating_before_its_viewing_gives_the_same_taste(ctx: AgentContext) -> None:
    title = BY_GENRE["drama"][0].canonical_id
    at = DAY + timedelta(hours=20)
    await train_from_progress(ctx, [progress("u-first-watch", title, at)])
    await train_from_feedback(ctx, [rated("u-first-watch", title, 2, at)])
    await train_from_feedback(ctx, [rated("u-first-rate", title, 2, at)])
    await train_from_progress(ctx, [progress("u-first-rate", title, at)])
    profiles = await store.load_profiles(ctx.pool, ["u-first-watch", "u-first-rate"], 384)
    np.testing.assert_allclose(
        profiles["u-first-watch"].profile.taste, profiles["u-first-rate"].profile.taste
    )


async def test_a_dismissed_title_never_comes_back_and_drops_the_cached_answer(
    ctx: AgentContext,
) -> None:
    user = "u-dismiss"
    at = DAY + timedelta(hours=20)
    wanted = request(user, at, region="US")
    before = await recommendations_for(ctx, wanted)
    top = before.recommendations[0].canonical_id
    await store_recommendations(ctx.redis, ctx.prefix, wanted, b"{}", 0, 60)
    await train_from_feedback(ctx, [dismissed(user, top, at)])
    assert await read_recommendations(ctx.redis, ctx.prefix, wanted) is None
    for moment in (at, at + timedelta(hours=12), at + timedelta(days=40)):
        for fields in ({"region": "US"}, {}, {"mood": GENRE_OF[top]}):
            after = await recommendations_for(ctx, request(user, moment, **fields))
            assert top not in {r.canonical_id for r in after.recommendations}
    # Dismissing it again (a retried request with a new event id) changes nothing.
    stored = (await store.load_profiles(ctx.pool, [user], 384))[user]
    await train_from_feedback(ctx, [dismissed(user, top, at + timedelta(hours=1))])
    again = (await store.load_profiles(ctx.pool, [user], 384))[user]
    assert again.profile.events_applied == stored.profile.events_applied


async def test_the_hourly_pattern_follows_the_user_between_zones(ctx: AgentContext) -> None:
    """Evenings at 20:00 in Paris, then, after a move, at 20:00 in New York: every viewing is
    an evening one on the user's clock (in UTC they would be 19:00 and 01:00)."""
    user = "u-moves"
    comedies = BY_GENRE["comedy"]
    paris = datetime(2026, 11, 2, 19, tzinfo=UTC)  # 20:00 CET
    new_york = datetime(2026, 11, 10, 1, tzinfo=UTC)  # 20:00 EST
    await train_from_progress(
        ctx,
        [
            progress(user, comedies[i].canonical_id, paris + timedelta(days=i), "Europe/Paris")
            for i in range(4)
        ],
    )
    # After the move: the first report names the new zone, later ones rely on it.
    await train_from_progress(
        ctx,
        [
            progress(
                user,
                comedies[4 + i].canonical_id,
                new_york + timedelta(days=i),
                "America/New_York" if i == 0 else None,
            )
            for i in range(4)
        ],
    )
    profile = (await store.load_profiles(ctx.pool, [user], 384))[user].profile
    assert profile.hourly[20] == 8, profile.hourly
    assert profile.time_zone == "America/New_York"
    rows = await store.load_viewings(ctx.pool, {(user, comedies[i].canonical_id) for i in range(8)})
    assert {row.watched_hour for row in rows.values()} == {20}
    # Asked at 20:30 in New York: the user's evening, a habit the answer names on a TV.
    evening = await recommendations_for(
        ctx,
        request(
            user,
            datetime(2026, 11, 12, 20, 30, tzinfo=zone_of("America/New_York")),
            device_type="tv",
        ),
    )
    assert evening.context.time_bucket.value == "evening"
    assert any("fits your evening viewing" in r.reasons for r in evening.recommendations)
