"""A loopback server speaking OpenAI's HTTP API, for the real `openai` SDK to talk to.

    async with FakeOpenAI() as fake:
        client = AsyncOpenAI(base_url=fake.base_url, api_key="test")
        ...
        fake.requests  # every request seen: path and JSON body

POST /v1/embeddings answers with deterministic unit vectors (a hash of each input seeds
them) of the requested `dimensions` (1536 when not given, or `force_dimension`), as float
lists or base64 like the real service. POST /v1/chat/completions answers with
`chat_content` (a string, or a function of the request body returning one).
`fail_next(status, times)` makes the next requests fail with that HTTP status.
"""

from __future__ import annotations

import base64
import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from aiohttp import web

DEFAULT_DIMENSION = 1536


@dataclass
class SeenRequest:
    path: str
    body: dict[str, Any]
    headers: dict[str, str]


def fake_embedding(text: str, dimension: int) -> np.ndarray:
    """The vector the fake returns for `text`: seeded by its SHA-256, unit length."""
    seed = int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little")
    vector = np.random.default_rng(seed).standard_normal(dimension).astype(np.float32)
    return vector / np.linalg.norm(vector)


class FakeOpenAI:
    def __init__(self) -> None:
        self.requests: list[SeenRequest] = []
        self.chat_content: str | Callable[[dict[str, Any]], str] = "{}"
        self.force_dimension: int | None = None
        self._failures: list[int] = []
        self._runner: web.AppRunner | None = None
        self.port = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def fail_next(self, status: int, times: int = 1) -> None:
        self._failures.extend([status] * times)

    def embedding_requests(self) -> list[dict[str, Any]]:
        return [r.body for r in self.requests if r.path == "/v1/embeddings"]

    async def __aenter__(self) -> FakeOpenAI:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_post("/v1/embeddings", self._embeddings)
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
            self._runner = None

    async def _record(self, request: web.Request) -> tuple[dict[str, Any], web.Response | None]:
        body = await request.json()
        self.requests.append(SeenRequest(request.path, body, dict(request.headers)))
        if self._failures:
            status = self._failures.pop(0)
            error = {"error": {"message": f"fake failure {status}", "type": "server_error"}}
            return body, web.json_response(error, status=status)
        return body, None

    async def _embeddings(self, request: web.Request) -> web.Response:
        body, failure = await self._record(request)
        if failure is not None:
            return failure
        inputs = body["input"]
        texts = [inputs] if isinstance(inputs, str) else list(inputs)
        dimension = self.force_dimension or body.get("dimensions") or DEFAULT_DIMENSION
        data = []
        for index, text in enumerate(texts):
            vector = fake_embedding(str(text), int(dimension))
            if body.get("encoding_format") == "base64":
                embedding: Any = base64.b64encode(vector.astype("<f4").tobytes()).decode()
            else:
                embedding = vector.tolist()
            data.append({"object": "embedding", "index": index, "embedding": embedding})
        tokens = sum(len(str(t).split()) for t in texts)
        return web.json_response(
            {
                "object": "list",
                "data": data,
                "model": body.get("model"),
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
            }
        )

    async def _chat(self, request: web.Request) -> web.Response:
        body, failure = await self._record(request)
        if failure is not None:
            return failure
        content = self.chat_content(body) if callable(self.chat_content) else self.chat_content
        return web.json_response(
            {
                "id": f"chatcmpl-fake-{len(self.requests)}",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": body.get("model"),
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": content},
                        "finish_reason": "stop",
                    }
                ],
                "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
            }
        )
