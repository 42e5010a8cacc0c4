"""Intents through the real `openai` client against a loopback OpenAI-compatible server: the
LLM's reading is used and cached (no second request), and a failing, slow or unreadable LLM
falls back to the local parser without failing the search."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator

import pytest
from aiohttp import web

from core.config import OpenAISettings
from tests.discovery.conftest import MakeEngine
from tests.fakes.openai_server import FakeOpenAI

# What gpt-4o-mini answers for "something creepy to watch on hbo": a mood, a genre and a
# platform the local parser would not have read from these words ("creepy" is a mood to it).
READING = {
    "mood": ["scared"],
    "themes": [],
    "references": [],
    "filters": {"genres": ["horror"], "platforms": ["hbo"], "year_range": None},
    "fallback_query": "creepy",
    "confidence": 0.9,
}
QUERY = "something creepy to watch on hbo"


class SlowOpenAI(FakeOpenAI):
    """Answers chat completions only after `delay_s`."""

    delay_s = 0.0

    async def _chat(self, request: web.Request) -> web.Response:
        await asyncio.sleep(self.delay_s)
        return await super()._chat(request)


@pytest.fixture
async def llm() -> AsyncIterator[SlowOpenAI]:
    async with SlowOpenAI() as fake:
        fake.chat_content = json.dumps(READING)
        yield fake


def settings_for(fake: FakeOpenAI) -> OpenAISettings:
    return OpenAISettings(api_key="test-key", base_url=fake.base_url, chat_model="gpt-4o-mini")


def chats(fake: FakeOpenAI) -> int:
    return sum(r.path == "/v1/chat/completions" for r in fake.requests)


async def test_the_llm_reading_is_used_and_cached(make_engine: MakeEngine, llm: SlowOpenAI) -> None:
    engine = make_engine(openai=settings_for(llm))
    found = await engine.search(QUERY)
    [request] = llm.requests
    assert request.body["model"] == "gpt-4o-mini"
    assert request.body["response_format"] == {"type": "json_object"}
    assert request.body["temperature"] == 0.3
    assert json.loads(request.body["messages"][1]["content"]) == QUERY
    intent = found.query_parsed
    assert intent.source == "llm" and intent.confidence == 0.9
    assert intent.filters.platforms == ["hbo_max"] and intent.filters.genres == ["horror"]
    # The reading is applied: only horror on HBO Max.
    assert [r.title for r in found.results] == ["The Shining"]

    # Another page of the same query, and another worker sharing the cache: no second request.
    await engine.search(QUERY, page=2)
    other_worker = make_engine(openai=settings_for(llm), prefix=engine.prefix)
    again = await other_worker.search(QUERY, page_size=5)
    assert chats(llm) == 1
    assert again.query_parsed == intent


async def test_a_failing_llm_falls_back_to_the_rules(
    make_engine: MakeEngine, llm: SlowOpenAI
) -> None:
    engine = make_engine(openai=settings_for(llm))
    llm.fail_next(500)
    found = await engine.search("scary movies from the 80s")
    assert chats(llm) == 1
    assert found.query_parsed.source == "rules"
    assert found.query_parsed.filters.year_range == (1980, 1989)
    assert found.results and all(1980 <= (r.release_year or 0) <= 1989 for r in found.results)
    # The fallback reading is not cached: the next asker gets the LLM again, which is back.
    back = await engine.search("scary movies from the 80s", page=2)
    assert chats(llm) == 2
    assert back.query_parsed.source == "llm"


async def test_a_slow_llm_falls_back_within_its_timeout(
    make_engine: MakeEngine, llm: SlowOpenAI
) -> None:
    engine = make_engine(openai=settings_for(llm), llm_timeout_s=0.3)
    llm.delay_s = 3.0
    started = time.monotonic()
    found = await engine.search("funny animated movies")
    assert time.monotonic() - started < 2.0
    assert found.query_parsed.source == "rules"
    assert found.query_parsed.filters.genres == ["animation"]
    assert found.results
    llm.delay_s = 0.0
    assert (await engine.search("funny animated movies", page=2)).query_parsed.source == "llm"


async def test_an_unreadable_reply_falls_back(make_engine: MakeEngine, llm: SlowOpenAI) -> None:
    engine = make_engine(openai=settings_for(llm))
    llm.chat_content = "Sure! Here are some movies you might like."
    found = await engine.search("horror")
    assert chats(llm) == 1
    assert found.query_parsed.source == "rules"
    assert found.query_parsed.filters.genres == ["horror"]


async def test_without_a_key_the_rules_read_and_no_request_is_made(
    make_engine: MakeEngine, llm: SlowOpenAI
) -> None:
    engine = make_engine(openai=OpenAISettings(api_key=None, base_url=llm.base_url))
    found = await engine.search(QUERY)
    assert llm.requests == []
    assert found.query_parsed.source == "rules"
    # The local parser reads the same query: creepy is a mood, hbo a platform.
    assert found.query_parsed.mood == ["scared"]
    assert found.query_parsed.filters.platforms == ["hbo_max"]
    disabled = make_engine(openai=settings_for(llm), llm_intents=False)
    await disabled.search(QUERY)
    assert llm.requests == []
