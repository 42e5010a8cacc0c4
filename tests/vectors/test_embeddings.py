"""Embeddings: the offline model on real text, and the OpenAI embedder through the real SDK
against a loopback server."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from agents.adapters.embeddings.base import Embedder, content_text, normalize_rows
from agents.adapters.embeddings.factory import create_embedder
from agents.adapters.embeddings.local import LocalEmbedder
from agents.adapters.embeddings.openai_embedder import (
    MAX_INPUTS_PER_REQUEST,
    EmbeddingDimensionError,
    OpenAIEmbedder,
    batches,
)
from core.config import (
    ConfigError,
    EmbeddingSettings,
    OpenAISettings,
    QdrantSettings,
    Settings,
    load_settings,
)
from schemas.content import CanonicalContent, ContentType
from tests.fakes.openai_server import FakeOpenAI, fake_embedding

SPACE_OPERA = "a space opera about rebels fighting an empire"
PARAPHRASE = "science fiction war among the stars"
UNRELATED = "a cooking show about french pastry"


def make_settings(tmp_path: Path, **sections: object) -> Settings:
    """Settings from defaults only (no .env), with the given sections replaced."""
    base = load_settings(env_file=tmp_path / "absent.env")
    defaults = {
        "embedding": EmbeddingSettings(dimension=384, provider="local"),
        "qdrant": QdrantSettings(url=None, path=tmp_path / "qdrant"),
    }
    return base.model_copy(update={**defaults, **sections})


def cos(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b)))


@pytest.fixture(scope="module")
async def local() -> AsyncIterator[LocalEmbedder]:
    embedder = LocalEmbedder()
    yield embedder
    await embedder.close()


@pytest.fixture
async def fake_openai() -> AsyncIterator[FakeOpenAI]:
    async with FakeOpenAI() as fake:
        yield fake


def openai_settings(
    tmp_path: Path, fake: FakeOpenAI, model: str = "text-embedding-3-small"
) -> Settings:
    return make_settings(
        tmp_path,
        embedding=EmbeddingSettings(dimension=384, provider="openai"),
        openai=OpenAISettings(api_key="test-key", base_url=fake.base_url, embedding_model=model),
    )


# --- the local model ---------------------------------------------------------------


async def test_local_model_matches_sentence_transformers(local: LocalEmbedder) -> None:
    """The numpy forward pass reproduces sentence-transformers' vector (computed once with
    sentence-transformers 6.2 + torch 2.13 on the same weights) to 1e-4."""
    [vector] = await local.embed([SPACE_OPERA])
    np.testing.assert_allclose(vector, np.asarray(REFERENCE_SPACE_OPERA), atol=1e-4)


async def test_local_model_orders_meaning(local: LocalEmbedder) -> None:
    query, paraphrase, unrelated = await local.embed([SPACE_OPERA, PARAPHRASE, UNRELATED])
    assert cos(query, paraphrase) > cos(query, unrelated) + 0.1
    # sentence-transformers gives 0.4322 and 0.2101 for these pairs.
    assert cos(query, paraphrase) == pytest.approx(0.4322, abs=1e-3)
    assert cos(query, unrelated) == pytest.approx(0.2101, abs=1e-3)


async def test_local_vectors_shape_dtype_and_norm(local: LocalEmbedder) -> None:
    assert isinstance(local, Embedder)
    assert local.dimension == 384
    vectors = await local.embed(
        ["The Matrix", "", "  spaces   everywhere  ", "Amélie ünïcödé 日本"]
    )
    assert vectors.shape == (4, 384)
    assert vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


async def test_local_batch_equals_one_at_a_time(local: LocalEmbedder) -> None:
    # Different lengths, so the batch is padded and sorted: results must not depend on it.
    texts = [f"{SPACE_OPERA} " * (i % 5 + 1) + str(i) for i in range(70)] + [UNRELATED]
    batch = await local.embed(texts)
    single = np.stack([(await local.embed([text]))[0] for text in texts])
    np.testing.assert_allclose(batch, single, atol=1e-5)


async def test_local_empty_input(local: LocalEmbedder) -> None:
    empty = await local.embed([])
    assert empty.shape == (0, 384)
    assert empty.dtype == np.float32


async def test_local_truncates_at_256_word_pieces(local: LocalEmbedder) -> None:
    long_text = " ".join(f"word{i} about space" for i in range(300))
    base, extended, short = await local.embed(
        [long_text, long_text + " and a cooking show about pastry", "word1 about space"]
    )
    np.testing.assert_allclose(base, extended, atol=1e-6)  # the tail past 256 is cut
    assert cos(base, short) < 0.99


async def test_local_inference_leaves_the_event_loop_free(local: LocalEmbedder) -> None:
    await local.embed(["warm up"])
    ticks = 0
    done = asyncio.Event()

    async def ticker() -> None:
        nonlocal ticks
        while not done.is_set():
            ticks += 1
            await asyncio.sleep(0.001)

    task = asyncio.create_task(ticker())
    texts = [f"{SPACE_OPERA} number {i}" for i in range(64)]
    await local.embed(texts)
    done.set()
    await task
    # A blocked loop would let the ticker run at most once before the embed returned.
    assert ticks > 3


def test_model_is_loaded_once_per_process() -> None:
    from agents.adapters.embeddings.local import load_model

    assert load_model() is load_model()


# --- content text ------------------------------------------------------------------


def test_content_text_puts_identity_first() -> None:
    content = CanonicalContent(
        canonical_id=uuid.uuid4(),
        content_type=ContentType.episode,
        title="  The   Matrix ",
        original_title="Matrix",
        alternate_titles=["The Matrix", "Матрица"],
        release_year=1999,
        genres=["science_fiction", "action"],
        keywords=["hacker", "simulated_reality"],
        description="A hacker learns\nthe truth.",
        updated_at=datetime(2025, 1, 1, tzinfo=UTC),
    )
    assert content_text(content) == (
        "The Matrix / Matrix / Матрица. An episode from 1999. "
        "Genres: science fiction, action. Keywords: hacker, simulated reality. "
        "A hacker learns the truth."
    )
    bare = content.model_copy(
        update={
            "original_title": None,
            "alternate_titles": [],
            "release_year": None,
            "keywords": [],
            "description": None,
            "content_type": ContentType.movie,
        }
    )
    assert content_text(bare) == "The Matrix. A movie. Genres: science fiction, action."


def test_normalize_rows_keeps_zero_rows() -> None:
    rows = normalize_rows(np.array([[3.0, 4.0], [0.0, 0.0]]))
    np.testing.assert_allclose(rows, [[0.6, 0.8], [0.0, 0.0]])
    assert rows.dtype == np.float32


# --- factory -----------------------------------------------------------------------


async def test_factory_defaults_to_the_local_model(tmp_path: Path) -> None:
    embedder = create_embedder(make_settings(tmp_path))
    try:
        assert isinstance(embedder, LocalEmbedder)
    finally:
        await embedder.close()


def test_factory_refuses_a_dimension_the_local_model_cannot_give(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, embedding=EmbeddingSettings(dimension=512, provider="local"))
    with pytest.raises(ConfigError, match=r"EMBEDDING_DIMENSION.*384"):
        create_embedder(settings)


def test_factory_openai_checks(tmp_path: Path) -> None:
    no_key = make_settings(
        tmp_path,
        embedding=EmbeddingSettings(dimension=384, provider="openai"),
        openai=OpenAISettings(api_key=None),
    )
    with pytest.raises(ConfigError, match="OPENAI_API_KEY"):
        create_embedder(no_key)
    too_big = make_settings(
        tmp_path,
        embedding=EmbeddingSettings(dimension=2048, provider="openai"),
        openai=OpenAISettings(api_key="k"),
    )
    with pytest.raises(ConfigError, match="at most 1536"):
        create_embedder(too_big)
    fixed = make_settings(
        tmp_path,
        embedding=EmbeddingSettings(dimension=384, provider="openai"),
        openai=OpenAISettings(api_key="k", embedding_model="text-embedding-ada-002"),
    )
    with pytest.raises(ConfigError, match="exactly 1536"):
        create_embedder(fixed)


# --- OpenAI through the real SDK -----------------------------------------------------


async def test_openai_request_and_vectors(tmp_path: Path, fake_openai: FakeOpenAI) -> None:
    embedder = create_embedder(openai_settings(tmp_path, fake_openai))
    assert isinstance(embedder, OpenAIEmbedder)
    try:
        vectors = await embedder.embed([SPACE_OPERA, UNRELATED])
    finally:
        await embedder.close()
    [request] = fake_openai.requests
    assert request.path == "/v1/embeddings"
    assert request.headers["Authorization"] == "Bearer test-key"
    assert request.body["model"] == "text-embedding-3-small"
    assert request.body["dimensions"] == 384
    assert request.body["encoding_format"] == "float"
    assert request.body["input"] == [SPACE_OPERA, UNRELATED]
    assert vectors.shape == (2, 384) and vectors.dtype == np.float32
    np.testing.assert_allclose(vectors[0], fake_embedding(SPACE_OPERA, 384), atol=1e-6)
    np.testing.assert_allclose(vectors[1], fake_embedding(UNRELATED, 384), atol=1e-6)


async def test_openai_splits_large_inputs(tmp_path: Path, fake_openai: FakeOpenAI) -> None:
    settings = openai_settings(tmp_path, fake_openai)
    texts = [f"title {i}" for i in range(MAX_INPUTS_PER_REQUEST + 5)]
    embedder = OpenAIEmbedder(settings)
    try:
        vectors = await embedder.embed(texts)
    finally:
        await embedder.close()
    sizes = [len(body["input"]) for body in fake_openai.embedding_requests()]
    assert sizes == [MAX_INPUTS_PER_REQUEST, 5]
    # Order survives the split.
    np.testing.assert_allclose(vectors[-1], fake_embedding(texts[-1], 384), atol=1e-6)
    np.testing.assert_allclose(vectors[0], fake_embedding(texts[0], 384), atol=1e-6)


async def test_openai_small_batches_and_empty_texts(
    tmp_path: Path, fake_openai: FakeOpenAI
) -> None:
    embedder = OpenAIEmbedder(openai_settings(tmp_path, fake_openai), max_inputs_per_request=3)
    texts = ["a", "", "b", "c", "d", "  ", "e"]
    try:
        vectors = await embedder.embed(texts)
        assert (await embedder.embed([])).shape == (0, 384)
    finally:
        await embedder.close()
    bodies = fake_openai.embedding_requests()
    assert [body["input"] for body in bodies] == [["a", "b", "c"], ["d", "e"]]
    assert not vectors[1].any() and not vectors[5].any()  # empty text: zero row, not sent
    np.testing.assert_allclose(vectors[6], fake_embedding("e", 384), atol=1e-6)


async def test_openai_wrong_dimension_is_an_error(tmp_path: Path, fake_openai: FakeOpenAI) -> None:
    fake_openai.force_dimension = 1536  # a service that ignores `dimensions`
    embedder = OpenAIEmbedder(openai_settings(tmp_path, fake_openai))
    try:
        with pytest.raises(EmbeddingDimensionError, match="1536"):
            await embedder.embed(["x"])
    finally:
        await embedder.close()


async def test_openai_retries_a_server_error(tmp_path: Path, fake_openai: FakeOpenAI) -> None:
    fake_openai.fail_next(500)
    embedder = OpenAIEmbedder(openai_settings(tmp_path, fake_openai))
    try:
        vectors = await embedder.embed(["x"])
    finally:
        await embedder.close()
    assert len(fake_openai.embedding_requests()) == 2  # the SDK retried once
    np.testing.assert_allclose(vectors[0], fake_embedding("x", 384), atol=1e-6)


def test_batches_respects_the_character_budget() -> None:
    assert batches(["aaaa", "bb", "cccc", "d"], max_inputs=10, max_chars=6) == [[0, 1], [2, 3]]
    assert batches([], max_inputs=10, max_chars=6) == []
    assert batches(["x" * 10], max_inputs=10, max_chars=6) == [[0]]  # one long text alone


async def test_fake_chat_completions_with_the_real_sdk(fake_openai: FakeOpenAI) -> None:
    from openai import AsyncOpenAI

    fake_openai.chat_content = lambda body: json.dumps({"echo": body["model"]})
    client = AsyncOpenAI(base_url=fake_openai.base_url, api_key="k")
    try:
        reply = await client.chat.completions.create(
            model="gpt-4o-mini",
            messages=[{"role": "user", "content": "hi"}],
            response_format={"type": "json_object"},
        )
    finally:
        await client.close()
    assert json.loads(reply.choices[0].message.content or "") == {"echo": "gpt-4o-mini"}
    assert fake_openai.requests[0].body["response_format"] == {"type": "json_object"}


# sentence-transformers' vector for SPACE_OPERA (all-MiniLM-L6-v2, normalized), 6 decimals.
# fmt: off
REFERENCE_SPACE_OPERA = [
    -0.031891, 0.032567, -0.001309, -0.038602, -0.148660, 0.033102, 0.054306, -0.040561,
    0.020143, -0.017414, -0.034406, -0.013729, -0.036434, -0.061362, -0.104944, -0.029360,
    0.046900, 0.054348, 0.059901, -0.015394, 0.037906, -0.023216, 0.031919, 0.077671,
    0.008385, 0.057638, 0.023451, 0.049001, -0.006294, -0.034050, 0.046750, -0.004976,
    -0.045468, -0.032460, -0.017728, 0.007397, -0.012989, -0.012396, -0.016323, 0.037549,
    -0.029785, 0.007513, -0.014189, 0.019437, -0.050131, -0.109154, -0.026647, -0.035060,
    0.052990, 0.087896, -0.002193, -0.016232, -0.063224, -0.029944, 0.042460, -0.065193,
    0.067427, -0.005422, 0.086092, -0.022670, -0.052498, 0.015458, 0.025941, 0.081374,
    -0.042494, -0.056233, 0.015004, 0.095652, -0.115665, 0.000684, -0.091931, -0.040825,
    0.026730, -0.034213, -0.025465, -0.018440, 0.051446, -0.056937, 0.027467, -0.026760,
    0.072435, 0.005433, -0.106555, 0.008516, 0.028549, 0.032532, 0.034203, -0.017400,
    0.070374, -0.080029, -0.039655, 0.000351, 0.051671, 0.052416, -0.002948, 0.028087,
    -0.012158, -0.049690, 0.004803, 0.051268, 0.077924, -0.068791, 0.035325, 0.030339,
    -0.039455, 0.004597, 0.045990, 0.041184, -0.040082, -0.052951, -0.049306, -0.023177,
    -0.080776, 0.022672, 0.016046, 0.023708, 0.008843, -0.084794, -0.007491, -0.009260,
    0.012976, -0.096139, -0.047510, -0.046537, 0.017765, -0.035975, -0.003441, -0.000000,
    0.024435, -0.086150, 0.023675, 0.010047, 0.014135, -0.082261, -0.057883, 0.061025,
    -0.091912, 0.081002, -0.058886, -0.043950, -0.053962, 0.001857, 0.098778, 0.026583,
    0.042674, -0.010418, 0.073344, 0.001470, -0.072331, 0.105202, -0.074980, -0.012320,
    0.061694, 0.048107, -0.071878, -0.018111, -0.087969, 0.025302, -0.035438, 0.043584,
    -0.004901, 0.003203, 0.039894, -0.015404, -0.014640, -0.006798, -0.051512, 0.053733,
    -0.074980, 0.041497, -0.013833, -0.027585, 0.046519, 0.003684, 0.023961, -0.085061,
    0.088501, 0.124737, -0.017201, 0.035482, -0.029608, 0.046553, 0.046286, 0.023040,
    -0.031161, 0.066784, 0.028711, -0.002257, -0.034843, -0.006707, 0.032711, -0.006409,
    0.057779, 0.023989, 0.014898, -0.017226, 0.030875, 0.015430, -0.094993, -0.007339,
    0.046374, 0.017511, 0.065670, -0.006800, 0.069779, 0.011742, -0.053715, -0.053425,
    0.027671, -0.081753, 0.034371, 0.075489, 0.027479, 0.018674, 0.000960, -0.048389,
    -0.028129, 0.020623, -0.024535, -0.002276, -0.034670, 0.033389, -0.080756, 0.000000,
    0.102429, -0.017174, 0.021069, -0.005581, 0.025979, 0.057301, -0.039674, 0.107911,
    -0.045647, 0.005350, -0.049896, 0.024049, 0.048370, -0.009094, 0.064044, -0.045152,
    0.115166, -0.030938, 0.016622, 0.027411, 0.011703, 0.045490, 0.017940, -0.093828,
    0.028292, 0.014280, 0.087478, 0.065377, -0.077920, 0.053852, 0.087358, -0.102272,
    -0.047071, -0.003103, 0.001269, -0.000572, 0.060551, -0.017242, -0.031993, -0.012896,
    -0.080851, 0.048853, 0.047498, 0.029290, -0.030896, 0.002601, -0.001203, 0.077878,
    -0.033888, 0.013681, -0.006853, -0.038680, 0.048652, -0.026207, -0.031828, -0.030846,
    0.022390, 0.014744, 0.030697, 0.045566, -0.008819, 0.028864, -0.041625, -0.060957,
    0.012786, -0.018645, 0.011923, 0.037483, 0.027823, 0.102057, 0.020970, -0.026237,
    -0.119939, 0.059961, 0.053080, 0.016393, 0.056686, -0.063000, 0.037392, 0.079332,
    0.045767, -0.002417, -0.001122, 0.031049, 0.007591, 0.154492, -0.049170, 0.016991,
    0.018683, 0.039113, 0.061619, -0.053567, 0.032374, -0.079990, 0.016303, -0.000000,
    -0.017404, 0.002599, -0.049545, -0.044348, -0.081933, -0.022573, -0.035255, -0.116551,
    -0.029357, -0.026342, 0.075463, 0.027267, 0.039958, 0.026179, -0.135104, 0.010756,
    0.039916, -0.080568, -0.016843, -0.051424, 0.000982, -0.032241, 0.045797, -0.102256,
    -0.006401, 0.071588, 0.014070, -0.014808, 0.003561, 0.047253, 0.033390, 0.011361,
    -0.071772, -0.028193, -0.038694, -0.008081, 0.006374, -0.052198, 0.000541, -0.112382,
    0.031715, 0.086945, 0.121103, -0.000861, -0.009729, 0.095754, 0.121915, -0.109862,
    0.024391, -0.121277, 0.066412, -0.028406, -0.065414, 0.024909, -0.049784, -0.013586,
    0.026636, 0.116525, -0.004775, -0.033625, 0.035592, 0.009429, -0.054019, -0.035054,
]
# fmt: on
