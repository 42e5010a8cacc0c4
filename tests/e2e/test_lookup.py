"""Read-model misses: the gateway asks the readmodel agent over Kafka and hears back on Redis."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import httpx
import pytest

from agents.titles.store import Versioned, upsert_contents
from schemas.content import CanonicalContent
from tests.conftest import Isolated
from tests.helpers import read_topic

pytestmark = pytest.mark.slow


async def lookups(isolated: Isolated) -> int:
    topic = f"{isolated.settings.kafka.topic_prefix}.content.lookup"
    return len(await read_topic(isolated.settings.kafka.bootstrap, topic, settle_s=0.5))


async def test_a_title_missing_from_the_read_model_is_fetched_through_the_agent(
    spawn, isolated: Isolated
) -> None:
    # A row in PostgreSQL that no event ever announced: the read model cannot have it.
    content = CanonicalContent(
        canonical_id=uuid.uuid4(),
        content_type="movie",
        title="Stalker",
        genres=["drama"],
        updated_at=datetime(2026, 11, 1, tzinfo=UTC),
    )
    await upsert_contents(isolated.pool, [Versioned(content, uuid.uuid4())])
    spawn("worker", "readmodel", extra_env=isolated.env)
    gateway = spawn("gateway", extra_env={**isolated.env, "RATE_LIMIT_ENABLED": "false"})
    async with httpx.AsyncClient(base_url=gateway.url, timeout=10) as http:
        found = await http.get(f"/api/v1/content/{content.canonical_id}")
        assert found.status_code == 200 and found.json()["title"] == "Stalker"
        # The agent also put it into the read model: the next read needs no agent.
        asked = await lookups(isolated)
        again = await http.get(f"/api/v1/content/{content.canonical_id}")
        assert again.status_code == 200 and await lookups(isolated) == asked

        unknown = uuid.uuid4()
        assert (await http.get(f"/api/v1/content/{unknown}")).status_code == 404
        asked = await lookups(isolated)
        # Answered absent: 404 again without asking for a while.
        assert (await http.get(f"/api/v1/content/{unknown}")).status_code == 404
        assert await lookups(isolated) == asked


async def test_without_an_agent_a_miss_is_503_and_the_breaker_stops_asking(
    spawn, isolated: Isolated
) -> None:
    env = {**isolated.env, "RATE_LIMIT_ENABLED": "false", "GATEWAY_LOOKUP_TIMEOUT_S": "0.05"}
    gateway = spawn("gateway", extra_env=env)
    async with httpx.AsyncClient(base_url=gateway.url, timeout=10) as http:
        first = await http.get(f"/api/v1/content/{uuid.uuid4()}")
        assert first.status_code == 503 and first.json()["error"] == "lookup_timeout"
        assert first.headers["Retry-After"] == "1"
        # core/resilience/breaker.py's agent_reply breaker: 15 failures open it; then calls are
        # refused at once.
        codes = [
            (await http.get(f"/api/v1/content/{uuid.uuid4()}")).json()["error"] for _ in range(20)
        ]
        assert codes[-1] == "dependency_unavailable"
        assert "lookup_timeout" in codes
