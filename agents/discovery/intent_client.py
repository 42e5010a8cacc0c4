"""What a query means: the intent cache first, then the LLM (when configured), else the rules.

With OPENAI_API_KEY set (and DISCOVERY_LLM_INTENTS left on), a query the cache does not hold
goes to OPENAI_CHAT_MODEL (gpt-4o-mini) in JSON mode through the `openai` client, at
OPENAI_BASE_URL when set (any OpenAI-compatible server), within DISCOVERY_LLM_TIMEOUT_S and
behind the shared `openai` circuit breaker. Any failure (an error status, a timeout, an open
breaker, a reply that says nothing usable) falls back to the local parser of
agents.discovery.intent_rules, which needs no key.

What is cached: every LLM reading, and every rules reading when no LLM is configured. A rules
reading made because the LLM failed is not cached, so the query gets the LLM again once it is
back (the breaker keeps that from hammering a service that is down).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Literal

from loguru import logger
from openai import AsyncOpenAI, OpenAIError
from prometheus_client import Counter

from agents.discovery.cache_store import DiscoveryCache
from agents.discovery.intent_llm import IntentReplyError, chat_request, parse_reply
from agents.discovery.intent_rules import parse_intent
from agents.discovery.llm_budget import LlmBudget
from core.config import Settings, secret_value
from core.observability.metrics import LLM_BUDGET_EXHAUSTED
from core.resilience import CircuitOpen, breakers
from schemas.discovery import ParsedIntent

Origin = Literal["cache", "llm", "rules", "rules_fallback", "rules_budget"]

INTENTS = Counter(
    "mgw_discovery_intents_total",
    "Queries read, by where the reading came from (cache, llm, rules, rules_fallback, "
    "rules_budget: an anonymous query past the LLM budget)",
    ["origin"],
)


@dataclass(frozen=True)
class Resolved:
    intent: ParsedIntent
    origin: Origin


class IntentResolver:
    def __init__(
        self,
        settings: Settings,
        cache: DiscoveryCache,
        client: AsyncOpenAI | None = None,
        budget: LlmBudget | None = None,
    ) -> None:
        self._cache = cache
        self._budget = budget or LlmBudget(
            cache.redis,
            cache.prefix,
            settings.discovery.anonymous_llm_per_minute,
            settings.discovery.anonymous_llm_per_day,
        )
        self._model = settings.openai.chat_model
        self._timeout_s = settings.discovery.llm_timeout_s
        self._client = client
        if client is None and settings.discovery.llm_intents and settings.openai.api_key:
            # No retries of our own: the reply is awaited by a user, and the breaker decides
            # when to try again.
            self._client = AsyncOpenAI(
                api_key=secret_value(settings.openai.api_key),
                base_url=settings.openai.base_url,
                timeout=self._timeout_s,
                max_retries=0,
            )

    @property
    def uses_llm(self) -> bool:
        return self._client is not None

    async def resolve(self, query: str, anonymous: bool = False) -> Resolved:
        """`anonymous`: asked without a credential, so an LLM call spends the global budget."""
        cached = await self._cache.get_intent(query)
        if cached is not None:
            return self._done(Resolved(cached, "cache"))
        if self._client is None:
            intent = parse_intent(query)
            await self._cache.set_intent(query, intent)
            return self._done(Resolved(intent, "rules"))
        if anonymous:
            spent = await self._budget.take()
            if spent is not None:
                # Not cached: once the budget refills, the query gets the LLM's reading.
                LLM_BUDGET_EXHAUSTED.labels(spent).inc()
                return self._done(Resolved(parse_intent(query), "rules_budget"))
        try:
            intent = await self._ask(query)
        except CircuitOpen:
            # The breaker logged when it opened; one line per query would only repeat it.
            return self._done(Resolved(parse_intent(query), "rules_fallback"))
        except (OpenAIError, IntentReplyError, TimeoutError) as exc:
            logger.warning(
                "LLM intent parsing failed ({}: {}); the local parser reads {!r}",
                type(exc).__name__,
                str(exc)[:200],
                query[:100],
            )
            return self._done(Resolved(parse_intent(query), "rules_fallback"))
        await self._cache.set_intent(query, intent)
        return self._done(Resolved(intent, "llm"))

    async def _ask(self, query: str) -> ParsedIntent:
        assert self._client is not None
        request = {**chat_request(query), "model": self._model}
        # A reply that cannot be read is the service answering: not a failure for the breaker.
        async with breakers.get("openai").guard(ignore=(IntentReplyError,)):
            async with asyncio.timeout(self._timeout_s):
                response = await self._client.chat.completions.create(**request)
            text = response.choices[0].message.content if response.choices else None
            return parse_reply(text or "", query=query)

    @staticmethod
    def _done(resolved: Resolved) -> Resolved:
        INTENTS.labels(resolved.origin).inc()
        return resolved

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()
