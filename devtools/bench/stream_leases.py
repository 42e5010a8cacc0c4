"""What the per-user stream cap costs (gateway/realtime/lifecycle.py): taking and giving back
a lease, and one refresh of a full process's leases, against the Redis of REDIS_URL.

    python -m devtools.bench.stream_leases [leases]      # default 10,000, one user each
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
import uuid

import redis.asyncio as aioredis

from gateway.realtime.lifecycle import REFRESH_CHUNK, StreamLeases, leases_key


def _ms(values: list[float], quantile: float) -> float:
    return sorted(values)[int(len(values) * quantile)] * 1000


async def run(url: str, held_count: int) -> str:
    redis = aioredis.from_url(url)
    prefix = f"bench-leases-{uuid.uuid4().hex[:6]}"
    leases = StreamLeases(redis, prefix, per_user=10, per_process=10**6, lease_ttl_s=30)
    far = time.time() + 3600
    taken: list[float] = []
    given: list[float] = []
    try:
        for i in range(2000):
            started = time.perf_counter()
            lease = await leases.acquire(f"u{i % 500}", "d", "stream", far)
            taken.append(time.perf_counter() - started)
            started = time.perf_counter()
            await leases.release(lease)
            given.append(time.perf_counter() - started)
        held = [await leases.acquire(f"u{i}", "d", "stream", far) for i in range(held_count)]
        started = time.perf_counter()
        await leases.refresh()
        refresh_s = time.perf_counter() - started
        for lease in held:
            await leases.release(lease)
    finally:
        await leases.close()
        await redis.delete(*(leases_key(prefix, f"u{i}") for i in range(max(held_count, 500))))
        await redis.aclose()
    chunks = max(1, -(-held_count // REFRESH_CHUNK))
    return (
        f"acquire p50 {_ms(taken, 0.5):.2f} ms, p99 {_ms(taken, 0.99):.2f} ms; "
        f"release p50 {_ms(given, 0.5):.2f} ms; refresh of {held_count} leases "
        f"{refresh_s * 1000:.0f} ms in {chunks} pipelines "
        f"(~{refresh_s * 1000 / chunks:.0f} ms each)"
    )


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
    print(asyncio.run(run(os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"), count)))


if __name__ == "__main__":
    main()
