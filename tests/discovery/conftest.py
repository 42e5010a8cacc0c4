"""Discovery against real parts: a database of its own per module with the seed catalog, the
in-process vector store with real embeddings, the machine's Redis under a fresh key prefix per
test, and the search engine of the discovery agent built over them."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import redis.asyncio as aioredis

from agents.adapters.embeddings.local import LocalEmbedder
from agents.adapters.vectors.edge import EdgeVectorStore
from agents.adapters.vectors.store import VectorStore
from agents.discovery.cache_store import DiscoveryCache
from agents.discovery.handlers import Discovery, search
from agents.discovery.intent_client import IntentResolver
from agents.discovery.retrieval_store import Retriever
from agents.framework.db import _init_connection
from agents.framework.migrate import migrate_url
from agreements.discovery_cache import request_results_key, request_results_set_key
from core.config import DiscoverySettings, OpenAISettings, Settings, load_settings
from devtools.scratch_db import create_database, drop_database
from schemas.discovery import SearchRequested, SearchResponse
from tests.conftest import SESSION, _base_database_url
from tests.discovery.catalog import seed

# Relevance and caching are not about speed: a busy test machine must not time strategies out.
# Tests of timeouts set their own.
GENEROUS = {"strategy_timeout_s": 10.0, "search_timeout_s": 20.0}


@dataclass
class Seeded:
    pool: asyncpg.Pool
    vectors: EdgeVectorStore
    embedder: LocalEmbedder


Loader = Callable[[asyncpg.Pool, EdgeVectorStore, LocalEmbedder], Awaitable[object]]


@asynccontextmanager
async def seeded_catalog(
    tmp_path_factory: pytest.TempPathFactory, load: Loader = seed
) -> AsyncIterator[Seeded]:
    """A database of its own and a vector store, filled by `load`."""
    base = _base_database_url()
    name = f"mgw_test_{SESSION}_disc_{uuid.uuid4().hex[:6]}"
    url = await create_database(base, name)
    await migrate_url(url)
    pool = await asyncpg.create_pool(url, min_size=1, max_size=6, init=_init_connection)
    vectors = EdgeVectorStore(tmp_path_factory.mktemp("discovery-vectors") / "content", 384)
    await vectors.ensure_collection()
    embedder = LocalEmbedder()
    try:
        await load(pool, vectors, embedder)
        yield Seeded(pool, vectors, embedder)
    finally:
        await embedder.close()
        await vectors.close()
        await pool.close()
        await drop_database(base, name)


@pytest.fixture(scope="module")
async def seeded(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Seeded]:
    async with seeded_catalog(tmp_path_factory) as catalog:
        yield catalog


def settings_with(
    tmp_path: Path, openai: OpenAISettings | None = None, **discovery: Any
) -> Settings:
    """Defaults (no .env; no OpenAI key unless given) with these discovery settings."""
    base = load_settings(env_file=tmp_path / "absent.env")
    return base.model_copy(
        update={
            "discovery": DiscoverySettings(**{**GENEROUS, **discovery}),
            "openai": openai or OpenAISettings(api_key=None),
        }
    )


@dataclass
class Engine:
    discovery: Discovery
    settings: Settings
    prefix: str

    async def search(self, query: str, **fields: Any) -> SearchResponse:
        return SearchResponse.model_validate_json(await self.raw(query, **fields))

    async def raw(self, query: str, **fields: Any) -> bytes:
        request = self.request(query, **fields)
        return await search(self.discovery, request, request_results_key(self.prefix, request))

    @staticmethod
    def request(query: str, **fields: Any) -> SearchRequested:
        return SearchRequested.model_validate({"query": query, "reply_channel": "unused", **fields})

    def key(self, query: str, **fields: Any) -> str:
        return request_results_key(self.prefix, self.request(query, **fields))

    def set_key(self, query: str, **fields: Any) -> str:
        return request_results_set_key(self.prefix, self.request(query, **fields))


MakeEngine = Callable[..., Engine]


@pytest.fixture
def make_engine(seeded: Seeded, redis_client: aioredis.Redis, tmp_path: Path) -> MakeEngine:
    """Engines over the seeded catalog, each with a Redis key prefix of its own (by default).

    make_engine(openai=OpenAISettings(...), vectors=store, prefix=..., **DISCOVERY settings)
    """

    def make(
        *,
        openai: OpenAISettings | None = None,
        vectors: VectorStore | None = None,
        prefix: str | None = None,
        **discovery: Any,
    ) -> Engine:
        settings = settings_with(tmp_path, openai, **discovery)
        prefix = prefix or f"mgwtest-{SESSION}-disc-{uuid.uuid4().hex[:8]}"
        cache = DiscoveryCache(redis_client, prefix, settings.discovery)
        store = vectors or seeded.vectors

        async def get_vectors() -> VectorStore:
            return store

        async def get_embedder() -> LocalEmbedder:
            return seeded.embedder

        engine = Engine(
            Discovery(
                cache=cache,
                intents=IntentResolver(settings, cache),
                retriever=Retriever(
                    seeded.pool, get_vectors, get_embedder, cache, settings.discovery
                ),
            ),
            settings,
            prefix,
        )
        return engine

    return make
