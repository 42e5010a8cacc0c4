"""What a worker process opens once and hands to every agent handler."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import asyncpg
from loguru import logger

from agents.db import create_pool
from core.config import Settings
from core.publisher import Publisher


@dataclass
class AgentContext:
    settings: Settings
    pool: asyncpg.Pool
    publisher: Publisher


class ContextHolder:
    """Opens the context on first use (agents may start before anything else is ready)."""

    def __init__(self, settings: Settings, source: str) -> None:
        self._settings = settings
        self._source = source
        self._ctx: AgentContext | None = None
        self._lock = asyncio.Lock()

    async def get(self) -> AgentContext:
        if self._ctx is not None:
            return self._ctx
        async with self._lock:
            if self._ctx is None:
                pool = await create_pool(self._settings.postgres)
                publisher = Publisher(self._settings.kafka, source=self._source)
                await publisher.start()
                self._ctx = AgentContext(self._settings, pool, publisher)
                logger.info("worker resources open")
        return self._ctx

    async def close(self) -> None:
        if self._ctx is None:
            return
        ctx, self._ctx = self._ctx, None
        await ctx.publisher.stop()
        await ctx.pool.close()
