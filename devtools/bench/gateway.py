"""`mgw bench gateway`: the gateway's requests/s and latencies against the raw producer's rate.

A gateway (one process, or `--workers N`) runs on a broker and a Redis of the benchmark's own,
with authentication on and rate limits off. wrk, from a separate process, drives it over real
sockets: single-event POSTs, batch POSTs, GETs from the read model (authenticated, so the
response cache never answers), GETs the response cache answers (anonymous, after one warming
request) and PUTs of playback progress (the hottest sync write). An open-loop client then
offers a fixed 500 requests/s and measures each latency from the moment its request was due,
so a stall is not hidden by the load backing off. Last, in the same run, an aiokafka producer
with the same number of concurrent awaited sends measures what the broker takes without the
gateway: the ratio is the gateway's share.
"""

from __future__ import annotations

import asyncio
import os
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import orjson
from rich.console import Console
from rich.table import Table

from core.embedded import ServiceProcess, free_port, start_redis
from devtools.bench.services import start_bench_broker

if TYPE_CHECKING:
    import redis.asyncio as aioredis

console = Console(stderr=True)

TARGET_POST_RPS = 3000.0
TARGET_RATIO = 0.3
TARGET_FIXED_P99_MS = 20.0
TARGET_CACHE_HIT_RPS = 5000.0
FIXED_RATE = 500.0
POST_RUN = "POST content"
CACHE_HIT_RUN = "GET cache hit (anonymous)"
RAW_RUN = "raw producer"
# What --only chooses from, in the order they run.
SCENARIOS = ("post", "batch", "read", "hit", "sync", "fixed", "raw")
GENERATORS = ("wrk", "built-in")
BATCH_ITEMS = 50
PLATFORM = "netflix"
# The user whose playback progress the sync run reports (the token's subject).
BENCH_USER = "bench"
PROGRESS = {"position_seconds": 600.0, "duration_seconds": 5400.0, "state": "playing"}
# One canonical record, as the README's try-it sends it; each request gets its own id.
CONTENT = {
    "content_type": "movie",
    "title": "Heat",
    "genres": ["crime"],
    "release_year": 1995,
    "updated_at": "2026-11-01T00:00:00Z",
}


@dataclass(frozen=True)
class Run:
    """One load run: what was offered and what came back."""

    name: str
    requests_per_s: float
    p50_ms: float
    p99_ms: float
    failed: int
    requests: int
    items_per_request: int = 1


class BenchError(RuntimeError):
    pass


# ------------------------------------------------------------------ wrk


_POST_LUA = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer {token}"
local threads = 0
function setup(thread)
  thread:set("tid", threads)
  threads = threads + 1
end
local n = 0
function request()
  n = n + 1
  local id = string.format("6f1c2a8e-%04x-4a4a-9b9b-%012x", tid, n)
  return wrk.format(nil, nil, nil, '{{"canonical_id":"' .. id .. '",{rest}')
end
"""

_FIXED_LUA = """
wrk.method = "{method}"
{headers}
wrk.body = {body}
"""

_UNIT_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


def _ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    if not match:
        raise BenchError(f"wrk printed a latency I cannot read: {text!r}")
    return float(match.group(1)) * _UNIT_MS[match.group(2)]


def parse_wrk(name: str, output: str, items_per_request: int = 1) -> Run:
    """requests/s, p50/p99 and failures from `wrk --latency` output."""
    rps = re.search(r"Requests/sec:\s+([\d.]+)", output)
    p50 = re.search(r"^\s+50%\s+(\S+)", output, re.M)
    p99 = re.search(r"^\s+99%\s+(\S+)", output, re.M)
    total = re.search(r"(\d+) requests in", output)
    if not (rps and p50 and p99 and total):
        raise BenchError(f"unexpected wrk output:\n{output}")
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    failed = int(non2xx.group(1)) if non2xx else 0
    if errors:
        failed += sum(int(g) for g in errors.groups())
    return Run(
        name,
        float(rps.group(1)),
        _ms(p50.group(1)),
        _ms(p99.group(1)),
        failed,
        int(total.group(1)),
        items_per_request,
    )


def _wrk(
    name: str,
    url: str,
    script: str,
    workdir: Path,
    seconds: float,
    connections: int,
    threads: int,
    items_per_request: int = 1,
) -> Run:
    lua = workdir / f"{re.sub(r'[^a-z]+', '_', name.lower())}.lua"
    lua.write_text(script)
    cmd = [
        "wrk",
        f"-t{threads}",
        f"-c{connections}",
        f"-d{max(1, round(seconds))}s",
        "--latency",
        "-s",
        str(lua),
        url,
    ]
    with console.status(f"{name}: {connections} connections for {seconds:g} s..."):
        done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise BenchError(f"wrk failed ({done.returncode}): {done.stderr or done.stdout}")
    return parse_wrk(name, done.stdout, items_per_request)


def _lua_string(value: str | bytes) -> str:
    text = value.decode() if isinstance(value, bytes) else value
    return "[==[" + text + "]==]"


def _fixed_script(method: str, headers: dict[str, str], body: bytes | None = None) -> str:
    lines = "\n".join(f'wrk.headers["{k}"] = {_lua_string(v)}' for k, v in headers.items())
    return _FIXED_LUA.format(
        method=method, headers=lines, body=_lua_string(body) if body is not None else "nil"
    )


# ------------------------------------------------------------------ fixed offered rate


async def register_bench_device(redis: aioredis.Redis, prefix: str) -> None:
    """The device register the sync agent would write, with bench-tv registered to the bench
    user: progress reports pass the ownership check on its one-HMGET path, as in production."""
    from agreements.device_register import mark_all
    from schemas.sync import HLC

    registered = (HLC(physical_us=1, logical=0), True)
    await mark_all(redis, prefix, [BENCH_USER], {BENCH_USER: {"bench-tv": registered}})


async def _fixed_rate(url: str, token: str, rate: float, seconds: float) -> Run:
    """Offer `rate` POSTs/s on a schedule; each latency counts from when its request was due."""
    import aiohttp

    total = int(rate * seconds)
    latencies: list[float] = []
    failed = 0
    headers = {"authorization": f"Bearer {token}", "content-type": "application/json"}
    # aiohttp rather than httpx: the client shares the machine with the gateway, and aiohttp
    # spends a fraction of httpx's CPU per request.
    connector = aiohttp.TCPConnector(limit=256)
    timeout = aiohttp.ClientTimeout(total=10.0)
    async with aiohttp.ClientSession(
        connector=connector, timeout=timeout, headers=headers
    ) as session:

        async def one(i: int, due: float) -> None:
            nonlocal failed
            body = orjson.dumps({"canonical_id": str(uuid.UUID(int=i + 1)), **CONTENT})
            try:
                async with session.post(url, data=body) as response:
                    await response.read()
                    ok = response.status == 202
            except (aiohttp.ClientError, TimeoutError):
                ok = False
            if ok:
                latencies.append(time.perf_counter() - due)
            else:
                failed += 1

        # A short warm-up opens connections before the measured schedule starts.
        await asyncio.gather(*(one(10**9 + i, time.perf_counter()) for i in range(32)))
        latencies.clear()
        failed = 0
        tasks = []
        start = time.perf_counter()
        for i in range(total):
            due = start + i / rate
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(i, due)))
        await asyncio.gather(*tasks)
        elapsed = time.perf_counter() - start
    latencies.sort()
    if not latencies:
        raise BenchError("no request of the fixed-rate run succeeded")
    return Run(
        f"POST content, fixed {rate:g}/s",
        len(latencies) / elapsed,
        latencies[len(latencies) // 2] * 1000,
        latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000,
        failed,
        total,
    )


# ------------------------------------------------------------------ raw producer


async def _raw_producer(bootstrap: str, topic: str, concurrency: int, seconds: float) -> Run:
    """What the broker takes from one aiokafka producer with `concurrency` awaited sends."""
    from aiokafka import AIOKafkaProducer

    from schemas.content import CanonicalContent, ContentSubmitted
    from schemas.envelope import encode, wrap

    content = CanonicalContent.model_validate({"canonical_id": str(uuid.uuid4()), **CONTENT})
    value = encode(wrap(ContentSubmitted(content=content), key="k", source="bench"))
    # The gateway's producer settings (core/publisher.py), so only the gateway differs.
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        acks="all",
        enable_idempotence=False,
        linger_ms=2,
        max_batch_size=256 * 1024,
    )
    await producer.start()
    latencies: list[float] = []
    try:
        stop = time.perf_counter() + seconds

        async def sender(n: int) -> None:
            i = 0
            while time.perf_counter() < stop:
                i += 1
                began = time.perf_counter()
                await producer.send_and_wait(topic, value, key=f"{n}-{i}".encode())
                latencies.append(time.perf_counter() - began)

        start = time.perf_counter()
        await asyncio.gather(*(sender(n) for n in range(concurrency)))
        elapsed = time.perf_counter() - start
    finally:
        await producer.stop()
    latencies.sort()
    return Run(
        RAW_RUN,
        len(latencies) / elapsed,
        latencies[len(latencies) // 2] * 1000,
        latencies[int(len(latencies) * 0.99)] * 1000,
        0,
        len(latencies),
    )


# ------------------------------------------------------------------ the stack


async def _prepare(env: dict[str, str], content_id: uuid.UUID) -> tuple[str, str]:
    """Topics, a dev token, an ingest API key mirrored in Redis, one read-model document."""
    import redis.asyncio as aioredis

    from agreements.read_model import STATE_READY, document_key, state_key
    from core.config import load_settings
    from gateway.auth.api_keys import ApiKeyRecord, generate_key, redis_key
    from gateway.auth.principal import Tier
    from gateway.auth.tokens import issue_token
    from topics.admin import create_topics

    os.environ.update(env)
    settings = load_settings()
    await create_topics(settings.kafka.bootstrap, settings.kafka.topic_prefix)
    token = issue_token(
        settings.auth,
        subject=BENCH_USER,
        scopes=["content:write", "content:read", "progress:write"],
        ttl_s=3600,
    )
    key = generate_key()
    prefix = settings.redis.key_prefix
    redis = aioredis.from_url(settings.redis.require_url())
    try:
        # The mirror record `mgw keys create` would write; the bench needs no PostgreSQL.
        record = ApiKeyRecord(key.key_id, "bench", ("ingest:write",), Tier.enterprise)
        await redis.set(redis_key(prefix, key.hash), record.to_json())
        document = {"canonical_id": str(content_id), **CONTENT, "availability": []}
        await redis.set(document_key(prefix, content_id), orjson.dumps(document))
        await redis.set(state_key(prefix), STATE_READY)
        await register_bench_device(redis, prefix)
    finally:
        await redis.aclose()
    return token, key.full


def _start_gateway(
    env: dict[str, str], workdir: Path, workers: int, code_dir: Path | None
) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, "-m", "cli.main", "gateway"]
    if workers > 1:
        cmd += ["--workers", str(workers)]
    child_env = {**os.environ, **env}
    if code_dir is not None:
        # Another checkout's gateway (e.g. an older commit), run with this environment.
        child_env["PYTHONPATH"] = str(code_dir)
    log = (workdir / "gateway.log").open("wb")
    return subprocess.Popen(
        cmd,
        env=child_env,
        cwd=code_dir or None,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def _wait_ready(base: str, process: subprocess.Popen[bytes], workdir: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            log = (workdir / "gateway.log").read_text()[-3000:]
            raise BenchError(f"the gateway exited with {process.returncode}:\n{log}")
        try:
            if httpx.get(f"{base}/health/ready", timeout=1.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise BenchError("the gateway was not ready within 60 s; see its log in the bench dir")


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        os.killpg(process.pid, 15)
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, 9)
            process.wait()


def _start_profiler(pid: int, out: Path) -> subprocess.Popen[bytes]:
    """py-spy on the gateway (and its worker processes) for the load runs, as collapsed stacks."""
    cmd = ["py-spy", "record", "--pid", str(pid), "--subprocesses", "--nonblocking"]
    cmd += ["--rate", "250", "--format", "raw", "--output", str(out)]
    profiler = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    time.sleep(1.0)  # attached before the first request
    return profiler


def _stop_profiler(profiler: subprocess.Popen[bytes], out: Path) -> None:
    profiler.send_signal(2)  # py-spy writes its file on SIGINT
    try:
        _, err = profiler.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        profiler.kill()
        err = b""
    if out.exists():
        console.print(f"profile: {out} (collapsed stacks; flamegraph.pl or speedscope.app read it)")
    else:
        console.print(f"[yellow]py-spy wrote no profile[/yellow]: {err.decode()[-500:]}")


# ------------------------------------------------------------------ the command


def bench_gateway(
    seconds: float = 10.0,
    connections: int = 32,
    threads: int = 2,
    workers: int = 1,
    code_dir: Path | None = None,
    only: frozenset[str] = frozenset(SCENARIOS),
    profile: Path | None = None,
    near_ttl_s: float = 0.0,
    generator: str | None = None,
    durable: bool = False,
) -> int:
    if generator is None:
        generator = "wrk" if shutil.which("wrk") else "built-in"
        if generator != "wrk":
            console.print(
                "[yellow]wrk is not installed[/yellow]: the built-in (aiohttp) load generator "
                "runs instead, and may be what limits the figures; `apt-get install -y wrk`."
            )
    elif generator == "wrk" and shutil.which("wrk") is None:
        console.print("[red]wrk is not installed[/red]: `apt-get install -y wrk`, or drop it.")
        return 2
    if profile is not None and shutil.which("py-spy") is None:
        console.print("[red]py-spy is not installed[/red]: `pip install py-spy`, then run again.")
        return 2
    services: list[ServiceProcess] = []
    gateway: subprocess.Popen[bytes] | None = None
    runs: list[Run] = []
    with tempfile.TemporaryDirectory(prefix="mgw-bench-gw-") as tmp:
        workdir = Path(tmp)
        try:
            services.extend(start_bench_broker(workdir, durable))
            broker = services[-1]
            redis_url = os.environ.get("REDIS_URL")
            if not redis_url:
                rd = start_redis(workdir / "redis")
                services.append(rd)
                redis_url = rd.url
            port = free_port()
            prefix = f"bgw{uuid.uuid4().hex[:6]}"
            env = {
                "KAFKA_BROKERS": broker.url,
                "KAFKA_TOPIC_PREFIX": prefix,
                "REDIS_URL": redis_url,
                "REDIS_KEY_PREFIX": prefix,
                "AUTH_JWT_SECRET": secrets.token_urlsafe(48),
                "RATE_LIMIT_ENABLED": "false",
                "RESPONSE_CACHE_NEAR_TTL_S": str(near_ttl_s),
                "GATEWAY_PORT": str(port),
                "METRICS_PORT": "0",
                "LOG_LEVEL": "warning",
                "LOG_FORMAT": "json",
            }
            content_id = uuid.uuid4()
            token, api_key = asyncio.run(_prepare(env, content_id))
            base = f"http://127.0.0.1:{port}"
            gateway = _start_gateway(env, workdir, workers, code_dir)
            with console.status("starting the gateway..."):
                _wait_ready(base, gateway, workdir)
            profiler = _start_profiler(gateway.pid, profile) if profile is not None else None
            try:
                runs = _load_runs(
                    base,
                    token,
                    api_key,
                    content_id,
                    workdir,
                    seconds,
                    connections,
                    threads,
                    only,
                    generator,
                )
            finally:
                if profiler is not None:
                    _stop_profiler(profiler, profile)
            if "raw" in only:
                topic = f"{prefix}.content.submitted"
                runs.append(asyncio.run(_raw_producer(broker.url, topic, connections, seconds)))
        finally:
            if gateway is not None:
                _stop(gateway)
            for service in reversed(services):
                service.stop()
    title = (
        f"mgw bench gateway ({workers} process{'es' if workers > 1 else ''}, "
        f"{'wrk ' + str(threads) + ' threads' if generator == 'wrk' else 'built-in client'} x "
        f"{connections} connections, {seconds:g} s per run, "
        f"near cache {f'{near_ttl_s:g} s' if near_ttl_s else 'off'}, "
        f"broker {'durable' if durable else 'in memory'})"
    )
    # Wide enough for the table when piped, so no figure is cut.
    Console(width=max(120, shutil.get_terminal_size().columns)).print(results_table(runs, title))
    return 1 if any(r.failed for r in runs) else 0


@dataclass(frozen=True)
class Load:
    """One closed-loop run: `connections` clients sending the same request back to back."""

    name: str
    method: str
    url: str
    headers: dict[str, str]
    body: bytes | None = None
    unique_ids: bool = False  # POST content: each request a title of its own
    items: int = 1

    def wrk_script(self) -> str:
        if self.unique_ids:
            rest = orjson.dumps(CONTENT).decode()[1:]
            return _POST_LUA.format(
                token=self.headers["Authorization"].removeprefix("Bearer "),
                rest=rest.replace("\\", "\\\\"),
            )
        return _fixed_script(self.method, self.headers, self.body)

    def body_for(self, i: int) -> bytes | None:
        if self.unique_ids:
            return orjson.dumps({"canonical_id": str(uuid.uuid4()), **CONTENT})
        return self.body


def _load_runs(
    base: str,
    token: str,
    api_key: str,
    content_id: uuid.UUID,
    workdir: Path,
    seconds: float,
    connections: int,
    threads: int,
    only: frozenset[str],
    generator: str,
) -> list[Run]:
    batch = orjson.dumps(
        {
            "items": [
                {
                    "platform_item_id": f"bench-{i}",
                    "title": f"Bench Title {i}",
                    "content_type": "movie",
                    "year": 2001,
                    "genres": ["Drama"],
                    "source_updated_at": "2026-11-01T00:00:00Z",
                }
                for i in range(BATCH_ITEMS)
            ]
        }
    )
    json_type = {"Content-Type": "application/json"}
    auth = {"Authorization": f"Bearer {token}"}
    read = f"{base}/api/v1/content/{content_id}"
    httpx.get(read, timeout=5.0)  # fills the response cache for the anonymous run
    loads = {
        "post": Load(
            POST_RUN, "POST", f"{base}/api/v1/content", {**json_type, **auth}, unique_ids=True
        ),
        "batch": Load(
            f"POST ingest batch ({BATCH_ITEMS} items)",
            "POST",
            f"{base}/api/v1/ingest/{PLATFORM}/items",
            {**json_type, "X-API-Key": api_key},
            batch,
            items=BATCH_ITEMS,
        ),
        "read": Load("GET read model (auth)", "GET", read, auth),
        "hit": Load(CACHE_HIT_RUN, "GET", read, {}),
        # The hottest sync write: every playing device reports every few seconds. It stamps
        # from the user's clock in Redis, then publishes.
        "sync": Load(
            "PUT progress (sync write)",
            "PUT",
            f"{base}/api/v1/users/{BENCH_USER}/progress/{content_id}",
            {**json_type, **auth, "X-Device-ID": "bench-tv"},
            orjson.dumps(PROGRESS),
        ),
    }
    runs: list[Run] = []
    for name in SCENARIOS:
        if name not in only:
            continue
        if name == "fixed":
            runs.append(
                asyncio.run(_fixed_rate(f"{base}/api/v1/content", token, FIXED_RATE, seconds))
            )
        elif name in loads and generator == "wrk":
            load = loads[name]
            script = load.wrk_script()
            args = (workdir, seconds, connections, threads, load.items)
            runs.append(_wrk(load.name, load.url, script, *args))
        elif name in loads:
            runs.append(asyncio.run(_closed_loop(loads[name], seconds, connections)))
    return runs


async def _closed_loop(load: Load, seconds: float, connections: int) -> Run:
    """The built-in load generator (aiohttp), for machines without wrk: slower than wrk, so
    it may be what limits a run; the title says which generator ran."""
    import aiohttp

    latencies: list[float] = []
    failed = 0
    connector = aiohttp.TCPConnector(limit=connections)
    async with aiohttp.ClientSession(
        connector=connector, timeout=aiohttp.ClientTimeout(total=10.0), headers=load.headers
    ) as session:
        stop_at = time.perf_counter() + seconds

        async def client(c: int) -> None:
            nonlocal failed
            i = 0
            while (sent := time.perf_counter()) < stop_at:
                i += 1
                try:
                    async with session.request(
                        load.method, load.url, data=load.body_for(i)
                    ) as response:
                        await response.read()
                        ok = response.status < 300
                except (aiohttp.ClientError, TimeoutError):
                    ok = False
                if ok:
                    latencies.append(time.perf_counter() - sent)
                else:
                    failed += 1

        started = time.perf_counter()
        with console.status(f"{load.name}: {connections} connections for {seconds:g} s..."):
            await asyncio.gather(*(client(c) for c in range(connections)))
        elapsed = time.perf_counter() - started
    if not latencies:
        raise BenchError(f"no request of {load.name} succeeded")
    latencies.sort()
    return Run(
        load.name,
        len(latencies) / elapsed,
        latencies[len(latencies) // 2] * 1000,
        latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000,
        failed,
        len(latencies) + failed,
        load.items,
    )


def results_table(runs: list[Run], title: str) -> Table:
    targets = {
        POST_RUN: f">= {TARGET_POST_RPS:,.0f} req/s",
        CACHE_HIT_RUN: f">= {TARGET_CACHE_HIT_RPS:,.0f} req/s",
    }
    table = Table(
        "run", "requests/s", "items/s", "p50 ms", "p99 ms", "failed", "target", title=title
    )
    for run in runs:
        target = targets.get(run.name, "")
        if "fixed" in run.name:
            target = f"p99 < {TARGET_FIXED_P99_MS:g} ms"
        table.add_row(
            run.name,
            f"{run.requests_per_s:,.0f}",
            f"{run.requests_per_s * run.items_per_request:,.0f}",
            f"{run.p50_ms:.2f}",
            f"{run.p99_ms:.2f}",
            str(run.failed),
            target,
        )
    by_name = {run.name: run for run in runs}
    post, raw = by_name.get(POST_RUN), by_name.get(RAW_RUN)
    if post is not None and raw is not None and raw.requests_per_s:
        ratio = post.requests_per_s / raw.requests_per_s
        table.add_row(
            f"ratio {POST_RUN} / {RAW_RUN}", f"{ratio:.2f}", "", "", "", "", f">= {TARGET_RATIO:g}"
        )
    return table
