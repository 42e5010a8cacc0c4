"""An idle worker fetches nothing until our producers call (core/broker_wakeup.py), yet a write
through the gateway after a quiet spell reaches a listening device at once, not after the idle
fetch interval."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable

import httpx
import pytest

from devtools.bench.sync_clients import SseDevice
from tests.auth.helpers import bearer, register_devices, user_token
from tests.conftest import Isolated, Proc
from tests.helpers import catalog_title

pytestmark = pytest.mark.slow

# So long that a record fetched only at the interval would miss the test's deadline.
IDLE_FETCH_INTERVAL_MS = 60_000


async def test_a_write_after_a_quiet_spell_wakes_the_idle_worker(
    spawn: Callable[..., Proc], isolated: Isolated
) -> None:
    env = {**isolated.env, "KAFKA_IDLE_FETCH_INTERVAL_MS": str(IDLE_FETCH_INTERVAL_MS)}
    spawn("worker", "sync", extra_env=env)
    gateway = spawn("gateway", extra_env={**env, "RATE_LIMIT_ENABLED": "false"})
    user = f"idle-{uuid.uuid4().hex[:6]}"
    token = user_token(
        isolated.settings, subject=user, scopes=["watchlist:read", "watchlist:write"]
    )
    async with httpx.AsyncClient(base_url=gateway.url, timeout=10) as http:
        await register_devices(http, isolated.settings, user, "tv-1", "phone-1")
    tv = await SseDevice(gateway.url, user, token, "tv-1", channels="sync").start()
    try:
        assert tv.status == 200
        async with httpx.AsyncClient(base_url=gateway.url, timeout=10) as http:
            for _ in range(2):
                # Quiet for longer than a consumer stays awake (AWAKE_S): the worker's next
                # fetch waits for a wake-up call.
                await asyncio.sleep(3)
                title = str(await catalog_title(isolated.settings))
                began = time.perf_counter()
                added = await http.put(
                    f"/api/v1/users/{user}/watchlist/{title}",
                    headers={**bearer(token), "X-Device-ID": "phone-1"},
                )
                assert added.status_code == 202, added.text
                heard = await tv.inbox.wait_for(
                    lambda h, t=title: isinstance(h.body, dict) and h.body.get("content_id") == t,
                    wait_s=15,
                )
                assert heard.at - began < 10, "delivered at the idle interval, not on the call"
    finally:
        await tv.close()
