"""The global budget of LLM intent calls for anonymous searches: past it (per minute, per day)
the local rules read the query and a metric says so; the count is shared through Redis by
every worker; signed-in searches do not spend it. The gateway says which searches are
anonymous."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from prometheus_client import REGISTRY

from core.config import OpenAISettings, Settings
from schemas.discovery import SearchRequested
from tests.auth.helpers import bearer, running_gateway, user_token
from tests.discovery.conftest import MakeEngine
from tests.fakes.openai_server import FakeOpenAI

READING = {
    "mood": [],
    "themes": [],
    "references": [],
    "filters": {"genres": ["horror"], "platforms": [], "year_range": None},
    "fallback_query": "scary",
    "confidence": 0.9,
}


@pytest.fixture
async def llm() -> AsyncIterator[FakeOpenAI]:
    async with FakeOpenAI() as fake:
        fake.chat_content = json.dumps(READING)
        yield fake


def openai_for(fake: FakeOpenAI) -> OpenAISettings:
    return OpenAISettings(api_key="test-key", base_url=fake.base_url, chat_model="gpt-4o-mini")


def chats(fake: FakeOpenAI) -> int:
    return sum(r.path == "/v1/chat/completions" for r in fake.requests)


def exhausted(window: str) -> float:
    labels = {"window": window}
    return REGISTRY.get_sample_value("mgw_discovery_llm_budget_exhausted_total", labels) or 0.0


async def test_past_the_minute_budget_the_rules_answer_on_every_worker(
    make_engine: MakeEngine, llm: FakeOpenAI
) -> None:
    one = make_engine(openai=openai_for(llm), anonymous_llm_per_minute=2)
    # A second worker (another process in production) sharing the Redis counters.
    two = make_engine(openai=openai_for(llm), anonymous_llm_per_minute=2, prefix=one.prefix)
    before = exhausted("minute")
    first = await one.search("scary films one")
    second = await two.search("scary films two")
    assert chats(llm) == 2
    assert first.query_parsed.source == "llm" and second.query_parsed.source == "llm"
    third = await two.search("scary movies from the 80s")
    assert chats(llm) == 2
    assert third.query_parsed.source == "rules"
    assert third.query_parsed.filters.year_range == (1980, 1989) and third.results
    assert exhausted("minute") == before + 1
    # Signed-in callers are bounded by their tier, not by this budget.
    signed_in = await one.search("scary movies from the 90s", anonymous=False)
    assert signed_in.query_parsed.source == "llm" and chats(llm) == 3
    # The budget's reading was cached neither as the intent nor as the page.
    assert await one.discovery.cache.get_intent("scary movies from the 80s") is None
    again = await one.search("scary movies from the 80s", anonymous=False)
    assert again.query_parsed.source == "llm"


async def test_past_the_day_budget_the_rules_answer(
    make_engine: MakeEngine, llm: FakeOpenAI
) -> None:
    engine = make_engine(
        openai=openai_for(llm), anonymous_llm_per_minute=100, anonymous_llm_per_day=1
    )
    before = exhausted("day")
    assert (await engine.search("horror one")).query_parsed.source == "llm"
    assert (await engine.search("horror two")).query_parsed.source == "rules"
    assert chats(llm) == 1 and exhausted("day") == before + 1


async def test_a_zero_budget_sends_no_anonymous_query(
    make_engine: MakeEngine, llm: FakeOpenAI
) -> None:
    engine = make_engine(openai=openai_for(llm), anonymous_llm_per_minute=0)
    assert (await engine.search("horror")).query_parsed.source == "rules"
    assert chats(llm) == 0


async def test_the_gateway_marks_searches_without_a_credential_anonymous(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    asked: list[SearchRequested] = []

    async def answer(request: Any, wanted: SearchRequested, key: str, timeout_s: float) -> bytes:
        asked.append(wanted)
        return b"{}"

    monkeypatch.setattr("gateway.routes.discovery.ask_discovery", answer)
    token = bearer(user_token(settings, scopes=[]))
    async with running_gateway(settings) as (_, http):
        assert (await http.get("/api/v1/search", params={"q": "budget a"})).status_code == 200
        found = await http.get("/api/v1/search", params={"q": "budget b"}, headers=token)
        assert found.status_code == 200
    assert [w.anonymous for w in asked] == [True, False]
