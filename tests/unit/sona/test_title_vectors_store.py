"""The recommendation path's cache of title vectors, over the real embedded vector store: a
title embedded again is read anew once forgotten or expired, never before; a title without a
vector is asked again; the bound forgets the least recently used."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pytest

from agents.adapters.vectors.edge import EdgeVectorStore
from agents.adapters.vectors.store import VectorPoint
from agents.sona.title_vectors_store import TitleVectors

DIM = 384


def axis(i: int) -> np.ndarray:
    vector = np.zeros(DIM, dtype=np.float32)
    vector[i] = 1.0
    return vector


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[EdgeVectorStore]:
    backend = EdgeVectorStore(tmp_path / "content", DIM)
    await backend.ensure_collection()
    yield backend
    await backend.close()


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def test_a_kept_vector_serves_until_forgotten_or_expired(store: EdgeVectorStore) -> None:
    title, later = uuid.uuid4(), uuid.uuid4()
    await store.upsert([VectorPoint(title, axis(0))])
    clock = Clock()
    cache = TitleVectors(entries=10, ttl_s=60, clock=clock)

    first = await cache.get(store, [title, later])
    assert set(first) == {title}  # `later` has no vector yet
    np.testing.assert_array_equal(first[title], axis(0))
    with pytest.raises(ValueError):
        first[title][0] = 2.0  # shared by every answer: read-only

    # Embedded again (and `later` embedded at last): the kept copy serves within its time...
    await store.upsert([VectorPoint(title, axis(1)), VectorPoint(later, axis(2))])
    again = await cache.get(store, [title, later])
    np.testing.assert_array_equal(again[title], axis(0))
    np.testing.assert_array_equal(again[later], axis(2))  # a missing title is asked again
    # ...until this process hears of the new vector,
    cache.forget([title])
    np.testing.assert_array_equal((await cache.get(store, [title]))[title], axis(1))
    # or the copy expires.
    await store.upsert([VectorPoint(title, axis(3))])
    clock.now = 59.0
    np.testing.assert_array_equal((await cache.get(store, [title]))[title], axis(1))
    clock.now = 61.0
    np.testing.assert_array_equal((await cache.get(store, [title]))[title], axis(3))


async def test_the_least_recently_used_title_is_forgotten_first(store: EdgeVectorStore) -> None:
    titles = [uuid.uuid4() for _ in range(3)]
    await store.upsert([VectorPoint(t, axis(i)) for i, t in enumerate(titles)])
    cache = TitleVectors(entries=2)
    await cache.get(store, titles[:2])
    await cache.get(store, titles[:1])  # the first is used again: the second is the oldest
    await cache.get(store, titles[2:])
    assert len(cache) == 2
    await store.upsert([VectorPoint(t, axis(10 + i)) for i, t in enumerate(titles)])
    found = await cache.get(store, titles[:2])
    np.testing.assert_array_equal(found[titles[0]], axis(0))  # kept
    np.testing.assert_array_equal(found[titles[1]], axis(11))  # forgotten: read anew
