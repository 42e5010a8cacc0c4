"""An ambiguous publish is safe: a broker that stops answering gives 503 `outcome_unknown`
(a retry with the same Idempotency-Key carries the same event id), a broker known down is
refused at once by the producer's breaker, and a gateway shutting down accepts no writes."""

from __future__ import annotations

import asyncio
import os
import signal
import time
import uuid
from typing import Any

from core.config import Settings
from core.embedded import ServiceProcess
from tests.auth.helpers import bearer, running_gateway, user_token
from tests.helpers import read_topic


def content(title: str) -> dict[str, Any]:
    return {
        "canonical_id": str(uuid.uuid4()),
        "content_type": "movie",
        "title": title,
        "genres": ["drama"],
        "updated_at": "2026-11-01T00:00:00Z",
    }


async def test_a_paused_broker_gives_outcome_unknown_and_a_retry_keeps_the_event_id(
    own_broker: tuple[ServiceProcess, Settings],
) -> None:
    broker, settings = own_broker
    assert broker.process is not None
    headers = {**bearer(user_token(settings, scopes=["content:write"])), "Idempotency-Key": "k-1"}
    body = content("Paused")
    async with running_gateway(settings) as (_, http):
        warm = await http.post(
            "/api/v1/content", json=content("Warm"), headers={**headers, "Idempotency-Key": "k-0"}
        )
        assert warm.status_code == 202, warm.text
        os.kill(broker.process.pid, signal.SIGSTOP)
        try:
            lost = await http.post("/api/v1/content", json=body, headers=headers)
        finally:
            os.kill(broker.process.pid, signal.SIGCONT)
        assert lost.status_code == 503, lost.text
        assert lost.json()["error"] == "outcome_unknown"
        assert "'k-1'" in lost.json()["detail"] and "applied once" in lost.json()["detail"]
        assert int(lost.headers["Retry-After"]) >= 1
        await asyncio.sleep(1.5)  # the paused request may still be written after SIGCONT
        retry = await http.post("/api/v1/content", json=body, headers=headers)
        assert retry.status_code == 202, retry.text
        other = await http.post(
            "/api/v1/content", json=body, headers={**headers, "Idempotency-Key": "k-2"}
        )
        assert other.json()["event_id"] != retry.json()["event_id"]
    topic = f"{settings.kafka.topic_prefix}.content.submitted"
    records = await read_topic(settings.kafka.bootstrap, topic, settle_s=0.5)
    paused = [r for r in records if b'"Paused"' in r.value]
    # The paused attempt may have been written after SIGCONT (even twice: the producer retries
    # a request that timed out), and then the retry: every copy is one event for consumers.
    assert {dict(r.headers)["event_id"].decode() for r in paused} == {
        retry.json()["event_id"],
        other.json()["event_id"],
    }
    assert (
        sum(dict(r.headers)["event_id"].decode() == other.json()["event_id"] for r in paused) == 1
    )


async def test_a_broker_known_down_is_refused_at_once(
    own_broker: tuple[ServiceProcess, Settings],
) -> None:
    broker, settings = own_broker
    assert broker.process is not None
    headers = bearer(user_token(settings, scopes=["content:write"]))
    async with running_gateway(settings) as (_, http):
        assert (await http.post("/api/v1/content", json=content("Up"), headers=headers)).is_success
        os.kill(broker.process.pid, signal.SIGSTOP)
        # The default breaker of docs/RULES.md opens after 10 failures; they fail together in ~1 s.
        failed = await asyncio.gather(
            *(
                http.post("/api/v1/content", json=content(f"D{n}"), headers=headers)
                for n in range(10)
            )
        )
        assert {r.status_code for r in failed} == {503}
        started = time.perf_counter()
        refused = await http.post("/api/v1/content", json=content("Fast"), headers=headers)
        assert time.perf_counter() - started < 0.5
        assert refused.status_code == 503
        assert refused.json()["error"] == "dependency_unavailable"
        assert "kafka_producer" in refused.json()["detail"]


async def test_after_a_stop_signal_writes_are_refused(settings: Settings) -> None:
    headers = bearer(user_token(settings, scopes=["content:write"]))
    heard: list[int] = []
    # Stands in for uvicorn's handler, which the gateway's wraps.
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: heard.append(signum))
    try:
        async with running_gateway(settings) as (_, http):
            before = await http.post("/api/v1/content", json=content("Before"), headers=headers)
            assert before.status_code == 202
            signal.raise_signal(signal.SIGTERM)
            after = await http.post("/api/v1/content", json=content("After"), headers=headers)
        assert heard == [signal.SIGTERM]
        assert after.status_code == 503 and after.json()["error"] == "broker_unavailable"
        assert "shutting down" in after.json()["detail"]
        assert signal.getsignal(signal.SIGTERM) is not previous  # ours again after the app
    finally:
        signal.signal(signal.SIGTERM, previous)
