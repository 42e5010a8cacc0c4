"""Per-worker resources a slice declares once: a cache, a client, an engine.

A slice declares each as a module constant, `X = Resource("name", open=..., close=...)`, and
reaches it through the agent context, `ctx.use(X)`. The framework opens it on first use, once
per worker context (every agent and timer of the worker shares it), and closes it with the
worker, newest first. No slice keeps its own registry of what it opened: tests that run several
deployments in one process get one of each per context, because the context holds them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from loguru import logger

if TYPE_CHECKING:
    from agents.framework.context import AgentContext

T = TypeVar("T")


@dataclass(frozen=True, eq=False)
class Resource(Generic[T]):
    """What a slice needs per worker: how to open it from the context, how to close it."""

    name: str
    open: Callable[[AgentContext], T]
    close: Callable[[T], Awaitable[None]] | None = None


@dataclass
class OpenResources:
    """The resources one worker context has opened, in the order they were opened."""

    held: dict[Resource[Any], Any] = field(default_factory=dict)

    def use(self, resource: Resource[T], ctx: AgentContext) -> T:
        # Opening is synchronous, so two agents asking at once cannot both open it.
        if resource not in self.held:
            self.held[resource] = resource.open(ctx)
        return self.held[resource]

    async def close(self) -> None:
        while self.held:
            resource, value = self.held.popitem()
            if resource.close is None:
                continue
            try:
                await resource.close(value)
            except Exception:
                # One resource failing to close must not keep the others open.
                logger.exception("closing {} failed", resource.name)
