"""CPU per request of the gateway's hot routes, in process: `python -m devtools.bench.gateway_cpu`.

The app is called as ASGI (no sockets, no load generator) on a broker and a Redis of its own;
`time.process_time` over N requests, 32 in flight, after a warm-up. On shared cores it moves far
less than requests/s over sockets does (docs/GATEWAY_PERFORMANCE.md), so it is what compares
two versions of the request path. For a baseline, run this file from another checkout, with
that checkout as PYTHONPATH: `cd /tmp/base && PYTHONPATH=$PWD python
/path/to/devtools/bench/gateway_cpu.py 3000` (it needs only `create_app` and the settings).

`python -m devtools.bench.gateway_cpu 3000 --jwks` also configures a loopback provider's JWKS
(devtools/oidc_provider.py) and measures each authenticated route with its ES256 token too, in
turns with the HS256 token (three rounds, which runs first alternating): the cost of verifying
through JWKS, cached, beside today's.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

# The record `mgw bench gateway` posts (main's checkout has it too, for a baseline run).
from devtools.bench.gateway import CONTENT, register_bench_device

CONCURRENCY = 32
WARM_UP = 300
PROGRESS = {"position_seconds": 600.0, "duration_seconds": 5400.0, "state": "playing"}

Headers = list[tuple[bytes, bytes]]


async def _prepared_app(env: dict[str, str]) -> tuple[Any, str, uuid.UUID]:
    os.environ.update(env)
    import redis.asyncio as aioredis

    from agreements.read_model import STATE_READY, document_key, state_key
    from core.config import load_settings
    from gateway.app import create_app
    from gateway.auth.tokens import issue_token
    from topics.admin import create_topics

    settings = load_settings()
    await create_topics(settings.kafka.bootstrap, settings.kafka.topic_prefix)
    scopes = ["content:write", "content:read", "progress:write"]
    token = issue_token(settings.auth, subject="bench", scopes=scopes, ttl_s=3600)
    content_id = uuid.uuid4()
    prefix = settings.redis.key_prefix
    redis = aioredis.from_url(settings.redis.require_url())
    try:
        document = {"canonical_id": str(content_id), **CONTENT, "availability": []}
        await redis.set(document_key(prefix, content_id), orjson.dumps(document))
        await redis.set(state_key(prefix), STATE_READY)
        await register_bench_device(redis, prefix)
    finally:
        await redis.aclose()
    return create_app(settings), token, content_id


async def _call(app: Any, method: str, path: str, headers: Headers, body: bytes) -> int:
    sent = False

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if sent:  # the request is whole: only a disconnect could come next
            await asyncio.sleep(3600)
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    status = 0

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [*headers, (b"host", b"gateway"), (b"content-length", b"%d" % len(body))],
        "client": ("10.0.0.1", 40000),
        "server": ("gateway", 80),
    }
    await app(scope, receive, send)
    return status


def _cases(
    token: str, content_id: uuid.UUID, suffix: str = "", anonymous: bool = True
) -> dict[str, tuple[str, str, Headers, Callable[[], bytes]]]:
    auth: Headers = [(b"authorization", f"Bearer {token}".encode())]
    json_type: Headers = [(b"content-type", b"application/json")]
    cases: dict[str, tuple[str, str, Headers, Callable[[], bytes]]] = {
        "POST content" + suffix: (
            "POST",
            "/api/v1/content",
            auth + json_type,
            lambda: orjson.dumps({"canonical_id": str(uuid.uuid4()), **CONTENT}),
        ),
        "GET read model (auth)" + suffix: (
            "GET",
            f"/api/v1/content/{content_id}",
            auth,
            lambda: b"",
        ),
        "PUT progress" + suffix: (
            "PUT",
            f"/api/v1/users/bench/progress/{content_id}",
            [*auth, *json_type, (b"x-device-id", b"bench-tv")],
            lambda: orjson.dumps(PROGRESS),
        ),
    }
    if anonymous:
        cases["GET cache hit (anonymous)"] = (
            "GET",
            f"/api/v1/content/{content_id}",
            [],
            lambda: b"",
        )
    return cases


async def measure(env: dict[str, str], requests: int) -> dict[str, float]:
    """µs of CPU per request of each route."""
    app, token, content_id = await _prepared_app(env)
    cases = _cases(token, content_id)
    async with app.router.lifespan_context(app):
        return {
            name: await _cpu_per_request(app, name, *case, requests) for name, case in cases.items()
        }


JWKS_ROUNDS = 3


async def measure_jwks(
    env: dict[str, str], requests: int, provider_token: str
) -> dict[str, list[float]]:
    """µs of CPU per request of each authenticated route, with the HS256 token and with the
    provider's, in turns: each round runs both, which one first alternating by round."""
    app, token, content_id = await _prepared_app(env)
    kinds = [
        _cases(token, content_id, anonymous=False),
        _cases(provider_token, content_id, ", JWKS ES256", anonymous=False),
    ]
    figures: dict[str, list[float]] = {}
    async with app.router.lifespan_context(app):
        for round_ in range(JWKS_ROUNDS):
            for pair in zip(*(kind.items() for kind in kinds), strict=True):
                for name, case in pair if round_ % 2 == 0 else reversed(pair):
                    micros = await _cpu_per_request(app, name, *case, requests)
                    figures.setdefault(name, []).append(micros)
    return figures


async def _cpu_per_request(
    app: Any,
    name: str,
    method: str,
    path: str,
    headers: Headers,
    body: Callable[[], bytes],
    requests: int,
) -> float:
    gate = asyncio.Semaphore(CONCURRENCY)

    async def one() -> None:
        async with gate:
            status = await _call(app, method, path, headers, body())
        if status >= 300:
            raise RuntimeError(f"{name}: answered {status}")

    await asyncio.gather(*(one() for _ in range(WARM_UP)))
    started = time.process_time()
    await asyncio.gather(*(one() for _ in range(requests)))
    return (time.process_time() - started) / requests * 1e6


def main(requests: int = 3000, jwks: bool = False) -> None:
    from contextlib import ExitStack

    from core.embedded import start_redis
    from devtools.bench.services import start_bench_broker

    with tempfile.TemporaryDirectory(prefix="mgw-bench-gwcpu-") as tmp, ExitStack() as stack:
        services = list(start_bench_broker(Path(tmp), False))
        redis = start_redis(Path(tmp) / "redis")
        services.append(redis)
        prefix = f"gwcpu{uuid.uuid4().hex[:6]}"
        env = {
            "KAFKA_BROKERS": services[0].url,
            "KAFKA_TOPIC_PREFIX": prefix,
            "REDIS_URL": redis.url,
            "REDIS_KEY_PREFIX": prefix,
            "AUTH_JWT_SECRET": secrets.token_urlsafe(48),
            "RATE_LIMIT_ENABLED": "false",
            "LOG_LEVEL": "warning",
            "METRICS_PORT": "0",
        }
        try:
            if jwks:
                from devtools.bench.gateway import BENCH_USER, TOKEN_SCOPES
                from devtools.oidc_provider import LoopbackOidcProvider, serving_in_thread

                idp = stack.enter_context(serving_in_thread(LoopbackOidcProvider()))
                env |= {"AUTH_JWKS_URL": idp.jwks_url, "AUTH_TRUSTED_ISSUERS": idp.issuer}
                token = idp.token(BENCH_USER, ttl_s=3600, scope=" ".join(TOKEN_SCOPES))
                rounds = asyncio.run(measure_jwks(env, requests, token))
                for name, each in rounds.items():
                    listed = " / ".join(f"{m:.0f}" for m in each)
                    print(f"{name}: {listed} µs of CPU per request ({requests} requests a round)")
                return
            figures = asyncio.run(measure(env, requests))
        finally:
            for service in reversed(services):
                service.stop()
    for name, micros in figures.items():
        print(f"{name}: {micros:.0f} µs of CPU per request ({requests} requests)")


if __name__ == "__main__":
    # Run as a file (another checkout's baseline): this folder's gateway.py, first on the path,
    # would hide the gateway package.
    here = Path(__file__).resolve().parent
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != here]
    numbers = [a for a in sys.argv[1:] if a.isdigit()]
    main(int(numbers[0]) if numbers else 3000, jwks="--jwks" in sys.argv[1:])
