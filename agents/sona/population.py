"""A population-trained layer: one low-rank bilinear map learned from every user's history
(docs/SONA.md, "Quality", fourth pass).

A per-user adapter trained on ~20 of the user's own events re-learned the taste the profile
already holds and added nothing measurable. This layer is shared: it learns, from all users'
liked titles at once, which titles a preference vector predicts beyond plain cosine:

    s(x, p) = (A x) . (B p) + b . x          A, B: rank x dim, b: dim

trained with Bayesian personalized ranking on triples (p, x+, x-): p is the user's preference
with the liked title x+ left out (so the map cannot learn "a title is close to itself"),
blended with the liked titles just before x+ (`layer_input`: in an answer, the latest ones),
x- a title others like that the user never touched, drawn in proportion to its likers.

Pure: numpy only; the caller reads the rows and vectors (handlers.train_population).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]


# The layer's preference input: the taste blended with the mean of the user's last RECENT_K
# liked titles (RECENT_MIX of it; 0: the taste alone). What a user picks next follows their
# latest few titles, which the taste, a decayed sum over years, barely moves with. 3 and 0.7:
# the validation split's choice among 2-10 titles and 0.3-1.0 (docs/SONA.md, fifth pass).
RECENT_K = 3
RECENT_MIX = 0.7
# Probe switch: train on each liked title against the taste of the titles before it only (the
# request's view of a next title) instead of every other title's.
SEQUENTIAL = False


def layer_input(taste: npt.ArrayLike, recent: Sequence[npt.ArrayLike]) -> F32:
    """The unit preference the layer reads: `taste` (unit) with the mean of `recent` (the
    user's liked titles' vectors, latest first) blended in."""
    p = np.asarray(taste, dtype=np.float64)
    if not RECENT_K or not RECENT_MIX or not len(recent):
        return p.astype(np.float32)
    mean = np.mean(np.asarray(recent[:RECENT_K], dtype=np.float64), axis=0)
    norm = float(np.linalg.norm(mean))
    if norm < 1e-9:
        return p.astype(np.float32)
    blended = (1.0 - RECENT_MIX) * p + RECENT_MIX * mean / norm
    out = float(np.linalg.norm(blended))
    return (blended / out if out > 1e-9 else p).astype(np.float32)


@dataclass(frozen=True, slots=True)
class PopulationLayer:
    a: F32  # rank x dim
    b: F32  # rank x dim
    bias: F32  # dim

    def scores(self, candidates: npt.ArrayLike, preference: npt.ArrayLike) -> F32:
        """s(x, p) for each row x of an N x dim matrix."""
        x = np.asarray(candidates, dtype=np.float32)
        p = np.asarray(preference, dtype=np.float32)
        return (x @ self.a.T) @ (self.b @ p) + x @ self.bias

    def save(self, path: str) -> None:
        np.savez(path, a=self.a, b=self.b, bias=self.bias)

    @classmethod
    def load(cls, path: str) -> PopulationLayer:
        with np.load(path) as f:
            return cls(a=f["a"], b=f["b"], bias=f["bias"])


@dataclass(frozen=True, slots=True)
class Triples:
    preference: F32  # N x dim, each the user's taste without the positive, unit length
    positive: F32  # N x dim
    negative: F32  # N x dim


def triples(
    histories: Mapping[str, Sequence[tuple[uuid.UUID, float]]],
    vectors: Mapping[uuid.UUID, F32],
    likers: Mapping[uuid.UUID, int],
    per_positive: int,
    seed: int,
) -> Triples:
    """The training triples of every user: (taste without x+, x+, drawn x-) per liked title
    (weight > 0) of a user with at least two titles in the taste."""
    rng = np.random.default_rng(seed)
    pool = [cid for cid, n in likers.items() if n > 0 and cid in vectors]
    weights = np.array([likers[c] for c in pool], dtype=np.float64)
    weights /= weights.sum()
    prefs: list[F64] = []
    pos: list[F32] = []
    neg: list[F32] = []
    for _, rows in sorted(histories.items()):
        kept = [(c, w) for c, w in rows if c in vectors and w != 0]
        if len(kept) < 2:
            continue
        mine = {c for c, _ in kept}
        total = sum(w * vectors[c].astype(np.float64) for c, w in kept)
        # The liked titles before this one, latest first: what a request then would see as
        # the recent ones (histories are oldest first).
        before: list[F32] = []
        prefix = np.zeros_like(total)
        for cid, w in kept:
            term = w * vectors[cid].astype(np.float64)
            prefix = prefix + term
            if w <= 0:
                continue
            rest = prefix - term if SEQUENTIAL else total - term
            norm = float(np.linalg.norm(rest))
            if norm < 1e-9:
                before.insert(0, vectors[cid])
                continue
            p = layer_input(rest / norm, before)
            before.insert(0, vectors[cid])
            drawn = [pool[i] for i in rng.choice(len(pool), size=per_positive * 3, p=weights)]
            drawn = [d for d in drawn if d not in mine][:per_positive]
            for d in drawn:
                prefs.append(p)
                pos.append(vectors[cid])
                neg.append(vectors[d])
    return Triples(
        np.asarray(prefs, dtype=np.float32),
        np.asarray(pos, dtype=np.float32),
        np.asarray(neg, dtype=np.float32),
    )


def train(
    data: Triples,
    rank: int = 16,
    epochs: int = 10,
    lr: float = 0.01,
    l2: float = 1e-4,
    batch: int = 256,
    seed: int = 0,
) -> PopulationLayer:
    """BPR, minibatch Adam; deterministic for a seed."""
    rng = np.random.default_rng(seed)
    n, dim = data.positive.shape
    a = rng.standard_normal((rank, dim)) * 0.01
    b = rng.standard_normal((rank, dim)) * 0.01
    bias = np.zeros(dim)
    params = [a, b, bias]
    m = [np.zeros_like(q) for q in params]
    v = [np.zeros_like(q) for q in params]
    step = 0
    p_all = data.preference.astype(np.float64)
    d_all = (data.positive - data.negative).astype(np.float64)
    for _ in range(epochs):
        order = rng.permutation(n)
        for start in range(0, n, batch):
            idx = order[start : start + batch]
            p, d = p_all[idx], d_all[idx]
            bp = p @ b.T  # k x rank
            ad = d @ a.T  # k x rank
            z = (ad * bp).sum(1) + d @ bias
            g = -1.0 / (1.0 + np.exp(z))  # d(-log sigmoid z)/dz
            g = g / len(idx)
            grads = [
                (g[:, None] * bp).T @ d + l2 * a,
                (g[:, None] * ad).T @ p + l2 * b,
                g @ d + l2 * bias,
            ]
            step += 1
            for q, gq, mq, vq in zip(params, grads, m, v, strict=True):
                mq *= 0.9
                mq += 0.1 * gq
                vq *= 0.999
                vq += 0.001 * gq * gq
                q -= lr * (mq / (1 - 0.9**step)) / (np.sqrt(vq / (1 - 0.999**step)) + 1e-8)
    return PopulationLayer(a.astype(np.float32), b.astype(np.float32), bias.astype(np.float32))


def pairwise_accuracy(layer: PopulationLayer | None, data: Triples) -> float:
    """Share of triples where x+ outscores x- (None: plain cosine to the preference)."""
    if layer is None:
        z = ((data.positive - data.negative) * data.preference).sum(1)
    else:
        d = data.positive - data.negative
        z = ((d @ layer.a.T) * (data.preference @ layer.b.T)).sum(1) + d @ layer.bias
    return float((z > 0).mean())
