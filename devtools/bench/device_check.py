"""What the device ownership check costs a request: `require_own_device` (one HMGET of the
user's device register) beside the per-user clock stamp every sync write already takes (one
script call), each run sequentially against one Redis. docs/SYNC.md quotes the figures.

    python -m devtools.bench.device_check [calls]    # REDIS_URL, default the local Redis
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from types import SimpleNamespace
from typing import Any

import redis.asyncio as aioredis

from agents.sync.store import mark_devices
from agreements.device_register import register_key
from gateway.device_ownership import require_own_device, require_own_devices
from gateway.sync_clock import clock_key, stamp
from schemas.sync import HLC


async def _timed(call: Callable[[], Awaitable[Any]], calls: int) -> tuple[float, float]:
    """(p50, p99) in microseconds, after a warm-up."""
    for _ in range(calls // 10):
        await call()
    took = []
    for _ in range(calls):
        began = time.perf_counter()
        await call()
        took.append((time.perf_counter() - began) * 1e6)
    took.sort()
    return took[calls // 2], took[int(calls * 0.99)]


async def main(calls: int) -> None:
    redis = aioredis.from_url(os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"))
    prefix, user = f"bench-owner-{uuid.uuid4().hex[:6]}", "u1"
    registered = (HLC(physical_us=1, logical=0), True)
    await mark_devices(redis, prefix, [user], {user: {"tv-1": registered, "phone-1": registered}})
    # What the check reads of a request: its app's Redis and key prefix.
    state = SimpleNamespace(
        redis=redis, settings=SimpleNamespace(redis=SimpleNamespace(key_prefix=prefix))
    )
    request: Any = SimpleNamespace(app=SimpleNamespace(state=state))
    runs: dict[str, Callable[[], Awaitable[Any]]] = {
        "clock stamp (every sync write)": lambda: stamp(redis, prefix, user),
        "require_own_device": lambda: require_own_device(request, user, "tv-1"),
        "require_own_devices, sender + target": lambda: require_own_devices(
            request, user, {"phone-1": "header", "tv-1": "path"}
        ),
    }
    try:
        for label, call in runs.items():
            p50, p99 = await _timed(call, calls)
            print(f"{label:40s} p50 {p50:7.0f} us   p99 {p99:7.0f} us   ({calls} calls)")
    finally:
        await redis.delete(register_key(prefix, user), clock_key(prefix, user))
        await redis.aclose()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 5000))
