"""Response cache for the API's GETs, in Redis, with strong ETags and 304s.

Rules (docs/OBSERVABILITY.md):
- Only GET under /api/v1; content paths (/api/v1/content/{id}...) live 300 s, the rest 60 s.
- Only 2xx (not 206) responses, and not those a route marks `Cache-Control: no-store`,
  `no-cache` or `private`, nor those setting a cookie.
- Key: method, path and the sorted query. Requests carrying a credential (Authorization or
  X-API-Key) are neither looked up nor stored: authentication and rate limiting run as route
  dependencies, i.e. behind this middleware, so a stored answer would reach a caller whose
  token has since expired or been revoked. They still get an ETag (and their 304), with
  `Cache-Control: private` so no shared cache downstream keeps them.
- Every cacheable response, hit or miss, carries a strong ETag (sha256 of the body) and
  `Cache-Control: public|private, max-age=<seconds left in our cache>`; an If-None-Match
  that matches it is answered 304 without a body, whether the response came from the cache
  or was just made.
- Content entries are indexed per title, so `invalidate_content()` drops them all. A per-title
  generation counter, read before the route runs and checked atomically when storing, keeps a
  response computed before an invalidation from being stored after it.
- Redis trouble never fails a request: the cache is skipped (one warning per outage) and
  re-tried every few seconds.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import parse_qsl, urlencode

import orjson
import redis.asyncio as aioredis
from loguru import logger
from redis.commands.core import AsyncScript
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from agreements.response_cache import (
    CACHE_LABEL,
    generation_key,
    index_key,
)
from core.observability.metrics import CACHE_HITS, CACHE_MISSES
from core.resilience.fastredis import REDIS_ERRORS
from core.resilience.outage import OutageGate
from gateway.middleware.http_metrics import ROUTE_TEMPLATE_KEY, route_template
from gateway.middleware.near_cache import NearCache

# The cache label of hits answered by the in-process tier (gateway/middleware/near_cache.py).
NEAR_LABEL = "response_near"
API_PREFIX = "/api/v1/"
CONTENT_PREFIX = "/api/v1/content/"
# Never replayed from the cache: per-connection, per-request or recomputed on the way out.
_DROPPED_HEADERS = frozenset(
    {
        b"content-length",
        b"connection",
        b"keep-alive",
        b"transfer-encoding",
        b"date",
        b"server",
        b"etag",
        b"cache-control",
        b"x-cache",
        b"x-request-id",
    }
)

RedisSource = Callable[[], aioredis.Redis | None]
# A route asking for these keeps its own caching rules; no-cache (store, but revalidate every
# time) would be lost behind our max-age, so it is not stored either.
UNSTORABLE_DIRECTIVES = frozenset({"no-store", "private", "no-cache"})
# X-Profile-ID too: a request acting as a profile is answered under its parental limits (or
# refused), never from a page cached for whoever asked without one (gateway/profiles.py).
CREDENTIAL_HEADERS = (b"authorization", b"x-api-key", b"x-profile-id")


@dataclass(frozen=True)
class CachePolicy:
    content_ttl_s: int = 300
    default_ttl_s: int = 60
    max_body_bytes: int = 1024 * 1024

    def ttl_for(self, path: str) -> int | None:
        """Seconds to keep a GET of this path, or None when it is not cached at all."""
        if path.startswith(CONTENT_PREFIX) and len(path) > len(CONTENT_PREFIX):
            return self.content_ttl_s
        if path.startswith(API_PREFIX):
            return self.default_ttl_s
        return None


# ----------------------------------------------------------------------- pure rules


def normalized_query(query_string: bytes | str) -> str:
    raw = query_string.decode("latin-1") if isinstance(query_string, bytes) else query_string
    return urlencode(sorted(parse_qsl(raw, keep_blank_values=True)))


def cache_key(prefix: str, method: str, path: str, query_string: bytes | str) -> str:
    material = "\n".join((method.upper(), path, normalized_query(query_string)))
    return f"{prefix}:respcache:{hashlib.sha256(material.encode()).hexdigest()}"


def content_id_of(path: str) -> str | None:
    """The title a content path is about (its first segment after /api/v1/content/)."""
    if not path.startswith(CONTENT_PREFIX):
        return None
    segment = path[len(CONTENT_PREFIX) :].split("/", 1)[0]
    return segment.lower() or None


def strong_etag(body: bytes) -> str:
    return '"' + hashlib.sha256(body).hexdigest()[:32] + '"'


def etag_matches(if_none_match: str, etag: str) -> bool:
    """If-None-Match uses the weak comparison (RFC 9110 13.1.2): W/ prefixes do not matter."""
    value = if_none_match.strip()
    if value == "*":
        return True
    wanted = etag.removeprefix("W/")
    return any(tag.strip().removeprefix("W/") == wanted for tag in value.split(","))


def cache_control_directives(value: str) -> set[str]:
    return {part.split("=", 1)[0].strip().lower() for part in value.split(",") if part.strip()}


def storable(status: int, headers: list[tuple[bytes, bytes]]) -> bool:
    """A route's response we may keep and ETag: 2xx, not partial, not private, no cookie."""
    if not 200 <= status < 300 or status == 206:
        return False
    for name, value in headers:
        lname = name.lower()
        if lname == b"set-cookie":
            return False
        if lname == b"cache-control":
            if cache_control_directives(value.decode("latin-1")) & UNSTORABLE_DIRECTIVES:
                return False
    return True


def remaining_seconds(pttl_ms: int, ttl_s: int) -> int:
    """max-age for a hit: whole seconds left (PTTL is -1/-2 when there is no expiry/key)."""
    if pttl_ms < 0:
        return ttl_s
    return max(0, math.floor(pttl_ms / 1000))


# ---------------------------------------------------------------------- Redis side

# KEYS: entry [, generation, index]
# ARGV: ttl, status, headers, body, etag, route [, expected generation]
_STORE_LUA = """
if #KEYS == 3 then
  local gen = redis.call('GET', KEYS[2]) or ''
  if gen ~= ARGV[7] then return 0 end
end
local ttl = tonumber(ARGV[1])
redis.call('HSET', KEYS[1], 'status', ARGV[2], 'headers', ARGV[3], 'body', ARGV[4],
           'etag', ARGV[5], 'route', ARGV[6])
redis.call('EXPIRE', KEYS[1], ttl)
if #KEYS == 3 then
  redis.call('SADD', KEYS[3], KEYS[1])
  if redis.call('TTL', KEYS[3]) < ttl then redis.call('EXPIRE', KEYS[3], ttl) end
end
return 1
"""


@dataclass
class _Entry:
    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes
    etag: str
    max_age: int
    route: str = ""  # template of the route that made it, for the metrics of hits


# --------------------------------------------------------------------- middleware


@dataclass
class _Lookup:
    """What one GET needs to know about its cache entry."""

    key: str
    ttl: int
    visibility: str  # public, or private for requests with credentials
    if_none_match: str | None
    content_id: str | None
    generation: str = ""  # the title's invalidation counter before the route ran


class ResponseCacheMiddleware:
    """Pure ASGI (not BaseHTTPMiddleware): it must see and rewrite the raw response stream."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        redis: RedisSource,
        key_prefix: str,
        policy: CachePolicy | None = None,
        recheck_s: float = 5.0,
        near: NearCache[_Entry] | None = None,
    ) -> None:
        self.app = app
        self.near = near
        self._redis = redis
        self._prefix = key_prefix
        self.policy = policy or CachePolicy()
        self.gate = OutageGate("Redis (response cache)", recheck_s)
        self._store_script: AsyncScript | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "GET":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        ttl = self.policy.ttl_for(path)
        if ttl is None:
            await self.app(scope, receive, send)
            return
        headers = _request_headers(scope)
        credentialed = any(h in headers for h in CREDENTIAL_HEADERS)
        req = _Lookup(
            key=cache_key(self._prefix, "GET", path, scope.get("query_string", b"")),
            ttl=ttl,
            visibility="private" if credentialed else "public",
            if_none_match=headers.get(b"if-none-match", b"").decode("latin-1") or None,
            content_id=content_id_of(path),
        )
        near = self.near if not credentialed else None
        if near is not None and (copy := near.get(req.key)) is not None:
            entry, left_s = copy
            CACHE_HITS.labels(NEAR_LABEL).inc()
            if entry.route:
                scope[ROUTE_TEMPLATE_KEY] = entry.route
            await _replay(send, replace(entry, max_age=math.floor(left_s)), req)
            return
        client = None
        if not credentialed and self.gate.should_try():
            client = self._redis()
        entry: _Entry | None = None
        if client is not None:
            seen = near.invalidations if near is not None else 0
            try:
                entry = await self._lookup(client, req)
                self.gate.succeeded()
                if entry is not None and near is not None:
                    near.put(req.key, entry, req.content_id, entry.max_age, seen)
            except REDIS_ERRORS as exc:
                self.gate.failed(exc, "GETs are answered without the response cache")
                client = None
        log = logger.bind(cache=CACHE_LABEL, path=path, key=req.key.rsplit(":", 1)[-1][:16])
        if entry is not None:
            CACHE_HITS.labels(CACHE_LABEL).inc()
            if entry.route:
                scope[ROUTE_TEMPLATE_KEY] = entry.route
            log.debug("response cache hit {} ({} s left)", path, entry.max_age)
            await _replay(send, entry, req)
            return
        if client is not None:
            CACHE_MISSES.labels(CACHE_LABEL).inc()
            log.debug("response cache miss {}", path)
        await self._fresh(scope, receive, send, req, client)

    async def _lookup(self, client: aioredis.Redis, req: _Lookup) -> _Entry | None:
        """The entry, if any; also notes the title's invalidation counter in `req`."""
        pipe = client.pipeline(transaction=False)
        pipe.hgetall(req.key)
        pipe.pttl(req.key)
        if req.content_id:
            pipe.get(generation_key(self._prefix, req.content_id))
        results = await pipe.execute()
        raw, pttl = results[0], results[1]
        gen = results[2] if req.content_id else None
        req.generation = gen.decode() if isinstance(gen, bytes) else ""
        if not raw or b"body" not in raw:
            return None
        return _Entry(
            status=int(raw[b"status"]),
            headers=_decode_headers(raw[b"headers"]),
            body=raw[b"body"],
            etag=raw[b"etag"].decode(),
            max_age=remaining_seconds(int(pttl), req.ttl),
            route=raw.get(b"route", b"").decode(),
        )

    async def _fresh(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        req: _Lookup,
        client: aioredis.Redis | None,
    ) -> None:
        """Run the route; ETag (and store) a storable response, pass anything else through."""
        start: Message | None = None
        passthrough = False
        chunks: list[bytes] = []

        async def capture(message: Message) -> None:
            nonlocal start, passthrough
            kind = message["type"]
            if kind == "http.response.start":
                if storable(message["status"], list(message.get("headers", []))):
                    start = message
                else:
                    passthrough = True
                    await send(message)
                return
            if kind != "http.response.body" or passthrough or start is None:
                await send(message)
                return
            chunks.append(message.get("body", b""))
            if message.get("more_body", False):
                return
            body = b"".join(chunks)
            route_headers = list(start.get("headers", []))
            etag = _header(route_headers, b"etag") or strong_etag(body)
            entry = _Entry(
                start["status"], _kept(route_headers), body, etag, req.ttl, route_template(scope)
            )
            await _replay(send, entry, req, hit=False)
            if client is not None and len(body) <= self.policy.max_body_bytes:
                await self._store(client, req, entry)

        await self.app(scope, receive, capture)

    async def _store(self, client: aioredis.Redis, req: _Lookup, entry: _Entry) -> None:
        keys = [req.key]
        args: list[Any] = [
            entry.max_age,
            entry.status,
            _encode_headers(entry.headers),
            entry.body,
            entry.etag,
            entry.route,
        ]
        if req.content_id:
            keys += [
                generation_key(self._prefix, req.content_id),
                index_key(self._prefix, req.content_id),
            ]
            args.append(req.generation)
        if self._store_script is None:
            # EVALSHA, reloading the script after NOSCRIPT (a restarted Redis), on any client.
            self._store_script = client.register_script(_STORE_LUA)
        try:
            stored = await self._store_script(keys=keys, args=args, client=client)
        except REDIS_ERRORS as exc:
            self.gate.failed(exc, "GETs are answered without the response cache")
            return
        if not stored:
            logger.bind(cache=CACHE_LABEL, content_id=req.content_id).debug(
                "response not cached: content {} was invalidated while it was being made",
                req.content_id,
            )


def _encode_headers(headers: list[tuple[bytes, bytes]]) -> bytes:
    return orjson.dumps([(k.decode("latin-1"), v.decode("latin-1")) for k, v in headers])


def _decode_headers(raw: bytes) -> list[tuple[bytes, bytes]]:
    return [(k.encode("latin-1"), v.encode("latin-1")) for k, v in orjson.loads(raw)]


def _request_headers(scope: Scope) -> dict[bytes, bytes]:
    out: dict[bytes, bytes] = {}
    for name, value in scope.get("headers") or []:
        lname = name.lower()
        # Repeated If-None-Match headers are one list (RFC 9110 5.3).
        out[lname] = out[lname] + b", " + value if lname in out else value
    return out


def _header(headers: list[tuple[bytes, bytes]], name: bytes) -> str | None:
    for key, value in headers:
        if key.lower() == name:
            return value.decode("latin-1")
    return None


def _kept(headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    return [(k, v) for k, v in headers if k.lower() not in _DROPPED_HEADERS]


async def _replay(send: Send, entry: _Entry, req: _Lookup, hit: bool = True) -> None:
    validators = [
        (b"etag", entry.etag.encode("latin-1")),
        (b"cache-control", f"{req.visibility}, max-age={entry.max_age}".encode()),
        (b"x-cache", b"HIT" if hit else b"MISS"),
    ]
    if req.if_none_match is not None and etag_matches(req.if_none_match, entry.etag):
        # 304 keeps the validators and Vary but no content headers and no body.
        vary = [(k, v) for k, v in entry.headers if k.lower() == b"vary"]
        await send({"type": "http.response.start", "status": 304, "headers": validators + vary})
        await send({"type": "http.response.body", "body": b""})
        return
    headers = [*entry.headers, (b"content-length", str(len(entry.body)).encode()), *validators]
    await send({"type": "http.response.start", "status": entry.status, "headers": headers})
    await send({"type": "http.response.body", "body": entry.body})
