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

`--auth jwks` has the gateway verify its tokens through an external provider's JWKS (a loopback
OpenID Connect provider, devtools/oidc_provider.py, ES256), `--auth both` runs every
authenticated run twice back to back, HS256 dev token then JWKS token, on the same gateway, and
prints them side by side with the verified-token cache's misses.
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
from contextlib import ExitStack
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import orjson
from rich.console import Console
from rich.table import Table

from core.embedded import ServiceProcess, free_port, start_redis
from devtools.bench.services import start_bench_broker
from devtools.oidc_provider import LoopbackOidcProvider, serving_in_thread

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
# How the gateway verifies the bearer tokens of the authenticated runs (--auth).
AUTH_CHOICES = {"hs256": ("hs256",), "jwks": ("jwks",), "both": ("hs256", "jwks")}
# Appended to a run's name: the HS256 run keeps today's name (its target, the ratio row).
AUTH_SUFFIX = {"hs256": "", "jwks": ", JWKS ES256"}
TOKEN_SCENARIOS = frozenset({"post", "read", "sync", "fixed"})
TOKEN_SCOPES = ["content:write", "content:read", "progress:write"]
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
    authenticated: bool = False  # sent a bearer token (the verified-token cache's figures)


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
    from agents.sync.store import mark_devices
    from schemas.sync import HLC

    registered = (HLC(physical_us=1, logical=0), True)
    await mark_devices(redis, prefix, [BENCH_USER], {BENCH_USER: {"bench-tv": registered}})


async def _fixed_rate(url: str, token: str, rate: float, seconds: float, suffix: str = "") -> Run:
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
        f"POST content, fixed {rate:g}/s{suffix}",
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
    token = issue_token(settings.auth, subject=BENCH_USER, scopes=TOKEN_SCOPES, ttl_s=3600)
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
    # Always named: without it `mgw gateway` runs one process per core, and "1 process" in the
    # title would be two on a two-core machine.
    cmd = [sys.executable, "-m", "cli.main", "gateway", "--workers", str(workers)]
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
    auth: tuple[str, ...] = AUTH_CHOICES["hs256"],
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
    verified = VerifiedCache(None, 0, 0)
    with tempfile.TemporaryDirectory(prefix="mgw-bench-gw-") as tmp, ExitStack() as stack:
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
            idp: LoopbackOidcProvider | None = None
            if "jwks" in auth:
                # Up before the gateway, which fetches the JWKS at start; kept up for its
                # refetches. The HS256 secret stays configured, so `both` shares one gateway.
                idp = stack.enter_context(serving_in_thread(LoopbackOidcProvider()))
                env |= {"AUTH_JWKS_URL": idp.jwks_url, "AUTH_TRUSTED_ISSUERS": idp.issuer}
            content_id = uuid.uuid4()
            hs256_token, api_key = asyncio.run(_prepare(env, content_id))
            tokens = {
                kind: hs256_token if idp is None or kind == "hs256" else _provider_token(idp)
                for kind in auth
            }
            base = f"http://127.0.0.1:{port}"
            gateway = _start_gateway(env, workdir, workers, code_dir)
            with console.status("starting the gateway..."):
                _wait_ready(base, gateway, workdir)
            profiler = _start_profiler(gateway.pid, profile) if profile is not None else None
            try:
                runs = _load_runs(
                    base,
                    tokens,
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
            authenticated = sum(r.requests for r in runs if r.authenticated)
            verified = VerifiedCache(
                _signature_checks(base) if workers == 1 else None,
                authenticated,
                idp.jwks_fetches if idp is not None else 0,
            )
            if "raw" in only:
                topic = f"{prefix}.content.submitted"
                runs.append(asyncio.run(_raw_producer(broker.url, topic, connections, seconds)))
        finally:
            if gateway is not None:
                _stop(gateway)
            for service in reversed(services):
                service.stop()
    auth_label = " + ".join("HS256" if kind == "hs256" else "JWKS ES256" for kind in auth)
    title = (
        f"mgw bench gateway ({workers} process{'es' if workers > 1 else ''}, "
        f"{'wrk ' + str(threads) + ' threads' if generator == 'wrk' else 'built-in client'} x "
        f"{connections} connections, {seconds:g} s per run, "
        f"near cache {f'{near_ttl_s:g} s' if near_ttl_s else 'off'}, "
        f"broker {'durable' if durable else 'in memory'}, tokens {auth_label})"
    )
    # Wide enough for the table when piped, so no figure is cut.
    out = Console(width=max(120, shutil.get_terminal_size().columns))
    out.print(results_table(runs, title))
    if len(auth) > 1:
        out.print(auth_table(runs))
    if auth != AUTH_CHOICES["hs256"]:
        out.print(verified.describe(workers))
    return 1 if any(r.failed for r in runs) else 0


def _provider_token(idp: LoopbackOidcProvider) -> str:
    """The bench user's token from the loopback provider: same subject and scopes as the
    HS256 one, so only the key that verifies it differs."""
    return idp.token(BENCH_USER, ttl_s=3600, scope=" ".join(TOKEN_SCOPES))


@dataclass(frozen=True)
class VerifiedCache:
    """What the gateway's verified-token cache did over the runs."""

    signature_checks: int | None  # its misses, from /metrics (None: not read)
    authenticated_requests: int
    jwks_fetches: int

    def describe(self, workers: int) -> str:
        fetches = f"the provider's JWKS was fetched {self.jwks_fetches} time(s)"
        if self.signature_checks is None:
            why = "read from one process only" if workers > 1 else "not readable"
            return f"verified-token cache: misses {why}; {fetches}"
        hits = max(0, self.authenticated_requests - self.signature_checks)
        share = hits / self.authenticated_requests if self.authenticated_requests else 0.0
        return (
            f"verified-token cache: {self.signature_checks} signature checks (misses) over "
            f"{self.authenticated_requests:,} authenticated requests: {hits:,} hits "
            f"({share:.4%}); {fetches}"
        )


def _signature_checks(base: str) -> int | None:
    """The gateway's `cache_misses_total{cache="verified_token"}`: signature checks made."""
    try:
        text = httpx.get(f"{base}/metrics", timeout=5.0).text
    except httpx.HTTPError:
        return None
    found = re.search(r'^cache_misses_total\{cache="verified_token"\} ([\d.e+]+)$', text, re.M)
    return int(float(found.group(1))) if found else None


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


def _loads(
    base: str, token: str, api_key: str, content_id: uuid.UUID, suffix: str
) -> dict[str, Load]:
    """The closed-loop runs, those with a bearer token presenting `token`."""
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
    return {
        "post": Load(
            POST_RUN + suffix,
            "POST",
            f"{base}/api/v1/content",
            {**json_type, **auth},
            unique_ids=True,
        ),
        "batch": Load(
            f"POST ingest batch ({BATCH_ITEMS} items)",
            "POST",
            f"{base}/api/v1/ingest/{PLATFORM}/items",
            {**json_type, "X-API-Key": api_key},
            batch,
            items=BATCH_ITEMS,
        ),
        "read": Load("GET read model (auth)" + suffix, "GET", read, auth),
        "hit": Load(CACHE_HIT_RUN, "GET", read, {}),
        # The hottest sync write: every playing device reports every few seconds. It stamps
        # from the user's clock in Redis, then publishes.
        "sync": Load(
            "PUT progress (sync write)" + suffix,
            "PUT",
            f"{base}/api/v1/users/{BENCH_USER}/progress/{content_id}",
            {**json_type, **auth, "X-Device-ID": "bench-tv"},
            orjson.dumps(PROGRESS),
        ),
    }


def _load_runs(
    base: str,
    tokens: dict[str, str],
    api_key: str,
    content_id: uuid.UUID,
    workdir: Path,
    seconds: float,
    connections: int,
    threads: int,
    only: frozenset[str],
    generator: str,
) -> list[Run]:
    """Each chosen run in SCENARIOS' order; a run with a bearer token once per token kind,
    back to back, so the kinds meet the same moment of a noisy machine, and in turns (HS256
    first, then JWKS first for the next run...) so neither kind always runs second."""
    httpx.get(f"{base}/api/v1/content/{content_id}", timeout=5.0)  # fills the response cache
    runs: list[Run] = []
    turns = 0
    for name in SCENARIOS:
        if name not in only:
            continue
        kinds = list(tokens)[:1]
        if name in TOKEN_SCENARIOS:
            kinds = list(tokens) if turns % 2 == 0 else list(reversed(tokens))
            turns += 1
        for kind in kinds:
            suffix = AUTH_SUFFIX[kind] if name in TOKEN_SCENARIOS else ""
            token = tokens[kind]
            run: Run | None = None
            if name == "fixed":
                url = f"{base}/api/v1/content"
                run = asyncio.run(_fixed_rate(url, token, FIXED_RATE, seconds, suffix))
            elif name != "raw":
                load = _loads(base, token, api_key, content_id, suffix)[name]
                if generator == "wrk":
                    args = (workdir, seconds, connections, threads, load.items)
                    run = _wrk(load.name, load.url, load.wrk_script(), *args)
                else:
                    run = asyncio.run(_closed_loop(load, seconds, connections))
            if run is not None:
                runs.append(replace(run, authenticated=name in TOKEN_SCENARIOS))
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


def auth_table(runs: list[Run]) -> Table:
    """Each authenticated run with the HS256 token beside the same run with the JWKS token."""
    table = Table(
        "run",
        "HS256 req/s",
        "JWKS req/s",
        "JWKS / HS256",
        "p50 ms HS256 / JWKS",
        "p99 ms HS256 / JWKS",
        title="token verification: HS256 secret vs an external provider's JWKS (ES256)",
    )
    by_name = {run.name: run for run in runs}
    suffix = AUTH_SUFFIX["jwks"]
    for jwks in runs:
        hs256 = by_name.get(jwks.name.removesuffix(suffix)) if jwks.name.endswith(suffix) else None
        if hs256 is None:
            continue
        ratio = jwks.requests_per_s / hs256.requests_per_s if hs256.requests_per_s else 0.0
        table.add_row(
            hs256.name,
            f"{hs256.requests_per_s:,.0f}",
            f"{jwks.requests_per_s:,.0f}",
            f"{ratio:.2f}",
            f"{hs256.p50_ms:.2f} / {jwks.p50_ms:.2f}",
            f"{hs256.p99_ms:.2f} / {jwks.p99_ms:.2f}",
        )
    return table
