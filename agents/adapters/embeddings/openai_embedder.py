"""OpenAI embeddings (text-embedding-3-small by default), shortened to our one dimension."""

from __future__ import annotations

import numpy as np
from openai import AsyncOpenAI

from agents.adapters.embeddings.base import normalize_rows
from core.config import Settings, secret_value
from core.resilience import breakers

# The API takes at most 2048 inputs per request and ~300k tokens in all; the character
# budget keeps a batch of long descriptions under the token cap (~4 characters a token).
MAX_INPUTS_PER_REQUEST = 2048
MAX_CHARS_PER_REQUEST = 600_000

# Models that accept `dimensions` (Matryoshka-trained, so a shortened vector is still a
# good embedding) and their full size; other models only give their native size.
SHORTENABLE = {"text-embedding-3-small": 1536, "text-embedding-3-large": 3072}
FIXED = {"text-embedding-ada-002": 1536}


class EmbeddingDimensionError(RuntimeError):
    """The service returned vectors of another size than the configured dimension."""


def batches(texts: list[str], max_inputs: int, max_chars: int) -> list[list[int]]:
    """Indexes of `texts` split into request-sized groups, in order."""
    groups: list[list[int]] = []
    current: list[int] = []
    chars = 0
    for index, text in enumerate(texts):
        if current and (len(current) >= max_inputs or chars + len(text) > max_chars):
            groups.append(current)
            current, chars = [], 0
        current.append(index)
        chars += len(text)
    if current:
        groups.append(current)
    return groups


class OpenAIEmbedder:
    def __init__(
        self,
        settings: Settings,
        client: AsyncOpenAI | None = None,
        max_inputs_per_request: int = MAX_INPUTS_PER_REQUEST,
    ) -> None:
        self.model = settings.openai.embedding_model
        self.dimension = settings.embedding.dimension
        self._max_inputs = min(max_inputs_per_request, MAX_INPUTS_PER_REQUEST)
        self._client = client or AsyncOpenAI(
            api_key=secret_value(settings.openai.api_key),
            base_url=settings.openai.base_url,
            timeout=settings.openai.timeout_s,
        )

    async def embed(self, texts: list[str]) -> np.ndarray:
        result = np.zeros((len(texts), self.dimension), dtype=np.float32)
        # The API refuses empty strings; an empty text has no meaning to embed, so its
        # row stays zero (a zero vector matches nothing under cosine).
        wanted = [i for i, text in enumerate(texts) if text.strip()]
        sent = [texts[i] for i in wanted]
        for group in batches(sent, self._max_inputs, MAX_CHARS_PER_REQUEST):
            vectors = await self._request([sent[i] for i in group])
            result[[wanted[i] for i in group]] = vectors
        return result

    async def _request(self, inputs: list[str]) -> np.ndarray:
        extra = {} if self.model in FIXED else {"dimensions": self.dimension}
        # Shared with every process: when OpenAI keeps failing, all of them back off at once.
        async with breakers.get("openai").guard():
            response = await self._client.embeddings.create(
                model=self.model, input=inputs, encoding_format="float", **extra
            )
        rows = sorted(response.data, key=lambda item: item.index)
        if len(rows) != len(inputs):
            raise RuntimeError(f"{self.model}: asked for {len(inputs)} embeddings, got {len(rows)}")
        matrix = np.asarray([row.embedding for row in rows], dtype=np.float32)
        if matrix.shape[1] != self.dimension:
            raise EmbeddingDimensionError(
                f"{self.model} returned {matrix.shape[1]}-dimension vectors, but "
                f"EMBEDDING_DIMENSION is {self.dimension}"
            )
        return normalize_rows(matrix)

    async def close(self) -> None:
        await self._client.close()
