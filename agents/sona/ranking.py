"""The recommendation mix: blend the sources, apply the user's adapter, diversify with MMR.

    mixed = .35 collaborative + .25 content + .30 graph + .10 context
    final = mixed x (1 + 0.1 x tanh(z of the population layer's score))

Weights are not renormalized. A source missing for a title contributes 0, so a title several
sources agree on outranks one that a single source found; a source missing for the whole
request (say, the graph is down) lowers every title alike and leaves their order to the rest.

Cold start (no adapter and no history): only popularity and context mean anything, blended
.60 / .40. Context gets more than its usual .10 because the request's mood and device are
then the only signal about this user.

Source scores are 0-1, normalized by whoever produced them. The final list is picked by
maximal marginal relevance (lambda 0.7, cosine over content vectors), at most 20 titles.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

from agents.sona.context import Context, ContextFit, context_fit, habit_of
from agents.sona.lora import DimensionMismatch, UserLoRAAdapter
from agents.sona.population import PopulationLayer, layer_input
from agents.sona.profile import UserProfile
from schemas.sona import MAX_RECOMMENDATIONS, Recommendation

WEIGHTS: dict[str, float] = {
    "collaborative": 0.35,
    "content": 0.25,
    "graph": 0.30,
    "popularity": 0.0,
    "context": 0.10,
}
COLD_START_WEIGHTS: dict[str, float] = {"popularity": 0.60, "context": 0.40}
# The user layer's boost. 0: on the validation split it took away what the population layer
# added (NDCG@10 0.0730 with it at 0.3, 0.0766 without, profile alone 0.0688; docs/SONA.md,
# "Quality", fourth pass); the user layers are still trained and stored, so turning it back
# on needs no backfill.
ADAPTER_BOOST = 0.0
# Probe switch (docs/SONA.md, "Quality"): the adapter's scores less their mean over the request's
# candidates, so only its differences between them rerank.
ADAPTER_CENTRED = False
# The population layer (agents/sona/population.py): its scores, standardized over the request's
# candidates, rerank the mix by (1 + weight x tanh(z)). 0.1 is what the validation split chose
# of 0.1, 0.2, 0.35 and 0.5 (docs/SONA.md, "Quality", fourth pass). POPULATION_TOP_N > 0 (a
# probe switch) reranks only the mix's top N, the rest kept below them.
POPULATION_WEIGHT = 0.1
POPULATION_TOP_N = 0
# A title the layer ranks this many standard deviations above the request's others says so.
POPULATION_REASON_MIN_Z = 1.5
MMR_LAMBDA = 0.7
# A source names itself as a reason when it scored the title at least this well.
REASON_MIN_SCORE = 0.5
ADAPTER_REASON_MIN_SCORE = 0.25

# What each source says when it scored a title well, unless it names what did it (below).
SOURCE_REASONS: dict[str, str] = {
    "collaborative": "liked by viewers who share your taste",
    "content": "similar to titles you liked",
    "graph": "in genres you watch",
    "popularity": "popular with viewers here",
}
ADAPTER_REASON = "fits what your ratings taught us"
POPULATION_REASON = "often chosen next by viewers with tastes like yours"
FALLBACK_REASON = "recommended for you"

_SOURCES = ("collaborative", "content", "graph", "popularity")
# What the title a content score is owed to is to the user: rated well, watched (finished,
# unrated), or on the watchlist.
AnchorKind = Literal["liked", "watched", "watchlist"]


@dataclass(frozen=True, slots=True)
class Candidate:
    """A title one or more sources proposed, with each source's 0-1 score (None: not proposed
    by that source). `popularity` is in the request's region when it named one."""

    canonical_id: uuid.UUID
    title: str
    vector: npt.ArrayLike | None = None
    genres: tuple[str, ...] = ()
    runtime_minutes: int | None = None
    collaborative: float | None = None
    content: float | None = None
    graph: float | None = None
    popularity: float | None = None
    # What made each source's score, in words a person knows (None: nothing to name): the
    # liked title that adds most to the content score, the genre behind the graph score.
    because_of: str | None = None
    anchor: AnchorKind = "liked"
    genre: str | None = None

    def __post_init__(self) -> None:
        for name in _SOURCES:
            value = getattr(self, name)
            if value is not None and not (math.isfinite(value) and 0.0 <= value <= 1.0):
                raise ValueError(f"{name} score of {self.canonical_id} must be 0-1, got {value}")


def mix_score(candidate: Candidate, context_score: float | None) -> float:
    """The personal mix; missing sources add nothing (see the module notes)."""
    sources = {
        "collaborative": candidate.collaborative,
        "content": candidate.content,
        "graph": candidate.graph,
        "popularity": candidate.popularity,
        "context": context_score,
    }
    return sum(WEIGHTS[name] * value for name, value in sources.items() if value is not None)


def cold_start_score(candidate: Candidate, context_score: float | None) -> float:
    sources = {"popularity": candidate.popularity, "context": context_score}
    return sum(
        COLD_START_WEIGHTS[name] * value for name, value in sources.items() if value is not None
    )


def mmr(
    relevance: npt.ArrayLike, vectors: npt.ArrayLike, k: int, lam: float = MMR_LAMBDA
) -> list[int]:
    """Indices of up to k items by maximal marginal relevance:
    argmax lam x relevance - (1 - lam) x max cosine to the items already picked.

    Zero rows (titles without a vector) are similar to nothing. Ties go to the lower index.
    """
    rel = np.asarray(relevance, dtype=np.float64)
    matrix = np.asarray(vectors, dtype=np.float32)
    if matrix.ndim != 2 or matrix.shape[0] != rel.shape[0]:
        raise ValueError(f"need one vector row per item: {matrix.shape} for {rel.shape[0]} items")
    norms = np.sqrt(np.einsum("ij,ij->i", matrix, matrix))[:, np.newaxis]
    unit = np.divide(matrix, norms, out=np.zeros_like(matrix), where=norms > 1e-12)
    redundancy = np.zeros(rel.shape[0])
    open_ = np.ones(rel.shape[0], dtype=bool)
    picked: list[int] = []
    for _ in range(min(k, rel.shape[0])):
        gain = np.where(open_, lam * rel - (1.0 - lam) * redundancy, -np.inf)
        best = int(np.argmax(gain))
        picked.append(best)
        open_[best] = False
        # Dissimilar (negative cosine) titles carry no redundancy, not a bonus.
        redundancy = np.maximum(redundancy, unit @ unit[best])
    return picked


def _unique(candidates: Iterable[Candidate], excluded: Collection[uuid.UUID]) -> list[Candidate]:
    # The store merges each title's sources into one candidate; a repeat here is dropped so
    # a title never appears twice in an answer.
    seen: set[uuid.UUID] = set(excluded)
    kept: list[Candidate] = []
    for candidate in candidates:
        if candidate.canonical_id not in seen:
            seen.add(candidate.canonical_id)
            kept.append(candidate)
    return kept


def _vector_matrix(candidates: Sequence[Candidate], dim: int | None) -> npt.NDArray[np.float32]:
    if dim is None:
        # Without a profile to say which dimension is ours, the first vector sets it.
        first = next((c.vector for c in candidates if c.vector is not None), None)
        dim = np.asarray(first).shape[-1] if first is not None else 0
    matrix = np.zeros((len(candidates), dim), dtype=np.float32)
    for row, candidate in enumerate(candidates):
        if candidate.vector is None:
            continue
        vector = np.asarray(candidate.vector, dtype=np.float32)
        if vector.ndim != 1 or vector.shape[0] != dim:
            raise DimensionMismatch(f"vector of {candidate.canonical_id}", dim, vector.shape[-1])
        matrix[row] = vector
    return matrix


def _popular_reason(context: Context) -> str:
    return "popular in your region" if context.region else "popular right now"


def source_reason(candidate: Candidate, source: str, context: Context) -> str:
    """A source's reason for a title, naming what made its score where it knows."""
    if source == "content" and candidate.because_of:
        if candidate.anchor == "watchlist":
            return f"more like {candidate.because_of}, on your watchlist"
        return f"because you {candidate.anchor} {candidate.because_of}"
    if source == "graph" and candidate.genre:
        return f"{candidate.genre.replace('_', ' ')}, a genre you watch"
    if source == "popularity":
        return _popular_reason(context)
    return SOURCE_REASONS[source]


def _reasons(
    candidate: Candidate,
    context: Context,
    context_reasons: tuple[str, ...],
    adapter_score: float,
    cold: bool,
    population_z: float = 0.0,
) -> list[str]:
    reasons: list[str] = []
    if cold:
        if candidate.popularity is not None and candidate.popularity >= REASON_MIN_SCORE:
            reasons.append(_popular_reason(context))
    else:
        # Named in the order of what each source added to the score.
        strong = [
            (WEIGHTS[name] * value, name)
            for name in SOURCE_REASONS
            if WEIGHTS[name] > 0
            and (value := getattr(candidate, name)) is not None
            and value >= REASON_MIN_SCORE
        ]
        reasons.extend(
            source_reason(candidate, name, context) for _, name in sorted(strong, reverse=True)
        )
        if population_z >= POPULATION_REASON_MIN_Z:
            reasons.append(POPULATION_REASON)
        if adapter_score >= ADAPTER_REASON_MIN_SCORE:
            reasons.append(ADAPTER_REASON)
    reasons.extend(context_reasons)
    return reasons or [FALLBACK_REASON]


def _population_rerank(
    scores: npt.NDArray[np.float64], layer: npt.ArrayLike
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """The scores reranked by the layer's, and each title's z (its standard deviations above
    the request's mean; 0 for a title left out of a top-N rerank)."""
    raw = np.asarray(layer, dtype=np.float64)
    keep = np.ones(len(scores), dtype=bool)
    if POPULATION_TOP_N and len(scores) > POPULATION_TOP_N:
        keep[:] = False
        keep[np.argsort(-scores, kind="stable")[:POPULATION_TOP_N]] = True
    picked = raw[keep]
    sd = float(picked.std())
    z = np.zeros(len(scores))
    if sd > 1e-12:
        z[keep] = (picked - picked.mean()) / sd
    out = scores * (1.0 + POPULATION_WEIGHT * np.tanh(z))
    if POPULATION_TOP_N and len(scores) > POPULATION_TOP_N:
        # The reranked top stays above the rest: a rerank, not a new blend.
        floor = float(out[keep].min())
        rest = ~keep
        top_rest = float(scores[rest].max()) if rest.any() else 0.0
        if top_rest > 0:
            out[rest] = scores[rest] / top_rest * floor * 0.999
    return out, z


def recommend(
    candidates: Iterable[Candidate],
    *,
    context: Context,
    profile: UserProfile | None = None,
    adapter: UserLoRAAdapter | None = None,
    population: PopulationLayer | None = None,
    recent: Sequence[npt.ArrayLike] = (),
    watchlist: Collection[uuid.UUID] = frozenset(),
    finished: Collection[uuid.UUID] = frozenset(),
    limit: int = MAX_RECOMMENDATIONS,
) -> list[Recommendation]:
    """The ranked, diversified answer. Titles on the watchlist or already finished are left
    out; so is a repeated title. Deterministic for the same inputs. `population` is the
    adapter's population-trained layer (None: the adapter is off, or none trained yet);
    `recent` the vectors of the user's latest liked titles, latest first (its input)."""
    if not 1 <= limit <= MAX_RECOMMENDATIONS:
        raise ValueError(f"limit must be 1-{MAX_RECOMMENDATIONS}, got {limit}")
    pool = _unique(candidates, set(watchlist) | set(finished))
    if not pool:
        return []

    has_history = profile is not None and profile.has_history
    cold = adapter is None and not has_history
    habit = habit_of(profile.hourly if profile is not None else None, context.time_bucket)
    # Titles share a few (genres, runtime) pairs: each is fitted once.
    fitted: dict[tuple[tuple[str, ...], int | None], ContextFit] = {}
    fits = []
    for c in pool:
        key = (c.genres, c.runtime_minutes)
        if key not in fitted:
            fitted[key] = context_fit(context, c.genres, c.runtime_minutes, habit)
        fits.append(fitted[key])
    score_of = cold_start_score if cold else mix_score
    scores = np.array([score_of(c, fit.score) for c, fit in zip(pool, fits, strict=True)])

    vectors = _vector_matrix(pool, profile.dim if profile is not None else None)
    adapter_scores = np.zeros(len(pool), dtype=np.float32)
    if adapter is not None and profile is not None and has_history:
        adapter_scores = adapter.score_many(vectors, profile.preference)
        if ADAPTER_CENTRED:
            adapter_scores = adapter_scores - adapter_scores.mean()
        # A title without a vector has a zero row, which scores 0: no boost, no penalty.
        scores = scores * (1.0 + ADAPTER_BOOST * adapter_scores.astype(np.float64))
    population_z = np.zeros(len(pool))
    if population is not None and POPULATION_WEIGHT and profile is not None and profile.has_taste:
        scores, population_z = _population_rerank(
            scores, population.scores(vectors, layer_input(profile.preference, recent))
        )

    # Best first, ties by id: MMR breaks ties by position, and the answer must not depend on
    # the order the sources happened to return titles in.
    listed = scores.tolist()
    order = sorted(range(len(pool)), key=lambda i: (-listed[i], pool[i].canonical_id.int))
    top = float(scores[order[0]])
    relevance = scores[order] / top if top > 0 else np.zeros(len(order))
    picked = mmr(relevance, vectors[order], limit)

    answer: list[Recommendation] = []
    for position in picked:
        i = order[position]
        candidate = pool[i]
        answer.append(
            Recommendation(
                canonical_id=candidate.canonical_id,
                title=candidate.title,
                score=float(scores[i]),
                reasons=_reasons(
                    candidate,
                    context,
                    fits[i].reasons,
                    float(adapter_scores[i]),
                    cold,
                    float(population_z[i]),
                ),
            )
        )
    return answer
