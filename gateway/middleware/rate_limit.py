"""Per-tier rate limits shared by every gateway instance through Redis.

Two fixed windows per caller, one second and one minute, each starting at the caller's first
request in it (the counter key is created with a TTL of the window's length and counts until it
expires). A Lua script checks both windows and, only if neither is full, counts the request in
both, so the check and the count are one atomic step and a refused request costs nothing.
Fixed windows allow a burst of up to twice a limit across a window boundary; they were chosen
for O(1) memory per caller and an exact, cheap `X-RateLimit-Reset` (see docs/AUTH.md).

When Redis cannot be reached the same rules run in this process (one warning per outage) and
Redis is tried again every `RATE_LIMIT_REDIS_RETRY_S`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import Response
from loguru import logger
from redis.exceptions import RedisError
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from assistant.gateway_api import UNCOUNTED
from core.observability.metrics import BOUND_REFUSALS, RATE_LIMIT_LOCAL_FALLBACK, RATE_LIMITED
from gateway.auth.dependencies import API_KEY_HEADER, resolve_principal
from gateway.auth.errors import AuthError, AuthUnavailable, auth_error_response
from gateway.auth.failures import FailedAuthentications
from gateway.auth.principal import Tier
from gateway.errors import error_response


@dataclass(frozen=True)
class Limits:
    per_second: int
    per_minute: int

    def windows(self) -> tuple[tuple[str, int, int], ...]:
        """(name, limit, length in ms) of each window."""
        return (("1s", self.per_second, 1000), ("1m", self.per_minute, 60_000))


TIER_LIMITS: dict[Tier, Limits] = {
    Tier.anonymous: Limits(5, 100),
    Tier.free: Limits(10, 200),
    Tier.pro: Limits(50, 1000),
    Tier.enterprise: Limits(200, 5000),
}

# /app/: the web app's static files, which cost no Redis call and are not the API.
EXEMPT_PREFIXES = (
    "/health/",
    "/metrics",
    "/docs",
    "/redoc",
    "/openapi.json",
    "/problems",
    "/app/",
)


def is_exempt(path: str) -> bool:
    return path == "/health" or path.startswith(EXEMPT_PREFIXES)


@dataclass(frozen=True)
class WindowState:
    limit: int
    count: int  # including this request when it was allowed
    reset_ms: int  # until this window's counter expires


@dataclass(frozen=True)
class Decision:
    allowed: bool
    limit: int
    remaining: int
    reset_s: int
    retry_after_s: int | None = None

    def headers(self) -> dict[str, str]:
        return {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(self.remaining),
            "X-RateLimit-Reset": str(self.reset_s),
        }


def _seconds(ms: int) -> int:
    return max(1, math.ceil(ms / 1000))


def decide(allowed: bool, windows: list[WindowState]) -> Decision:
    """The verdict and the window the headers report: the tightest one.

    Refused: among the full windows, the one that frees up last (that is when a retry can
    succeed). Allowed: the window with the fewest requests left, the later reset on a tie.
    """
    if not allowed:
        full = [w for w in windows if w.count >= w.limit]
        blocking = max(full, key=lambda w: w.reset_ms)
        wait = _seconds(blocking.reset_ms)
        return Decision(False, blocking.limit, 0, wait, retry_after_s=wait)
    tight = min(windows, key=lambda w: (w.limit - w.count, -w.reset_ms))
    return Decision(True, tight.limit, max(0, tight.limit - tight.count), _seconds(tight.reset_ms))


class LocalWindows:
    """The same two-window rule in process memory: the fallback while Redis is away."""

    PRUNE_EVERY = 1024

    def __init__(self) -> None:
        self._counters: dict[str, tuple[int, float]] = {}  # key -> (count, expires at)
        self._hits = 0

    def hit(self, identity: str, limits: Limits, now: float) -> Decision:
        self._hits += 1
        if self._hits % self.PRUNE_EVERY == 0:
            self._counters = {k: v for k, v in self._counters.items() if v[1] > now}
        current: list[tuple[str, int, int, float]] = []
        for name, limit, length_ms in limits.windows():
            key = f"{identity}:{name}"
            count, expires = self._counters.get(key, (0, 0.0))
            if expires <= now:
                count, expires = 0, now + length_ms / 1000
            current.append((key, limit, count, expires))
        allowed = all(count < limit for _, limit, count, _ in current)
        windows = []
        for key, limit, count, expires in current:
            if allowed:
                count += 1
                self._counters[key] = (count, expires)
            windows.append(WindowState(limit, count, math.ceil((expires - now) * 1000)))
        return decide(allowed, windows)


# KEYS: one counter per window; ARGV: the limits, then the window lengths in ms.
# Returns {allowed, count1, pttl1, count2, pttl2, ...}.
_SCRIPT = """
local n = #KEYS
local counts, ttls = {}, {}
local allowed = 1
for i = 1, n do
  local ttl = redis.call('PTTL', KEYS[i])
  if ttl < 0 then
    -- -2: no counter yet. -1: a counter without a TTL, which this script never leaves behind
    -- and which would block its caller forever: start that window afresh.
    if ttl == -1 then redis.call('DEL', KEYS[i]) end
    counts[i] = 0
    ttls[i] = tonumber(ARGV[n + i])
  else
    counts[i] = tonumber(redis.call('GET', KEYS[i]) or '0')
    ttls[i] = ttl
  end
  if counts[i] >= tonumber(ARGV[i]) then allowed = 0 end
end
if allowed == 1 then
  for i = 1, n do
    counts[i] = redis.call('INCR', KEYS[i])
    if counts[i] == 1 then redis.call('PEXPIRE', KEYS[i], ARGV[n + i]) end
  end
end
local out = {allowed}
for i = 1, n do
  out[#out + 1] = counts[i]
  out[#out + 1] = ttls[i]
end
return out
"""


def counter_keys(prefix: str, identity: str, limits: Limits) -> list[str]:
    # The identity is a Redis Cluster hash tag, so both windows of a caller live on one slot
    # (a script may only touch keys of one slot); braces inside it would break the tag.
    tag = identity.replace("{", "%7B").replace("}", "%7D")
    return [f"{prefix}:ratelimit:{{{tag}}}:{name}" for name, _, _ in limits.windows()]


class RateLimiter:
    """Counts in Redis; counts locally while Redis is unreachable, then goes back to Redis."""

    def __init__(
        self,
        redis: Callable[[], Any],
        prefix: str,
        retry_s: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._redis = redis
        self._prefix = prefix
        self._retry_s = retry_s
        self._clock = clock
        self._local = LocalWindows()
        self._script: Any = None
        self._script_client: Any = None
        self._down_since: float | None = None
        self._next_try = 0.0

    @property
    def using_fallback(self) -> bool:
        return self._down_since is not None

    async def hit(self, identity: str, limits: Limits) -> Decision:
        now = self._clock()
        if self._down_since is None or now >= self._next_try:
            try:
                decision = await self._hit_redis(identity, limits)
            except (RedisError, OSError) as exc:
                self._redis_failed(now, exc)
            else:
                self._redis_ok(now)
                return decision
        return self._local.hit(identity, limits, now)

    async def _hit_redis(self, identity: str, limits: Limits) -> Decision:
        client = self._redis()
        if client is None:
            raise RedisError("no Redis client")
        if self._script is None or self._script_client is not client:
            # Script objects re-send the body themselves when a restarted Redis lost it.
            self._script = client.register_script(_SCRIPT)
            self._script_client = client
        windows = limits.windows()
        raw = await self._script(
            keys=counter_keys(self._prefix, identity, limits),
            args=[w[1] for w in windows] + [w[2] for w in windows],
        )
        values = [int(v) for v in raw]
        states = [
            WindowState(limit=w[1], count=values[1 + 2 * i], reset_ms=values[2 + 2 * i])
            for i, w in enumerate(windows)
        ]
        return decide(values[0] == 1, states)

    def _redis_failed(self, now: float, exc: BaseException) -> None:
        self._next_try = now + self._retry_s
        if self._down_since is None:
            self._down_since = now
            RATE_LIMIT_LOCAL_FALLBACK.set(1)
            logger.warning(
                "rate limits: Redis unreachable ({}: {}); counting in this process until it is "
                "back (limits are now per instance)",
                type(exc).__name__,
                exc,
            )

    def _redis_ok(self, now: float) -> None:
        if self._down_since is not None:
            logger.info(
                "rate limits: Redis is back after {:.1f}s; counting there again",
                now - self._down_since,
            )
            self._down_since = None
            RATE_LIMIT_LOCAL_FALLBACK.set(0)


def client_address(scope: Scope) -> str:
    # The socket peer; X-Forwarded-For only from the proxies GATEWAY_FORWARDED_ALLOW_IPS
    # names (uvicorn rewrites the peer then; gateway/server.py), else the caller could forge it.
    client = scope.get("client")
    return str(client[0]) if client else "unknown"


def client_identity(request: Request) -> str:
    return f"ip:{client_address(request.scope)}"


_CREDENTIAL_HEADERS = (b"authorization", API_KEY_HEADER.lower().encode())


def carries_credential(scope: Scope) -> bool:
    return any(name in _CREDENTIAL_HEADERS for name, _ in scope.get("headers", ()))


def carries_stream_ticket(scope: Scope) -> bool:
    """A stream opened by `?ticket=` (EventSource cannot send a header): a credential too."""
    if not scope["path"].endswith("/stream"):
        return False
    query: bytes = scope.get("query_string", b"")
    return any(part.partition(b"=")[0] == b"ticket" for part in query.split(b"&"))


def auth_failures_response(request: Request, retry_s: int, per_minute: int) -> Response:
    BOUND_REFUSALS.labels(bound="auth_failures", where="gateway").inc()
    return error_response(
        429,
        "too_many_auth_failures",
        f"more than {per_minute} failed authentications from this address in a minute; "
        f"credentials from it are refused unread for {retry_s}s",
        request,
        headers={"Retry-After": str(retry_s)},
    )


def rate_limited_response(request: Request, decision: Decision, tier: Tier) -> Response:
    RATE_LIMITED.labels(tier=str(tier)).inc()
    retry = decision.retry_after_s or 1
    return error_response(
        429,
        "rate_limited",
        f"rate limit of the {tier} tier reached ({decision.limit} requests per window); "
        f"retry after {retry}s",
        request,
        headers={"Retry-After": str(retry)},
    )


class RateLimitMiddleware:
    """Authenticates (to learn the tier), counts, and adds the X-RateLimit-* headers.

    Pure ASGI in front of the routes rather than a route dependency: FastAPI parses a JSON body
    before it runs dependencies, so a dependency would let malformed bodies through uncounted
    (and answer them 422 before 401). The principal it resolves is kept on the request state,
    where the routes' `authenticate` dependencies find it.
    """

    def __init__(self, app: ASGIApp, limiter: RateLimiter, failures: FailedAuthentications) -> None:
        self.app = app
        self.limiter = limiter
        self.failures = failures

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or is_exempt(scope["path"]):
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        if scope.get(UNCOUNTED):
            await self._uncounted(request, scope, receive, send)
            return
        address = client_address(scope)
        ticket = carries_stream_ticket(scope)
        if ticket or carries_credential(scope):
            # An address past its failure budget: refused before the credential is parsed.
            retry_s = self.failures.retry_after_s(address)
            if retry_s is not None:
                response = auth_failures_response(request, retry_s, self.failures.per_minute)
                await response(scope, receive, send)
                return
        try:
            principal = await resolve_principal(request)
        except (AuthError, AuthUnavailable) as exc:
            # Refused before counting: a bad credential is the caller's 401 whatever its rate.
            if isinstance(exc, AuthError):
                self.failures.record(address)
            await auth_error_response(request, exc)(scope, receive, send)
            return
        if principal is None and ticket:
            # Its issuance was counted against the user who asked for it; counting the stream
            # again against its address would let one household's reconnects 429 another's.
            # A refused ticket counts as a failed authentication of the address instead.
            await self.app(scope, receive, send)
            return
        if principal is None:
            tier, identity = Tier.anonymous, client_identity(request)
        else:
            tier, identity = principal.tier, principal.rate_identity
        decision = await self.limiter.hit(identity, TIER_LIMITS[tier])
        request.state.rate_limit = decision
        extra = [(k.lower().encode(), v.encode()) for k, v in decision.headers().items()]

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        if not decision.allowed:
            response = rate_limited_response(request, decision, tier)
            await response(scope, receive, send_with_headers)
            return
        await self.app(scope, receive, send_with_headers)

    async def _uncounted(
        self, request: Request, scope: Scope, receive: Receive, send: Send
    ) -> None:
        """The MCP server's check of the token of a /mcp request (assistant/mount.py), made in
        process: that request was authenticated and counted here already, so the check is
        neither counted nor, when the token is bad, a failure of the address (the in-process
        client's, which would block every caller's checks). Still authenticated: the route
        reads the principal resolved here."""
        try:
            await resolve_principal(request)
        except (AuthError, AuthUnavailable) as exc:
            await auth_error_response(request, exc)(scope, receive, send)
            return
        await self.app(scope, receive, send)


def install_rate_limiting(
    app: FastAPI, redis_prefix: str, retry_s: float, auth_failures_per_minute: int = 30
) -> None:
    """Add the limiter; it reads `app.state.redis` at each request (created by the lifespan).

    Call it before the other middleware is added (the first added runs innermost): it then sits
    right in front of the routes, inside the correlation id (request ids in its 401/429 bodies)
    and the HTTP metrics (its refusals are counted as requests).
    """
    limiter = RateLimiter(lambda: getattr(app.state, "redis", None), redis_prefix, retry_s)
    failures = FailedAuthentications(auth_failures_per_minute)
    app.state.rate_limiter = limiter
    app.state.auth_failures = failures
    app.add_middleware(RateLimitMiddleware, limiter=limiter, failures=failures)
