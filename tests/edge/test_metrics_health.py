"""/metrics and /health/ready of the gateway (in process and as a process) and of a worker.

Dependencies are taken away by stopping throw-away instances (Redis for the gateway,
PostgreSQL for a worker), never the session's shared services.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import redis
from aiokafka import AIOKafkaProducer
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample
from starlette.testclient import TestClient

from agents.framework.kafka.ops import partition_lag
from agents.readmodel.store import invalidate_content
from agreements.read_model import document_key, state_key
from core.config import MetricsSettings, RateLimitSettings, Settings
from core.embedded import start_postgres, start_redis
from core.observability.dependencies import (
    DEFAULT_WORKER,
    OPTIONAL,
    PROCESS_DEPENDENCIES,
    REQUIRED,
    Need,
    dependencies_for,
    process_kind,
)
from core.observability.health import ComponentResult, HealthChecker, aggregate
from gateway.app import create_app
from tests.conftest import Proc

CONTENT_ROUTE = "/api/v1/content/{content_id}"
# Declared in every process, whether or not it has samples yet.
EVERY_PROCESS = (
    "http_requests_total",
    "http_request_duration_seconds",
    "http_requests_in_progress",
    "cache_hits_total",
    "cache_misses_total",
    "circuit_breaker_state",
    "circuit_breaker_rejections_total",
    "db_pool_connections",
    "mgw_consumer_lag",
    "mgw_events_consumed_total",
    "mgw_events_produced_total",
    "mgw_events_dead_lettered_total",
    "mgw_agent_batch_duration_seconds",
)


def parse(text: str) -> tuple[set[str], list[Sample]]:
    """Declared metric names (from # TYPE) and every sample; raises if the text is malformed."""
    families = list(text_string_to_metric_families(text))
    declared = {line.split()[2] for line in text.splitlines() if line.startswith("# TYPE ")}
    return declared, [s for f in families for s in f.samples]


def value(samples: list[Sample], name: str, **labels: str) -> float | None:
    for s in samples:
        if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
            return s.value
    return None


def port_of(url: str) -> int:
    port = urlsplit(url).port
    assert port is not None, url
    return port


async def wait_status(url: str, code: int, within_s: float = 30) -> dict[str, Any]:
    """Poll until `url` answers `code`; its JSON body then."""
    deadline = time.monotonic() + within_s
    last: Any = None
    async with httpx.AsyncClient(timeout=5) as client:
        while time.monotonic() < deadline:
            try:
                resp = await client.get(url)
                last = (resp.status_code, resp.text)
                if resp.status_code == code:
                    return resp.json()  # type: ignore[no-any-return]
            except httpx.HTTPError as exc:
                last = exc
            await asyncio.sleep(0.2)
    raise AssertionError(f"{url} did not answer {code} within {within_s}s; last: {last!r}")


# ------------------------------------------------------------------ the rules alone


def result(name: str, ok: bool, required: bool) -> ComponentResult:
    return ComponentResult(name, ok, 1.0, required, None if ok else "down")


def test_aggregate_status_and_http_code() -> None:
    code, body = aggregate([result("kafka", True, True), result("redis", True, False)])
    assert (code, body["status"]) == (200, "healthy")
    code, body = aggregate([result("kafka", True, True), result("redis", False, False)])
    assert (code, body["status"]) == (200, "degraded")
    assert body["components"]["redis"] == {
        "status": "unhealthy",
        "latency_ms": 1.0,
        "error": "down",
        "required": False,
    }
    code, body = aggregate([result("kafka", False, True), result("redis", True, False)])
    assert (code, body["status"]) == (503, "unhealthy")


async def test_each_check_has_its_own_timeout() -> None:
    async def hangs() -> None:
        await asyncio.sleep(30)

    async def fails() -> None:
        raise ConnectionRefusedError("nobody home")

    checker = HealthChecker(
        {"kafka": Need.REQUIRED, "pubnub": Need.OPTIONAL, "redis": Need.OPTIONAL},
        {"kafka": fails, "pubnub": hangs},
        timeout_s=0.2,
    )
    code, body = await checker.ready()
    assert code == 503
    components = body["components"]
    # A short reason, not the exception's text (the body is served on the public port).
    assert components["kafka"]["error"] == "unreachable"
    assert "nobody home" not in str(body)
    assert "kafka: unreachable" in body["failing"]
    assert components["pubnub"]["error"] == "no answer within 0.2 s"
    assert components["redis"]["error"] == "not configured for this process"


def test_dependency_table_merges_groups_strictest_first() -> None:
    assert dependencies_for(process_kind()) == {
        "kafka": REQUIRED,
        "redis": REQUIRED,
        "read_model": OPTIONAL,
    }
    merged = dependencies_for(process_kind(["ingestion", "readmodel"]))
    assert merged["redis"] == REQUIRED and merged["postgres"] == REQUIRED
    assert dependencies_for(["worker:unknown-group"]) == DEFAULT_WORKER
    from agents.groups import groups

    for group in groups():
        assert f"worker:{group}" in PROCESS_DEPENDENCIES, f"declare what worker:{group} needs"


def test_partition_lag() -> None:
    assert partition_lag(None, 5) is None
    assert partition_lag(10, 7) == 3
    assert partition_lag(10, None) == 10
    assert partition_lag(10, 12) == 0


# ------------------------------------------------------------------------ gateway


def test_gateway_metrics_and_readiness_in_process(settings: Settings, redis_url: str) -> None:
    local = settings.model_copy(
        update={
            "metrics": MetricsSettings(host="127.0.0.1", port=0),
            # Anonymous limits are 5/s; this test is about metrics, not quotas.
            "rate_limit": RateLimitSettings(enabled=False),
            # No readmodel worker here to answer misses: an unknown id is a plain 404.
            "gateway": settings.gateway.model_copy(update={"lookup_on_miss": False}),
        }
    )
    prefix = settings.redis.key_prefix
    cid = uuid.uuid4()
    sync_redis = redis.Redis.from_url(redis_url)
    sync_redis.set(document_key(prefix, cid), b'{"title": "Heat"}')
    app = create_app(local)
    try:
        with TestClient(app) as client:
            first = client.get(f"/api/v1/content/{cid}")
            second = client.get(f"/api/v1/content/{cid}")
            assert first.status_code == second.status_code == 200
            assert (first.headers["x-cache"], second.headers["x-cache"]) == ("MISS", "HIT")
            assert first.headers["etag"] == second.headers["etag"]
            assert client.get(f"/api/v1/content/{uuid.uuid4()}").status_code == 404
            assert client.get("/no/such/route").status_code == 404

            # No read model built in this Redis yet: serving, but degraded, and it says why.
            missing = client.get("/health/ready")
            assert missing.status_code == 200, missing.text
            assert missing.json()["status"] == "degraded"
            read_model = missing.json()["components"]["read_model"]
            assert read_model["required"] is False
            # The words docs/OPERATIONS.md uses: what the read model is doing, not "unhealthy".
            assert read_model["status"] == "missing"
            assert "mgw readmodel rebuild" in read_model["error"]
            sync_redis.set(state_key(prefix), "rebuilding")
            rebuilding = client.get("/health/ready").json()["components"]["read_model"]
            assert rebuilding["status"] == "being rebuilt"
            assert "being rebuilt" in rebuilding["error"]

            sync_redis.set(state_key(prefix), "ready")
            ready = client.get("/health/ready")
            assert ready.status_code == 200, ready.text
            body = ready.json()
            assert body["status"] == "healthy"
            assert set(body["components"]) == {"kafka", "redis", "read_model"}
            for name, component in body["components"].items():
                assert component["status"] == "healthy" and component["error"] is None
                assert component["latency_ms"] >= 0
                assert component["required"] is (name != "read_model")

            ops_port = app.state.ops_port
            assert ops_port, "the gateway also serves /metrics on METRICS_PORT"
            main_text = client.get("/metrics").text
            ops_text = httpx.get(f"http://127.0.0.1:{ops_port}/metrics").text
            ops_ready = httpx.get(f"http://127.0.0.1:{ops_port}/health/ready")
            assert ops_ready.status_code == 200 and ops_ready.json()["status"] == "healthy"

            # invalidate_content through the gateway's own Redis: the next GET is a miss.
            client.portal.call(invalidate_content, app.state.edge_redis, prefix, str(cid))
            assert client.get(f"/api/v1/content/{cid}").headers["x-cache"] == "MISS"
    finally:
        sync_redis.close()

    for text in (main_text, ops_text):
        declared, samples = parse(text)
        assert set(EVERY_PROCESS) <= declared, set(EVERY_PROCESS) - declared
        ok = value(samples, "http_requests_total", method="GET", route=CONTENT_ROUTE, status="200")
        assert ok is not None and ok >= 2
        assert value(samples, "http_requests_total", route="unmatched", status="404")
        assert value(samples, "http_request_duration_seconds_count", route=CONTENT_ROUTE)
        assert value(samples, "http_requests_in_progress") is not None
        assert (value(samples, "cache_hits_total", cache="response") or 0) >= 1
        assert (value(samples, "cache_misses_total", cache="response") or 0) >= 1
        # Route templates, never raw paths: one series per route.
        assert not [s for s in samples if str(cid) in s.labels.get("route", "")]


async def test_gateway_ready_turns_503_without_redis_and_back(
    spawn: Callable[..., Proc], tmp_path: Path
) -> None:
    server = start_redis(tmp_path / "redis-1")
    port = port_of(server.url)
    try:
        gateway = spawn(
            "gateway",
            extra_env={"REDIS_URL": server.url, "METRICS_PORT": "0", "RATE_LIMIT_ENABLED": "false"},
        )
        url = f"{gateway.url}/health/ready"
        # As a readmodel worker would after building the read model in this Redis.
        prefix = gateway.env["REDIS_KEY_PREFIX"]
        marker = redis.Redis.from_url(server.url)
        marker.set(state_key(prefix), "ready")
        marker.close()
        healthy = await wait_status(url, 200)
        assert healthy["status"] == "healthy"

        server.stop()
        down = await wait_status(url, 503)
        assert down["status"] == "unhealthy"
        assert down["components"]["redis"]["status"] == "unhealthy"
        assert down["components"]["redis"]["required"] is True
        assert down["components"]["redis"]["error"]
        assert down["components"]["kafka"]["status"] == "healthy"
        assert (await asyncio.to_thread(httpx.get, f"{gateway.url}/health/live")).status_code == 200

        server = start_redis(tmp_path / "redis-2", port=port)
        back = await wait_status(url, 200)
        assert back["components"]["redis"]["status"] == "healthy"
        # Redis came back empty: serving again, degraded until the read model is rebuilt.
        assert back["status"] == "degraded"
        assert back["components"]["read_model"]["status"] == "missing"
    finally:
        server.stop()


# ------------------------------------------------------------------------- worker


async def test_worker_metrics_show_events_lag_pool_and_breakers(
    spawn: Callable[..., Proc], settings: Settings
) -> None:
    from agents.groups import groups

    spec = groups()["ingestion"][0]
    topic = spec.topic.full_name(settings.kafka.topic_prefix)
    dlq_name = spec.topic.dead_letter.name  # type: ignore[union-attr]
    worker = spawn("worker", "ingestion")

    ready = await wait_status(f"{worker.url}/health/ready", 200)
    assert ready["components"]["kafka"]["assigned_partitions"] > 0
    assert ready["components"]["postgres"]["status"] == "healthy"
    assert ready["components"]["redis"]["required"] is False

    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka.bootstrap)
    await producer.start()
    try:
        # Garbage is dead-lettered: consumed, produced (to the DLQ) and dead-lettered at once,
        # and it makes the worker open its database pool.
        await producer.send_and_wait(topic, b"\x00not json " + uuid.uuid4().hex.encode())
    finally:
        await producer.stop()

    deadline = time.monotonic() + 30
    while True:
        text = (await asyncio.to_thread(httpx.get, f"{worker.url}/metrics")).text
        declared, samples = parse(text)
        lag = [s for s in samples if s.name == "mgw_consumer_lag"]
        # Every partition's series, not the first: a partition with records waiting (left by
        # an earlier test) is reported before the others.
        lagged = {s.labels["partition"] for s in lag if s.labels["topic"] == spec.topic.name}
        seen = (
            value(samples, "mgw_events_dead_lettered_total", agent=spec.name)
            and value(samples, "db_pool_connections", state="idle") is not None
            and len(lagged) == spec.topic.partitions
        )
        if seen:
            break
        assert time.monotonic() < deadline, f"series missing after 30 s:\n{text}"
        await asyncio.sleep(0.5)

    assert set(EVERY_PROCESS) <= declared, set(EVERY_PROCESS) - declared
    assert value(samples, "mgw_events_consumed_total", agent=spec.name, topic=spec.topic.name)
    assert value(samples, "mgw_events_produced_total", topic=dlq_name)
    assert value(samples, "mgw_agent_batch_duration_seconds_count", agent=spec.name)
    assert value(samples, "db_pool_connections", state="active") is not None
    group = f"{settings.kafka.topic_prefix}-ingestion"
    ours = [s for s in lag if s.labels["topic"] == spec.topic.name]
    assert {s.labels["group"] for s in ours} == {group}
    assert {s.labels["partition"] for s in ours} == {str(p) for p in range(spec.topic.partitions)}
    assert all(s.value >= 0 for s in ours)


async def test_worker_ready_turns_503_without_postgres_and_back(
    spawn: Callable[..., Proc], settings: Settings, tmp_path: Path
) -> None:
    from topics.admin import create_topics

    # Its own topics and consumer group: this worker must not take the session's records.
    topic_prefix = f"t{uuid.uuid4().hex[:8]}"
    await create_topics(settings.kafka.bootstrap, topic_prefix)
    data_dir = tmp_path / "pg"
    pg = await asyncio.to_thread(start_postgres, data_dir)
    port = port_of(pg.url)
    try:
        worker = await asyncio.to_thread(
            spawn,
            "worker",
            "ingestion",
            extra_env={"DATABASE_URL": pg.url, "KAFKA_TOPIC_PREFIX": topic_prefix},
        )
        url = f"{worker.url}/health/ready"
        assert (await wait_status(url, 200))["components"]["postgres"]["status"] == "healthy"

        await asyncio.to_thread(pg.stop)
        down = await wait_status(url, 503)
        assert down["status"] == "unhealthy"
        assert down["components"]["postgres"]["status"] == "unhealthy"
        assert down["components"]["postgres"]["required"] is True
        assert down["components"]["kafka"]["status"] == "healthy"

        pg = await asyncio.to_thread(start_postgres, data_dir, port)
        back = await wait_status(url, 200)
        assert back["status"] in ("healthy", "degraded")
        assert back["components"]["postgres"]["status"] == "healthy"
    finally:
        await asyncio.to_thread(pg.stop)
