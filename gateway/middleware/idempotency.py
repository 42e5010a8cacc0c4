"""Idempotency-Key on every write: the first final answer is stored and replayed to retries.

As the IETF draft (draft-ietf-httpapi-idempotency-key-header) specifies, for a POST, PUT, PATCH
or DELETE that carries the header, from an authenticated caller:

- the first request claims the key (caller + key) in Redis for GATEWAY_IDEMPOTENCY_LOCK_S and
  runs; its answer, when final, is stored for GATEWAY_IDEMPOTENCY_TTL_S (24 h): the status, the
  headers that describe it (STORED_HEADERS) and the body;
- a retry with the same key and the same request (method, path and query, and a SHA-256 of
  the body) gets that answer again, with `Idempotent-Replayed: true`, and nothing runs;
- the same key with another request: 422 `idempotency_key_reused`, whatever its state;
- a retry while the first still runs: 409 `idempotency_in_flight`, with Retry-After.

Stored answers (final: the same request would get the same answer): 2xx, 3xx, and 400, 405,
410, 413, 415, 422. Not stored, so the key is released and a retry runs again: 401 and 403
(the credential may change), 404 and 409 (the state may change), 408, 425 and 429 (timing),
and every 5xx: notably 503 `outcome_unknown`, whose retry runs again with the same event id
(gateway/idempotency.py), so it is applied once and its 202 is then stored and replayed.

Redis unreachable: 503 `redis_unavailable` (the write does not run: running it unguarded
could answer a retry differently from the first). A request without a principal (the route
refuses it with 401, or it is a public route) is not tracked: there is no caller to key by.
A request that no route serves with its method (404, 405) is not tracked either. It sits
inside the rate limiter (which authenticates: refused credentials and 429s never
reach it) and outside the fast lane, so both lanes are covered.
"""

from __future__ import annotations

import base64
import hashlib
import re
import uuid
from collections.abc import Callable
from typing import Any

import orjson
import redis.asyncio as aioredis
from loguru import logger
from redis.exceptions import RedisError
from starlette.requests import Request
from starlette.routing import compile_path
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.auth.dependencies import resolve_principal
from gateway.auth.errors import AuthError, AuthUnavailable
from gateway.fast_lane import routes_of
from gateway.idempotency import HEADER, InvalidKey, caller_of, parse_key
from gateway.problems import MEDIA_TYPE, problem_bytes

WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
STORED_STATUSES_4XX = frozenset({400, 405, 410, 413, 415, 422})
# What describes the answer; not X-Request-ID nor X-RateLimit-*, which are the retry's own.
STORED_HEADERS = frozenset(
    {
        b"content-type",
        b"location",
        b"content-location",
        b"etag",
        b"last-modified",
        b"cache-control",
        b"retry-after",
        b"allow",
        b"link",
    }
)
# Writes whose answer is a secret that must never be stored (a stream ticket is kept in Redis
# only as its hash; a stored answer would hold it in clear): served as if no key were sent.
NEVER_STORED = frozenset({"/api/v1/users/{user_id}/stream/ticket"})
REPLAYED_HEADER = "Idempotent-Replayed"
IN_FLIGHT_RETRY_AFTER_S = 1
REDIS_RETRY_AFTER_S = 5

# Store the answer (or release the key) only while the claim is still this request's: after
# its lock lapsed another request may hold the key.
_FINISH = """
local current = redis.call('GET', KEYS[1])
if not current or cjson.decode(current)['token'] ~= ARGV[1] then return 0 end
if ARGV[2] == '' then
  redis.call('DEL', KEYS[1])
else
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
end
return 1
"""


def storable(status: int) -> bool:
    return status < 400 or status in STORED_STATUSES_4XX


def fingerprint(scope: Scope, body: bytes) -> str:
    digest = hashlib.sha256()
    for part in (scope["method"], scope["path"], scope.get("query_string", b"").decode("latin-1")):
        digest.update(part.encode() + b"\n")
    digest.update(body)
    return digest.hexdigest()


def record_key(prefix: str, caller: str, key: str) -> str:
    # Hashed: a key is up to 255 characters of the client's choosing.
    digest = hashlib.sha256(f"{caller}\n{key}".encode()).hexdigest()
    return f"{prefix}:idempotency:{digest}"


class IdempotencyMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        redis: Callable[[], aioredis.Redis | None],
        key_prefix: str,
        ttl_s: int,
        lock_s: float,
    ) -> None:
        self.app = app
        self._redis = redis
        self._prefix = key_prefix
        self._ttl_ms = ttl_s * 1000
        self._lock_ms = max(1, int(lock_s * 1000))
        self._writes: list[tuple[re.Pattern[str], frozenset[str]]] | None = None

    def _served(self, scope: Scope) -> bool:
        if self._writes is None:
            # Read once, after every router was included.
            self._writes = [
                (compile_path(route.path)[0], frozenset(route.methods) & WRITE_METHODS)
                for route in routes_of(scope["app"].routes)
                if getattr(route, "methods", None)
                and getattr(route, "path", None)
                and route.path not in NEVER_STORED
            ]
        method, path = scope["method"], scope["path"]
        return any(method in methods and rx.match(path) for rx, methods in self._writes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in WRITE_METHODS:
            await self.app(scope, receive, send)
            return
        raw = _header(scope, HEADER.encode())
        if raw is None or not self._served(scope):
            # No key, or no route for this method and path: its 404/405 is never a replay.
            await self.app(scope, receive, send)
            return
        try:
            principal = await resolve_principal(Request(scope))
        except (AuthError, AuthUnavailable):
            principal = None  # the route refuses it (401 before any 422)
        if principal is None:
            await self.app(scope, receive, send)
            return
        try:
            key = parse_key(raw)
        except InvalidKey as exc:
            await _problem(
                scope,
                send,
                422,
                "validation_failed",
                "Idempotency-Key is not valid",
                fields=[{"field": "header.Idempotency-Key", "reason": str(exc)}],
            )
            return
        body, receive, complete = await _buffered(receive)
        if not complete:
            # The client left before its body arrived: nothing to record, the app sees it go.
            await self.app(scope, receive, send)
            return
        await self._guarded(scope, receive, send, caller_of(principal), key, body)

    async def _guarded(
        self, scope: Scope, receive: Receive, send: Send, caller: str, key: str, body: bytes
    ) -> None:
        redis = self._redis()
        name = record_key(self._prefix, caller, key)
        digest = fingerprint(scope, body)
        token = uuid.uuid4().hex
        claim = orjson.dumps({"state": "in_flight", "fingerprint": digest, "token": token})
        try:
            if redis is None:
                raise RedisError("no Redis client (the gateway is starting or stopping)")
            existing: dict[str, Any] | None = None
            # Twice at most: the record may lapse between the failed claim and the read.
            for _ in range(2):
                if await redis.set(name, claim, nx=True, px=self._lock_ms):
                    break
                stored = await redis.get(name)
                if stored is not None:
                    existing = orjson.loads(stored)
                    break
            else:
                existing = {"state": "in_flight", "fingerprint": digest}
        except RedisError as exc:
            logger.warning("idempotency records unreachable for {}: {!r}", scope["path"], exc)
            await _problem(
                scope,
                send,
                503,
                "redis_unavailable",
                "the Idempotency-Key cannot be checked (Redis is unreachable), so the write did "
                "not run; retry with the same key after the delay in Retry-After",
                headers=[(b"retry-after", str(REDIS_RETRY_AFTER_S).encode())],
            )
            return
        if existing is not None:
            await self._answer_retry(scope, send, key, digest, existing)
            return
        await self._run(scope, receive, send, redis, name, token, digest)

    async def _answer_retry(
        self, scope: Scope, send: Send, key: str, digest: str, existing: dict[str, Any]
    ) -> None:
        if existing.get("fingerprint") != digest:
            await _problem(
                scope,
                send,
                422,
                "idempotency_key_reused",
                f"Idempotency-Key {key!r} was used for another request (method, path or body "
                "differ); send a new key for a new operation",
            )
            return
        if existing.get("state") != "done":
            await _problem(
                scope,
                send,
                409,
                "idempotency_in_flight",
                f"a request with Idempotency-Key {key!r} is still being processed; retry after "
                "the delay in Retry-After to get its answer",
                headers=[(b"retry-after", str(IN_FLIGHT_RETRY_AFTER_S).encode())],
            )
            return
        body = base64.b64decode(existing["body"])
        headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in existing["headers"]]
        headers += [
            (b"content-length", str(len(body)).encode()),
            (REPLAYED_HEADER.lower().encode(), b"true"),
        ]
        await send(
            {"type": "http.response.start", "status": existing["status"], "headers": headers}
        )
        await send({"type": "http.response.body", "body": body})

    async def _run(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        redis: aioredis.Redis,
        name: str,
        token: str,
        digest: str,
    ) -> None:
        status = 0
        headers: list[tuple[str, str]] = []
        chunks: list[bytes] = []

        async def capturing_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers.extend(
                    (k.decode("latin-1"), v.decode("latin-1"))
                    for k, v in message.get("headers", [])
                    if k.lower() in STORED_HEADERS
                )
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))
            await send(message)

        record = b""
        try:
            await self.app(scope, receive, capturing_send)
            if status and storable(status):
                record = orjson.dumps(
                    {
                        "state": "done",
                        "fingerprint": digest,
                        "token": token,
                        "status": status,
                        "headers": headers,
                        "body": base64.b64encode(b"".join(chunks)).decode(),
                    }
                )
        finally:
            try:
                await redis.eval(  # type: ignore[misc]
                    _FINISH, 1, name, token, record.decode(), str(self._ttl_ms)
                )
            except RedisError as exc:
                # The answer is out; the claim lapses after the lock time and a retry then
                # runs again (same event id: applied once).
                logger.warning("idempotency record of {} not written: {!r}", scope["path"], exc)


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers") or []:
        if key == name:
            return value.decode("latin-1")  # type: ignore[no-any-return]
    return None


async def _buffered(receive: Receive) -> tuple[bytes, Receive, bool]:
    """The whole body, a receive that hands it to the app as if it arrived now, and whether
    it arrived whole."""
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            # The client left: the app sees the disconnect as it would have.
            pending: list[Message] = [message]
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            pending = []
            break
    body = b"".join(chunks)
    replayed = False

    async def replay() -> Message:
        nonlocal replayed
        if not replayed:
            replayed = True
            if pending:
                return pending.pop()
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return body, replay, not pending


async def _problem(
    scope: Scope,
    send: Send,
    status: int,
    code: str,
    detail: str,
    fields: list[dict[str, str]] | None = None,
    headers: list[tuple[bytes, bytes]] | None = None,
) -> None:
    request_id = (scope.get("state") or {}).get("request_id")
    body = problem_bytes(status, code, detail, scope["path"], fields, request_id)
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", MEDIA_TYPE.encode()),
                (b"content-length", str(len(body)).encode()),
                *(headers or []),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
