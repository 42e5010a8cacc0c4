"""What a worker process opens once and hands to every agent handler."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import asyncpg
import redis.asyncio as aioredis
from loguru import logger

from agents.db import create_pool
from core.config import Settings
from core.publisher import Publisher

if TYPE_CHECKING:
    from agents.embeddings.base import Embedder
    from agents.vectors.store import VectorStore


@dataclass
class AgentContext:
    settings: Settings
    pool: asyncpg.Pool
    publisher: Publisher
    redis: aioredis.Redis
    # Heavy resources only some groups need, opened on first use.
    _vectors: VectorStore | None = None
    _embedder: Embedder | None = None
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    @property
    def prefix(self) -> str:
        return self.settings.redis.key_prefix

    async def vectors(self) -> VectorStore:
        async with self._lock:
            if self._vectors is None:
                from agents.vectors.factory import create_vector_store

                store = create_vector_store(self.settings)
                await store.ensure_collection()
                self._vectors = store
        return self._vectors

    async def embedder(self) -> Embedder:
        async with self._lock:
            if self._embedder is None:
                from agents.embeddings.factory import create_embedder

                self._embedder = create_embedder(self.settings)
        return self._embedder

    async def close(self) -> None:
        if self._vectors is not None:
            await self._vectors.close()
        await self.publisher.stop()
        await self.redis.aclose()
        await self.pool.close()


class ContextHolder:
    """Opens the context on first use (agents may start before anything else is ready)."""

    def __init__(self, settings: Settings, source: str) -> None:
        self._settings = settings
        self._source = source
        self._ctx: AgentContext | None = None
        self._lock = asyncio.Lock()

    @property
    def current(self) -> AgentContext | None:
        return self._ctx

    async def get(self) -> AgentContext:
        if self._ctx is not None:
            return self._ctx
        async with self._lock:
            if self._ctx is None:
                pool = await create_pool(self._settings.postgres)
                publisher = Publisher(self._settings.kafka, source=self._source)
                await publisher.start()
                redis = aioredis.from_url(
                    self._settings.redis.require_url(),
                    socket_connect_timeout=2.0,
                    socket_timeout=5.0,
                )
                self._ctx = AgentContext(self._settings, pool, publisher, redis)
                logger.info("worker resources open")
        return self._ctx

    async def close(self) -> None:
        if self._ctx is None:
            return
        ctx, self._ctx = self._ctx, None
        await ctx.close()
