"""What a worker process opens once and hands to every agent handler."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, TypeVar

import asyncpg
import redis.asyncio as aioredis
from loguru import logger

from agents.framework.db import create_pool
from agents.framework.resources import OpenResources, Resource
from core.broker_wakeup import BrokerWakeup, wakeup_channel
from core.config import Settings
from core.publisher import Publisher

if TYPE_CHECKING:
    from agents.adapters.embeddings.base import Embedder
    from agents.adapters.vectors.store import VectorStore

T = TypeVar("T")


@dataclass
class _Heavy:
    """Resources only some groups need, opened on first use and shared by every agent view."""

    vectors: VectorStore | None = None
    embedder: Embedder | None = None
    declared: OpenResources = field(default_factory=OpenResources)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


@dataclass(frozen=True)
class AgentContext:
    """The worker's resources as one agent (or timer) sees them: `agent` is its name, the
    source of every event it emits (agents/framework/unit_of_work.py)."""

    settings: Settings
    pool: asyncpg.Pool
    publisher: Publisher
    redis: aioredis.Redis
    agent: str = "worker"
    _heavy: _Heavy = field(default_factory=_Heavy)

    @property
    def prefix(self) -> str:
        return self.settings.redis.key_prefix

    def for_agent(self, name: str) -> AgentContext:
        """The same resources, seen by the agent or timer called `name`."""
        return replace(self, agent=name)

    def use(self, resource: Resource[T]) -> T:
        """The worker's `resource` (agents/framework/resources.py), opened on first use."""
        return self._heavy.declared.use(resource, self)

    async def vectors(self) -> VectorStore:
        heavy = self._heavy
        async with heavy.lock:
            if heavy.vectors is None:
                from agents.adapters.vectors.factory import create_vector_store

                store = create_vector_store(self.settings)
                await store.ensure_collection()
                heavy.vectors = store
        return heavy.vectors

    async def embedder(self) -> Embedder:
        heavy = self._heavy
        async with heavy.lock:
            if heavy.embedder is None:
                from agents.adapters.embeddings.factory import create_embedder

                heavy.embedder = create_embedder(self.settings)
        return heavy.embedder

    async def close(self) -> None:
        # The slices' resources first: they may hold the vector store or the clients below.
        await self._heavy.declared.close()
        if self._heavy.vectors is not None:
            await self._heavy.vectors.close()
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
                redis = aioredis.from_url(
                    self._settings.redis.require_url(),
                    socket_connect_timeout=2.0,
                    socket_timeout=5.0,
                )
                publisher = Publisher(
                    self._settings.kafka,
                    source=self._source,
                    wakeup=BrokerWakeup(redis, wakeup_channel(self._settings)),
                )
                await publisher.start()
                self._ctx = AgentContext(self._settings, pool, publisher, redis)
                logger.info("worker resources open")
        return self._ctx

    async def close(self) -> None:
        if self._ctx is None:
            return
        ctx, self._ctx = self._ctx, None
        await ctx.close()
