"""Redis clients for callers that have a fallback: fail in milliseconds, never retry.

redis-py's default client retries a failed command ten times with backoff and waits up to
5 s for a socket; a cache or a breaker that can do without Redis would rather fall back at
once than hold a request for seconds.
"""

from __future__ import annotations

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

DEFAULT_TIMEOUT_S = 0.5
# What "Redis is not there" looks like to a caller with a fallback.
REDIS_ERRORS: tuple[type[BaseException], ...] = (RedisConnectionError, RedisTimeoutError, OSError)


def fast_fail_client(url: str, timeout_s: float = DEFAULT_TIMEOUT_S) -> aioredis.Redis:
    return aioredis.from_url(
        url,
        socket_timeout=timeout_s,
        socket_connect_timeout=timeout_s,
        retry=Retry(NoBackoff(), 0),
        health_check_interval=0,
    )
