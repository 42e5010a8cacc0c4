"""A loopback OpenAI-compatible chat server that answers like gpt-4o-mini reading a query, after
a realistic delay, and the time of calls to it through the real `openai` client: what the
intent cache saves each repeated query (`mgw bench search`)."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from aiohttp import web
from openai import AsyncOpenAI

from agents.discovery.intent_llm import chat_request

READING = {
    "mood": ["happy"],
    "themes": [],
    "references": ["Shrek"],
    "filters": {"genres": ["animation"], "platforms": ["netflix"], "year_range": [2000, 2009]},
    "fallback_query": "funny animated",
    "confidence": 0.9,
}


class SlowChatServer:
    def __init__(self, delay_s: float) -> None:
        self.delay_s = delay_s
        self._runner: web.AppRunner | None = None
        self.port = 0

    async def __aenter__(self) -> SlowChatServer:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._chat)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = self._runner.addresses[0][1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _chat(self, request: web.Request) -> web.Response:
        body: dict[str, Any] = await request.json()
        await asyncio.sleep(self.delay_s)
        return web.json_response(
            {
                "id": "chatcmpl-bench",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": body.get("model"),
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": json.dumps(READING)},
                        "finish_reason": "stop",
                    }
                ],
            }
        )


async def time_llm_calls(delay_s: float, calls: int) -> list[float]:
    """Seconds per intent request through the openai client to a server taking delay_s."""
    async with SlowChatServer(delay_s) as server:
        client = AsyncOpenAI(
            base_url=f"http://127.0.0.1:{server.port}/v1", api_key="bench", max_retries=0
        )
        try:
            times = []
            for i in range(calls):
                started = time.perf_counter()
                await client.chat.completions.create(
                    **chat_request(f"something funny and animated like Shrek, take {i}")
                )
                times.append(time.perf_counter() - started)
            return times
        finally:
            await client.close()
