"""`mgw bench gateway` end to end, briefly: it prints every figure and they agree."""

from __future__ import annotations

import os
import re

import pytest

from tests.helpers import run_cli


def _row(out: str, label: str) -> list[str]:
    match = re.search(re.escape(label) + r"[^│]*│(.+)│\s*$", out, re.MULTILINE)
    assert match, f"no row {label!r} in:\n{out}"
    return [cell.strip() for cell in match.group(1).split("│")]


def _number(cell: str) -> float:
    return float(cell.replace(",", ""))


@pytest.mark.asyncio
async def test_bench_gateway_prints_rates_latencies_and_the_ratio() -> None:
    # Its own broker and Redis: nothing of the session's services.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KAFKA_", "REDIS_"))}
    env.update(COLUMNS="200", LOG_LEVEL="warning")
    args = ["bench", "gateway", "--seconds", "1", "--generator", "built-in", "--connections", "8"]
    for run in ("post", "hit", "fixed", "raw"):
        args += ["--only", run]
    code, out, err = await run_cli(*args, env=env, limit_s=240)
    assert code == 0, err[-3000:] + out[-3000:]

    post = _row(out, "POST content ")
    hit = _row(out, "GET cache hit (anonymous)")
    fixed = _row(out, "POST content, fixed 500/s")
    raw = _row(out, "raw producer ")
    for row in (post, hit, fixed, raw):
        rate, _items, p50, p99, failed = row[:5]
        assert _number(rate) > 0 and failed == "0", row
        assert _number(p50) <= _number(p99), row
    assert post[-1] == ">= 3,000 req/s" and hit[-1] == ">= 5,000 req/s"
    assert fixed[-1] == "p99 < 20 ms"
    # The ratio is the two rates of this very run.
    ratio = _row(out, "ratio POST content / raw producer")
    assert _number(ratio[0]) == pytest.approx(_number(post[0]) / _number(raw[0]), abs=0.006)
    assert "built-in client x 8 connections" in out


@pytest.mark.asyncio
async def test_bench_gateway_puts_jwks_verification_beside_hs256() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KAFKA_", "REDIS_"))}
    env.update(COLUMNS="200", LOG_LEVEL="warning")
    args = ["bench", "gateway", "--seconds", "1", "--generator", "built-in", "--connections", "8"]
    args += ["--auth", "both", "--only", "post", "--only", "read"]
    code, out, err = await run_cli(*args, env=env, limit_s=240)
    assert code == 0, err[-3000:] + out[-3000:]

    for label in ("POST content ", "POST content, JWKS ES256", "GET read model (auth), JWKS"):
        rate, _items, p50, p99, failed = _row(out, label)[:5]
        assert _number(rate) > 0 and failed == "0" and _number(p50) <= _number(p99)
    # The side-by-side table: HS256 req/s, JWKS req/s, their ratio.
    side = _row(out.split("token verification: HS256")[1], "GET read model (auth) ")
    assert len(side) == 5 and _number(side[2]) == pytest.approx(
        _number(side[1]) / _number(side[0]), abs=0.006
    )
    # One gateway process: one signature check per token (HS256, JWKS), every other request a
    # hit of the verified-token cache; the provider's JWKS fetched once, at start.
    verified = re.search(
        r"verified-token cache: (\d+) signature checks \(misses\) over ([\d,]+) authenticated "
        r"requests.*JWKS was fetched (\d+) time",
        " ".join(out.split()),
    )
    assert verified, out
    assert int(verified.group(1)) == 2 and _number(verified.group(2)) > 100
    assert verified.group(3) == "1"
    assert "tokens HS256 + JWKS ES256" in " ".join(out.split())
