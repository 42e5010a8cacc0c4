"""A SONA training worker SIGKILLed while progress reports stream in: its successor folds every
report in once and trains the very adapters an uninterrupted run trains.

The uninterrupted run is the same reports through the same handler in this process, on a
database and vector store of its own. Each user finishes nine titles, watches the first again,
then finishes a tenth: training (due from the tenth viewing, possible from the tenth distinct
title) happens exactly once, on the same ten titles, however the broker cuts the stream into
batches, so the two runs train the same adapter, though not to the last byte. The time a
session's weight is folded at depends on the batches: a title finished then rewatched inside one
batch is folded once at the rewatch's time, across two batches at the first viewing's time and
then the rest at that time too, which the 0.95-per-30-days decay weighs a few millionths
apart (the rewatch comes 18 minutes after the first viewing). So the taste is compared to 0.1 %
of its norm and the adapter's weights to 1 % of the largest: one title's weight more, less or twice
moves the taste by about a tenth (each user has eleven viewings).
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import numpy as np
import pytest

from agents.adapters.vectors.edge import EdgeVectorStore
from agents.framework.context import ContextHolder
from agents.framework.db import _init_connection
from agents.framework.migrate import migrate_url
from agents.sona import adapter_codec, store
from agents.sona.handlers import train_from_progress
from agents.sync.clock import to_physical_us
from core.config import settings_with
from core.publisher import Publisher
from devtools.scratch_db import create_database, drop_database
from schemas.envelope import Envelope, decode
from schemas.sona import AdapterTrained
from schemas.sync import HLC, ProgressUpdate
from tests.conftest import Isolated, _base_database_url
from tests.helpers import read_topic, wait_for
from tests.sona_catalog import CATALOG, seed
from topics.admin import create_topics
from topics.registry import SYNC_PROGRESS

APPLIED = "SELECT count(*) FROM applied_operations WHERE agent = 'sona-train-progress'"

pytestmark = pytest.mark.slow

USERS = [f"sk-{uuid.uuid4().hex[:6]}-{n:02d}" for n in range(40)]
TITLES_PER_USER = 10  # the fewest titles a training round takes (SONA_MIN_TRAINING_EVENTS)
VIEWINGS_PER_USER = TITLES_PER_USER + 1  # and one rewatch
# Each user starts this many reports after the previous one: a few users are always mid-way.
STAGGER = 4
CHUNK = 30
DAY = datetime(2026, 11, 2, tzinfo=UTC)


def reports(publisher: Publisher) -> list[Envelope[Any]]:
    """Per user, session by session: a report while playing at 10 %, then one at the end."""
    scheduled: list[tuple[int, Envelope[Any]]] = []
    for n, user in enumerate(USERS):
        titles = [CATALOG[(n * 7 + i * 3) % len(CATALOG)] for i in range(TITLES_PER_USER)]
        sessions = [*titles[:9], titles[0], titles[9]]
        step = n * STAGGER
        for i, title in enumerate(sessions):
            at = DAY + timedelta(hours=(n % 24), minutes=2 * i)
            for fraction, state in ((0.1, "playing"), (1.0, "stopped")):
                payload = ProgressUpdate(
                    user_id=user,
                    content_id=title.canonical_id,
                    position_seconds=3600 * fraction,
                    duration_seconds=3600,
                    state=state,
                    timestamp=HLC(physical_us=to_physical_us(at)),
                    device_id="tv-1",
                )
                scheduled.append((step, publisher.build_envelope(payload, user)))
                step += 1
    scheduled.sort(key=lambda s: s[0])  # stable: each user's own order is kept
    return [env for _, env in scheduled]


def assert_same_weights(got: bytes, want: bytes, user: str) -> None:
    a, b = adapter_codec.decode(got), adapter_codec.decode(want)
    for mine, theirs in ((a.a_user, b.a_user), (a.b_user, b.b_user)):
        scale = float(np.abs(theirs).max())
        worst = float(np.abs(mine.astype(np.float64) - theirs).max())
        assert worst <= 0.01 * scale, f"{user}: weights differ by {worst} (largest {scale})"


@dataclass
class Outcome:
    versions: list[int]
    weights: bytes
    training_iterations: int
    profile: store.StoredProfile


async def outcome(pool: asyncpg.Pool, user: str) -> Outcome:
    row = await pool.fetchrow(
        "SELECT weights, training_iterations FROM lora_adapters WHERE user_id = $1 "
        "ORDER BY version DESC LIMIT 1",
        user,
    )
    assert row is not None, f"{user} has no adapter"
    return Outcome(
        versions=await store.adapter_versions(pool, user),
        weights=bytes(row["weights"]),
        training_iterations=row["training_iterations"],
        profile=(await store.load_profiles(pool, [user], 384))[user],
    )


@dataclass
class Reference:
    """The uninterrupted run's database, vector store and topic prefix."""

    env: dict[str, str]
    pool: asyncpg.Pool


@pytest.fixture
async def reference(isolated: Isolated, tmp_path: Path) -> AsyncIterator[Reference]:
    name = f"mgw_ref_{uuid.uuid4().hex[:10]}"
    base = _base_database_url()
    url = await create_database(base, name)
    await migrate_url(url)
    pool = await asyncpg.create_pool(url, min_size=1, max_size=2, init=_init_connection)
    env = {
        **isolated.env,
        "DATABASE_URL": url,
        "QDRANT_PATH": str(tmp_path / "qdrant-ref"),
        "KAFKA_TOPIC_PREFIX": isolated.env["KAFKA_TOPIC_PREFIX"] + "-ref",
    }
    try:
        yield Reference(env, pool)
    finally:
        await pool.close()
        await drop_database(base, name)


async def run_uninterrupted(reference: Reference, batch: list[Envelope[Any]]) -> None:
    settings = settings_with(reference.env)
    await create_topics(settings.kafka.bootstrap, settings.kafka.topic_prefix)
    holder = ContextHolder(settings, source="test-reference")
    try:
        ctx = (await holder.get()).for_agent("sona-train-progress")
        await seed(ctx.pool, await ctx.vectors())
        await train_from_progress(ctx, batch)
    finally:
        await holder.close()


async def test_a_killed_training_worker_loses_nothing_and_trains_the_same_adapters(
    spawn,  # type: ignore[no-untyped-def]
    isolated: Isolated,
    reference: Reference,
) -> None:
    pool, settings = isolated.pool, isolated.settings
    vectors = EdgeVectorStore(Path(isolated.env["QDRANT_PATH"]) / "content", 384)
    try:
        await vectors.ensure_collection()
        await seed(pool, vectors)
    finally:
        await vectors.close()  # the worker opens it next: one process at a time

    publisher = Publisher(settings.kafka, source="test")
    await publisher.start()
    stream = reports(publisher)
    await run_uninterrupted(reference, stream)

    first = spawn("worker", "sona", extra_env=isolated.env)

    async def flow() -> None:
        for start in range(0, len(stream), CHUNK):
            await publisher.send_envelopes(
                [(SYNC_PROGRESS, e) for e in stream[start : start + CHUNK]]
            )
            await asyncio.sleep(0.1)

    flowing = asyncio.create_task(flow())

    async def some_trained() -> int:
        return int(await pool.fetchval("SELECT count(*) FROM lora_adapters"))

    await wait_for(some_trained, timeout=60, interval=0.005)
    assert not flowing.done(), "the stream ended before the kill: nothing was mid-stream"
    first.popen.send_signal(signal.SIGKILL)
    first.popen.wait(10)
    trained_before = await some_trained()
    assert 0 < trained_before < len(USERS)

    # In a thread: spawning waits for readiness, and the stream must keep flowing meanwhile.
    await asyncio.to_thread(spawn, "worker", "sona", extra_env=isolated.env)
    await flowing

    async def all_applied() -> bool:
        applied = await pool.fetchval(APPLIED)
        pending = await pool.fetchval("SELECT count(*) FROM outbox")
        return applied == len(stream) and pending == 0

    await wait_for(all_applied, timeout=120, interval=0.5)
    # Whatever redelivery brings now must change nothing: let it arrive, then compare.
    await asyncio.sleep(2)
    with contextlib.suppress(Exception):
        await publisher.stop()

    assert await pool.fetchval(APPLIED) == len(stream)
    for user in USERS:
        got, want = await outcome(pool, user), await outcome(reference.pool, user)
        # Every report applied once: eleven viewings, one per finished session.
        assert got.profile.profile.events_applied == VIEWINGS_PER_USER, user
        assert sum(got.profile.profile.hourly) == VIEWINGS_PER_USER, user
        assert got.profile.events_since_training == 0, user
        viewings = await pool.fetchval(
            "SELECT sum(finished_count) FROM sona_viewings WHERE user_id = $1", user
        )
        assert viewings == VIEWINGS_PER_USER, user
        # The same adapter as the uninterrupted run: version, steps and weights to rounding.
        assert got.versions == want.versions == [1], user
        assert got.training_iterations == want.training_iterations, user
        assert_same_weights(got.weights, want.weights, user)
        taste, reference_taste = got.profile.profile.taste, want.profile.profile.taste
        drift = float(np.linalg.norm(taste - reference_taste))
        assert drift <= 1e-3 * float(np.linalg.norm(reference_taste)), (user, drift)
        assert dict(got.profile.profile.genre_affinities) == dict(
            want.profile.profile.genre_affinities
        ), user

    records = await read_topic(
        settings.kafka.bootstrap, f"{settings.kafka.topic_prefix}.sona.adapter_trained", 0.5
    )
    announced = {
        (event.user_id, event.adapter_version)
        for event in (decode(r.value, AdapterTrained).payload for r in records)
    }
    # Every version announced (a crash between publishing and deleting the outbox row may
    # announce one twice, which every listener takes as once).
    assert announced == {(user, 1) for user in USERS}
