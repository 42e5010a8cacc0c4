"""Each recommendation source's 0-1 score of a title, from what the stores found, and the
candidates ranking.py blends.

- content: cosine of the title's vector with the user's preference vector (the decayed,
  engagement-weighted sum of what they finished), negative similarity counting 0;
- collaborative: co-watching with viewers who share history, relative to the best title;
- graph: the title's genres against the genres the user watched in this time bucket (their
  overall genre affinities when they never watched then), relative to the strongest genre;
- popularity: log-scaled relative to the most popular candidate (the catalog's figure plus the
  users here who like it).

Each candidate also says what made its scores, for reasons a person understands: the liked
title adding most to its content score (the preference vector is the weighted sum of the
liked titles, so that is a term of the very sum), or the watchlist title it resembles when
that beats the taste, and the genre behind its graph score.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from agents.sona.profile import UserProfile
from agents.sona.ranking import AnchorKind, Candidate

# Relative genre weight from which the user's habit earns the genre its own candidate query.
FAVOURITE = 0.5


@dataclass(frozen=True, slots=True)
class TitleRow:
    """A candidate title's facts as the content tables give them."""

    canonical_id: uuid.UUID
    title: str
    popularity: float
    genres: tuple[str, ...]
    runtime_minutes: int | None
    # Users of this system who like it (sona_title_viewers).
    viewers: int = 0
    # Its maturity rating (G ... NC-17, TV-Y ... TV-MA), for parental controls; None: unrated.
    maturity_rating: str | None = None


def to_series(
    scores: Mapping[uuid.UUID, float], series_of: Mapping[uuid.UUID, uuid.UUID]
) -> dict[uuid.UUID, float]:
    """Scores of episodes given to their series (the best episode's), so a series is one
    candidate however many of its episodes a source found."""
    out: dict[uuid.UUID, float] = {}
    for cid, score in scores.items():
        key = series_of.get(cid, cid)
        out[key] = max(score, out.get(key, score))
    return out


def relative(scores: Mapping[uuid.UUID, float]) -> dict[uuid.UUID, float]:
    """Scores divided by the largest; non-positive scores become 0."""
    top = max(scores.values(), default=0.0)
    if top <= 0:
        return {k: 0.0 for k in scores}
    return {k: max(v, 0.0) / top for k, v in scores.items()}


def popularity_scores(rows: Sequence[TitleRow]) -> dict[uuid.UUID, float]:
    # Popularity spans orders of magnitude: the log keeps the second tier from looking like 0.
    # The catalog's own figure and the viewers here add up: either may be missing.
    return relative({r.canonical_id: math.log1p(max(r.popularity, 0.0) + r.viewers) for r in rows})


def genre_weights(
    bucket_counts: Mapping[str, int], affinities: Mapping[str, float]
) -> dict[str, float]:
    """0-1 per genre: the time bucket's habits when there are any, else overall affinities."""
    source: Mapping[str, float] = (
        {g: float(n) for g, n in bucket_counts.items()} if bucket_counts else affinities
    )
    top = max(source.values(), default=0.0)
    if top <= 0:
        return {}
    return {g.strip().lower(): max(v, 0.0) / top for g, v in source.items()}


def favourite_genres(weights: Mapping[str, float], at_least: float = FAVOURITE) -> list[str]:
    """The genres worth their own candidate query: at least half as watched as the top one."""
    return [g for g, w in weights.items() if w >= at_least]


def mood_first(
    rows: Mapping[uuid.UUID, TitleRow], mood_genres: Collection[str], limit: int
) -> dict[uuid.UUID, TitleRow]:
    """A mood asked for narrows the answer to its genres when they can fill it; otherwise
    the other titles stay, ranked below by the context score."""
    wanted = set(mood_genres)
    if not wanted:
        return dict(rows)
    matching = {cid: r for cid, r in rows.items() if wanted & {g.strip().lower() for g in r.genres}}
    return matching if len(matching) >= limit else dict(rows)


def graph_score(
    genres: Sequence[str], weights: Mapping[str, float]
) -> tuple[float | None, str | None]:
    """(the best weight among the title's genres, that genre); (None, None) without weights."""
    if not weights:
        return None, None
    scored = [(weights.get(g.strip().lower(), 0.0), g.strip().lower()) for g in genres]
    best = max(scored, default=(0.0, None))
    return best[0], best[1] if best[0] > 0 else None


@dataclass(frozen=True, slots=True)
class Anchor:
    """A title in the user's taste (weight: its decayed term in the taste sum; kind: rated
    well, "liked", or only "watched") or on their watchlist, as a reason can name it."""

    title: str
    vector: npt.ArrayLike
    weight: float = 1.0
    kind: AnchorKind = "liked"


def _unit_rows(vectors: Sequence[npt.ArrayLike]) -> npt.NDArray[np.float32]:
    matrix = np.stack([np.asarray(v, dtype=np.float32) for v in vectors])
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return np.divide(matrix, norms, out=np.zeros_like(matrix), where=norms > 1e-12)


def strongest_anchor(
    vectors: Mapping[uuid.UUID, npt.ArrayLike], anchors: Sequence[Anchor]
) -> dict[uuid.UUID, tuple[Anchor, float]]:
    """Per title, the anchor with the largest weight x cosine, and that cosine."""
    if not vectors or not anchors:
        return {}
    ids = list(vectors)
    titles = _unit_rows([vectors[i] for i in ids])
    marks = _unit_rows([a.vector for a in anchors])
    cosine = titles @ marks.T
    weights = np.array([a.weight for a in anchors], dtype=np.float32)
    best = np.argmax(cosine * weights, axis=1)
    chosen = np.take_along_axis(cosine, best[:, np.newaxis], axis=1)[:, 0]
    return {
        cid: (anchors[j], c) for cid, j, c in zip(ids, best.tolist(), chosen.tolist(), strict=True)
    }


def content_scores(
    vectors: Mapping[uuid.UUID, npt.ArrayLike], preference: npt.ArrayLike
) -> dict[uuid.UUID, float]:
    p = np.asarray(preference, dtype=np.float32)
    if not vectors or float(np.linalg.norm(p)) < 1e-12:
        return {}
    ids = list(vectors)
    matrix = np.stack([np.asarray(vectors[i], dtype=np.float32) for i in ids])
    norms = np.linalg.norm(matrix, axis=1) * float(np.linalg.norm(p))
    cosine = (matrix @ p) / np.where(norms > 0, norms, 1.0)
    return {i: float(min(max(c, 0.0), 1.0)) for i, c in zip(ids, cosine.tolist(), strict=True)}


def candidates(
    rows: Mapping[uuid.UUID, TitleRow],
    vectors: Mapping[uuid.UUID, npt.ArrayLike],
    *,
    content: Mapping[uuid.UUID, float],
    collaborative: Mapping[uuid.UUID, float],
    weights: Mapping[str, float],
    liked: Sequence[Anchor] = (),
    watchlist: Sequence[Anchor] = (),
) -> list[Candidate]:
    """One candidate per title row, each source's score where it has one. A title closer to
    a watchlist title than to the taste takes that closeness as its content score."""
    popularity = popularity_scores(list(rows.values()))
    collab = relative(dict(collaborative))
    because = strongest_anchor(vectors, liked)
    listed = strongest_anchor(vectors, watchlist)
    # Titles share a few genre combinations: each is scored once.
    graphs: dict[tuple[str, ...], tuple[float | None, str | None]] = {}
    out: list[Candidate] = []
    for cid, row in rows.items():
        if row.genres not in graphs:
            graphs[row.genres] = graph_score(row.genres, weights)
        graph, genre = graphs[row.genres]
        score, anchor = content.get(cid), because.get(cid, (None, 0.0))[0]
        kind: AnchorKind = anchor.kind if anchor is not None else "liked"
        if cid in listed and listed[cid][1] > (score or 0.0):
            score, anchor, kind = min(max(listed[cid][1], 0.0), 1.0), listed[cid][0], "watchlist"
        out.append(
            Candidate(
                canonical_id=cid,
                title=row.title,
                vector=vectors.get(cid),
                genres=row.genres,
                runtime_minutes=row.runtime_minutes,
                collaborative=collab.get(cid),
                content=score,
                graph=graph,
                popularity=popularity.get(cid),
                because_of=anchor.title if anchor is not None else None,
                anchor=kind,
                genre=genre,
            )
        )
    return out


def personal_candidates(
    rows: Mapping[uuid.UUID, TitleRow],
    vectors: Mapping[uuid.UUID, npt.ArrayLike],
    profile: UserProfile,
    *,
    bucket_counts: Mapping[str, int],
    co_watched: Mapping[uuid.UUID, float],
    liked: Sequence[Anchor] = (),
    watchlist: Sequence[Anchor] = (),
) -> list[Candidate]:
    """The candidates scored for this user: a user with no history yet has no taste to match
    and no habits, so only popularity and the context rank their titles (cold start)."""
    history = profile.has_history
    content = content_scores(vectors, profile.preference) if history else {}
    weights = genre_weights(bucket_counts, profile.genre_affinities) if history else {}
    return candidates(
        rows,
        vectors,
        content=content,
        collaborative=co_watched,
        weights=weights,
        liked=liked,
        watchlist=watchlist,
    )
