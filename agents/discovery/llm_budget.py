"""The global budget of LLM intent calls for anonymous searches (per minute and per day).

A search without a credential costs an LLM call whenever its query is not in the intent cache,
so a stream of anonymous, never-repeated queries would spend the operator's OpenAI budget at
the rate limiter's pace times the number of addresses. The budget caps those calls for the
whole deployment: two Redis counters, one per calendar minute and one per UTC day (keys named
by the window, expiring with it), checked and counted in one script by every discovery worker.
A call past either window's budget is not made; the local rules read the query instead
(agents/discovery/intent_client.py), and `mgw_discovery_llm_budget_exhausted_total{window}`
counts it. Searches by signed-in users are not counted (they are bounded by their tier).

When Redis cannot be reached the call is not made either: an unmeasured budget is a spent one
(the intent cache, in the same Redis, is down too, so the query would be read again and again).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Literal

from loguru import logger
from redis.exceptions import RedisError

Window = Literal["minute", "day"]

# KEYS: the minute counter, the day counter; ARGV: their budgets, then their lifetimes in s.
# Returns 0 when the call is counted, 1 when the minute's budget is spent, 2 the day's.
_SCRIPT = """
for i = 1, 2 do
  if tonumber(redis.call('GET', KEYS[i]) or '0') >= tonumber(ARGV[i]) then return i end
end
for i = 1, 2 do
  if redis.call('INCR', KEYS[i]) == 1 then redis.call('EXPIRE', KEYS[i], ARGV[2 + i]) end
end
return 0
"""


def budget_keys(prefix: str, now_s: float) -> list[str]:
    # One hash tag: a script may only touch keys of one Redis Cluster slot.
    minute, day = int(now_s // 60), int(now_s // 86_400)
    return [
        f"{prefix}:llm-budget:{{anonymous}}:m:{minute}",
        f"{prefix}:llm-budget:{{anonymous}}:d:{day}",
    ]


class LlmBudget:
    def __init__(
        self,
        redis: Any,
        prefix: str,
        per_minute: int,
        per_day: int,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._redis = redis
        self._prefix = prefix
        self.per_minute = per_minute
        self.per_day = per_day
        self._clock = clock
        self._script = redis.register_script(_SCRIPT)

    async def take(self) -> Window | None:
        """Count one anonymous LLM call; the window whose budget is spent (None: go ahead)."""
        if self.per_minute == 0:
            return "minute"
        if self.per_day == 0:
            return "day"
        try:
            spent = await self._script(
                keys=budget_keys(self._prefix, self._clock()),
                args=[self.per_minute, self.per_day, 120, 2 * 86_400],
            )
        except (RedisError, OSError) as exc:
            logger.warning("anonymous LLM budget unreadable ({}); the rules read", exc)
            return "minute"
        return {0: None, 1: "minute", 2: "day"}[int(spent)]  # type: ignore[return-value]
