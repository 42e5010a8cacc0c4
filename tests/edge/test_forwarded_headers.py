"""Whose X-Forwarded-For the gateway believes is configuration (GATEWAY_FORWARDED_ALLOW_IPS),
not uvicorn's default (which trusts 127.0.0.1). The client address the app sees is read where
the rate limiter keys its counters in Redis: `ip:<address>`.

Spawned gateways (uvicorn with the options gateway/server.py gives it), called from 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable

import httpx
import pytest
import redis

from core.config import Settings, load_settings, settings_with
from gateway.server import forwarded_options
from tests.auth.helpers import random_ip
from tests.conftest import Proc

ANONYMOUS_GET = {
    # A route the rate limiter counts: no cache in front, no agent asked on a miss.
    "RESPONSE_CACHE_ENABLED": "false",
    "GATEWAY_LOOKUP_ON_MISS": "false",
    "RATE_LIMIT_ENABLED": "true",
}


def counted_addresses(redis_url: str, prefix: str) -> set[str]:
    client = redis.Redis.from_url(redis_url)
    try:
        keys = [
            k.decode() for k in client.scan_iter(match=f"{prefix}:ratelimit:{{ip:*", count=1000)
        ]
    finally:
        client.close()
    return {key.split("{ip:", 1)[1].split("}", 1)[0] for key in keys}


async def forged_request(gateway: Proc, address: str) -> httpx.Response:
    url = f"{gateway.url}/api/v1/content/{uuid.uuid4()}"
    headers = {"X-Forwarded-For": address, "X-Forwarded-Proto": "https"}
    return await asyncio.to_thread(httpx.get, url, headers=headers, timeout=5)


def test_no_proxy_is_trusted_unless_configured(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MGW_ENV_FILE", "/nonexistent/.env")
    monkeypatch.delenv("GATEWAY_FORWARDED_ALLOW_IPS", raising=False)
    # uvicorn's own variable changes nothing: only ours is read.
    monkeypatch.setenv("FORWARDED_ALLOW_IPS", "*")
    assert load_settings().gateway.forwarded_allow_ips == []
    assert forwarded_options([]) == {"proxy_headers": False, "forwarded_allow_ips": []}
    trusted = settings_with({"GATEWAY_FORWARDED_ALLOW_IPS": "10.0.0.0/8, 127.0.0.1"})
    assert forwarded_options(trusted.gateway.forwarded_allow_ips) == {
        "proxy_headers": True,
        "forwarded_allow_ips": ["10.0.0.0/8", "127.0.0.1"],
    }


async def test_x_forwarded_for_from_an_untrusted_peer_changes_nothing(
    spawn: Callable[..., Proc], settings: Settings, redis_url: str
) -> None:
    prefix = settings.redis.key_prefix
    # Untrusted: the default. FORWARDED_ALLOW_IPS=* (uvicorn's variable) must not open it.
    untrusted = await asyncio.to_thread(
        spawn, "gateway", extra_env={**ANONYMOUS_GET, "FORWARDED_ALLOW_IPS": "*"}
    )
    forged = random_ip()
    resp = await forged_request(untrusted, forged)
    assert resp.status_code == 404 and "x-ratelimit-limit" in resp.headers, resp.text
    seen = counted_addresses(redis_url, prefix)
    assert forged not in seen
    assert "127.0.0.1" in seen  # the socket peer is who was counted

    # Trusted (the proxy is this host): the forwarded address is the client's.
    trusted = await asyncio.to_thread(
        spawn,
        "gateway",
        extra_env={**ANONYMOUS_GET, "GATEWAY_FORWARDED_ALLOW_IPS": "127.0.0.1"},
    )
    relayed = random_ip()
    resp = await forged_request(trusted, relayed)
    assert resp.status_code == 404, resp.text
    assert relayed in counted_addresses(redis_url, prefix)
