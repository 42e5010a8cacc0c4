"""The per-user LoRA adapter: a shared base layer plus a trained user layer, one dimension.

    output(x) = scaling * (B_base A_base x + B_user A_user x),   scaling = alpha / rank = 2.0
    score(x, p) = clip(dot(output(x), p), -1, 1)

The dimension is the embedder's (384 for the local model) and runs unchanged through content
vectors, the preference vector and the weights: any disagreement raises DimensionMismatch
(the original mixed 768 and 512 and silently reshaped).

The base layer is the same for every user and never trained here. It is an orthonormal rank-8
projection drawn from a fixed seed, so for unit vectors it contributes only a few hundredths
to a score: a fresh user is barely reranked, never reranked by noise. It is the slot where a
population-trained layer would go.
"""

from __future__ import annotations

import functools
import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

RANK = 8
ALPHA = 16.0
BASE_SEED = 20_240_501
EPOCHS = 5
# The earlier design said 0.001 (docs/RULES.md), which barely moves the user layer from its
# zero start (the adapter then added nothing measurable); 0.05 is what the validation split
# chose (docs/SONA.md, "Quality").
LEARNING_RATE = 0.05

F32 = npt.NDArray[np.float32]


class DimensionMismatch(ValueError):
    """A vector or weight matrix does not have the adapter's embedding dimension."""

    def __init__(self, what: str, expected: int, got: int) -> None:
        super().__init__(f"{what} has dimension {got}, the adapter's dimension is {expected}")
        self.what = what
        self.expected = expected
        self.got = got


@dataclass(frozen=True, slots=True)
class TrainingExample:
    """One title's content vector and the engagement label it should score towards (0-1)."""

    vector: F32
    label: float


@functools.lru_cache(maxsize=8)
def base_layer(dim: int, rank: int = RANK, seed: int = BASE_SEED) -> tuple[F32, F32]:
    """(A_base: rank x dim, B_base: dim x rank), identical in every process for one seed."""
    if dim < rank:
        raise ValueError(f"dimension {dim} is smaller than the rank {rank}")
    gaussian = np.random.default_rng(seed).standard_normal((dim, rank))
    q, r = np.linalg.qr(gaussian)
    # QR is unique only up to the signs of R's diagonal; fixing them pins one basis everywhere.
    q = q * np.sign(np.diag(r))
    b_base = np.ascontiguousarray(q, dtype=np.float32)
    a_base = np.ascontiguousarray(q.T, dtype=np.float32)
    # Shared by every adapter of this dimension: read-only so no caller can train it by accident.
    a_base.flags.writeable = False
    b_base.flags.writeable = False
    return a_base, b_base


def user_seed(user_id: str) -> int:
    """A stable seed per user, so a user's fresh adapter is the same on every worker."""
    return int.from_bytes(hashlib.blake2b(user_id.encode(), digest_size=8).digest(), "little")


def _vector(value: npt.ArrayLike, dim: int, what: str) -> F32:
    array = np.asarray(value, dtype=np.float32)
    if array.ndim != 1:
        raise ValueError(f"{what} must be a vector, got shape {array.shape}")
    if array.shape[0] != dim:
        raise DimensionMismatch(what, dim, array.shape[0])
    return array


def _matrix(value: npt.ArrayLike, dim: int, what: str) -> F32:
    array = np.asarray(value, dtype=np.float32)
    if array.ndim != 2:
        raise ValueError(f"{what} must be an N x dim matrix, got shape {array.shape}")
    if array.shape[1] != dim:
        raise DimensionMismatch(what, dim, array.shape[1])
    return array


@dataclass(frozen=True, slots=True)
class UserLoRAAdapter:
    """A user's adapter. Immutable: training returns a new one, so a copy cached by a worker
    keeps serving while its successor is trained and stored."""

    dim: int
    a_user: F32
    b_user: F32
    alpha: float = ALPHA
    base_seed: int = BASE_SEED

    def __post_init__(self) -> None:
        a_user = np.array(self.a_user, dtype=np.float32)
        b_user = np.array(self.b_user, dtype=np.float32)
        if a_user.ndim != 2 or b_user.ndim != 2:
            raise ValueError(
                f"A_user and B_user must be matrices, got shapes {a_user.shape} and {b_user.shape}"
            )
        if a_user.shape[1] != self.dim:
            raise DimensionMismatch("A_user (rank x dim)", self.dim, a_user.shape[1])
        if b_user.shape[0] != self.dim:
            raise DimensionMismatch("B_user (dim x rank)", self.dim, b_user.shape[0])
        if b_user.shape[1] != a_user.shape[0]:
            raise ValueError(f"A_user has rank {a_user.shape[0]} but B_user {b_user.shape[1]}")
        if not (np.isfinite(a_user).all() and np.isfinite(b_user).all()):
            raise ValueError("adapter weights must be finite")
        if not (math.isfinite(self.alpha) and self.alpha > 0):
            raise ValueError(f"alpha must be positive and finite, got {self.alpha}")
        if a_user.shape[0] < 1:
            raise ValueError("the rank must be at least 1")
        base_layer(self.dim, a_user.shape[0], self.base_seed)  # rank <= dim, and warms the cache
        # Own read-only copies: a cached adapter cannot be changed under a request scoring with it.
        a_user.flags.writeable = False
        b_user.flags.writeable = False
        object.__setattr__(self, "a_user", a_user)
        object.__setattr__(self, "b_user", b_user)

    @classmethod
    def fresh(
        cls, dim: int, *, seed: int, rank: int = RANK, alpha: float = ALPHA
    ) -> UserLoRAAdapter:
        """LoRA's usual start: A random, B zero, so the user layer adds exactly 0.

        A is drawn N(0, 1/rank), a Johnson-Lindenstrauss projection: |A x| ~ |x| for the unit
        vectors we feed. With the usual N(0, 1/dim) the rank-8 code of a title would be ~7
        times shorter and a small learning rate would move scores by a few 1e-5 per step.
        """
        rng = np.random.default_rng(seed)
        a_user = (rng.standard_normal((rank, dim)) / np.sqrt(rank)).astype(np.float32)
        b_user = np.zeros((dim, rank), dtype=np.float32)
        return cls(dim=dim, a_user=a_user, b_user=b_user, alpha=alpha)

    @property
    def rank(self) -> int:
        return int(self.a_user.shape[0])

    @property
    def scaling(self) -> float:
        return self.alpha / self.rank

    @property
    def base(self) -> tuple[F32, F32]:
        return base_layer(self.dim, self.rank, self.base_seed)

    def output(self, x: npt.ArrayLike) -> F32:
        """scaling x (B_base A_base x + B_user A_user x) for one vector."""
        vector = _vector(x, self.dim, "content vector")
        a_base, b_base = self.base
        out = b_base @ (a_base @ vector) + self.b_user @ (self.a_user @ vector)
        return (self.scaling * out).astype(np.float32)

    def direction(self, preference: npt.ArrayLike) -> F32:
        """w with dot(output(x), p) = dot(x, w): scoring N titles is then one matrix-vector
        product (x^T A^T B^T p), never N passes through the layers."""
        p = _vector(preference, self.dim, "preference vector")
        a_base, b_base = self.base
        w = a_base.T @ (b_base.T @ p) + self.a_user.T @ (self.b_user.T @ p)
        return (self.scaling * w).astype(np.float32)

    def user_direction(self, preference: npt.ArrayLike) -> F32:
        """The user layer's part of `direction` alone."""
        p = _vector(preference, self.dim, "preference vector")
        return (self.scaling * (self.a_user.T @ (self.b_user.T @ p))).astype(np.float32)

    def logits(self, candidates: npt.ArrayLike, preference: npt.ArrayLike) -> F32:
        """The unclamped bilinear form dot(output(x), p) for each row x: training's logit."""
        matrix = _matrix(candidates, self.dim, "candidate vectors")
        return matrix @ self.direction(preference)

    def score(self, x: npt.ArrayLike, preference: npt.ArrayLike) -> float:
        vector = _vector(x, self.dim, "content vector")
        return float(self.score_many(vector[np.newaxis, :], preference)[0])

    def score_many(self, candidates: npt.ArrayLike, preference: npt.ArrayLike) -> F32:
        """Scores in [-1, 1] of an N x dim matrix of candidates, in one product."""
        raw = self.logits(candidates, preference)
        # A NaN would sort anywhere; a broken vector is scored neutral instead.
        return np.clip(np.nan_to_num(raw, nan=0.0), -1.0, 1.0)


@dataclass(frozen=True, slots=True)
class TrainingRun:
    adapter: UserLoRAAdapter
    # Mean binary cross-entropy over all examples at the end of each epoch.
    losses: tuple[float, ...]


def _sigmoid(z: float) -> float:
    # Split by sign so exp never overflows.
    if z >= 0:
        return 1.0 / (1.0 + math.exp(-z))
    e = math.exp(z)
    return e / (1.0 + e)


def _bce(logits: npt.NDArray[np.float64], labels: npt.NDArray[np.float64]) -> float:
    # log(1 + e^z) - y z, written so a large |z| neither overflows nor loses precision.
    loss = np.logaddexp(0.0, logits) - labels * logits
    return float(loss.mean()) if loss.size else 0.0


def train(
    adapter: UserLoRAAdapter,
    examples: Sequence[TrainingExample],
    preference: npt.ArrayLike,
    epochs: int = EPOCHS,
    lr: float = LEARNING_RATE,
) -> TrainingRun:
    """Fit the user layer to the labels with binary cross-entropy; the base layer is fixed.

    The logit is the unclamped score z = dot(output(x), p) = x^T (scaling A^T B^T) p, where
    p is the user's preference vector at training time; the predicted probability is
    sigmoid(z). The clamp to [-1, 1] is for serving only: inside it sigmoid could not go below
    0.27 or above 0.73, and its gradient is zero outside it.

    Plain SGD, one step per example, examples in the order given (no shuffling), so the result
    depends only on the inputs. The arithmetic is float64 and the weights are stored float32.
    """
    if epochs < 0:
        raise ValueError(f"epochs must be >= 0, got {epochs}")
    p = _vector(preference, adapter.dim, "preference vector").astype(np.float64)
    for example in examples:
        _vector(example.vector, adapter.dim, "training vector")
    if not examples:
        return TrainingRun(adapter=adapter, losses=tuple(0.0 for _ in range(epochs)))

    xs = np.stack([np.asarray(e.vector, dtype=np.float64) for e in examples])
    ys = np.array([e.label for e in examples], dtype=np.float64)
    if not ((ys >= 0.0) & (ys <= 1.0)).all():
        raise ValueError("training labels must lie in [0, 1]")

    scaling = adapter.scaling
    a_base, b_base = adapter.base
    # The base layer's logit for each example is a constant offset: computed once.
    base_logits = xs @ (scaling * (a_base.T.astype(np.float64) @ (b_base.T @ p)))
    a = adapter.a_user.astype(np.float64)
    b = adapter.b_user.astype(np.float64)

    losses: list[float] = []
    for _ in range(epochs):
        for x, y, z_base in zip(xs, ys, base_logits, strict=True):
            code = a @ x  # A_user x, rank
            back = b.T @ p  # B_user^T p, rank
            z = z_base + scaling * float(back @ code)
            g = _sigmoid(z) - y  # dLoss/dz for BCE on sigmoid(z)
            # dz/dB = scaling p (A x)^T ; dz/dA = scaling (B^T p) x^T; both from the old weights.
            grad_b = (g * scaling) * np.outer(p, code)
            grad_a = (g * scaling) * np.outer(back, x)
            b -= lr * grad_b
            a -= lr * grad_a
        user_logits = scaling * (xs @ (a.T @ (b.T @ p)))
        losses.append(_bce(base_logits + user_logits, ys))

    trained = UserLoRAAdapter(
        dim=adapter.dim,
        a_user=a.astype(np.float32),
        b_user=b.astype(np.float32),
        alpha=adapter.alpha,
        base_seed=adapter.base_seed,
    )
    return TrainingRun(adapter=trained, losses=tuple(losses))
