"""One ranking from several: weighted reciprocal rank fusion, soft boosts, personalization.

Each strategy that answered gives a ranked list; a title at rank r (from 1) in a list of
weight w earns w / (60 + r) (docs/RULES.md: RRF k = 60; weights vector .35, graph .30, keyword
.20, popularity .15). A strategy that failed or found nothing is simply absent, and the others
answer alone.

relevance_score = fused / best x mood boost x theme boost, where `best` is what a title ranked
first by every strategy that answered would earn. Dividing by it keeps relevance on a 0-1
scale (before boosts) whichever strategies answered, which is what lets the personalization
blend mix it with a 0-1 SONA score: score x (1 - 0.25) + sona x 0.25.

Boosts are soft preferences, not filters, and deliberately small:
- x 1.10 when the title has a genre one of the query's moods calls for (once, however many);
- x 1.05 per theme of the query found in the title or its keywords, at most x 1.15;
- x 1.10 when the title shares a genre with a title the query compares with ("like The
  Matrix": science fiction and action), once however many it shares;
- x 1.50 when the search words are the title itself, typos aside ("shawshank redemtion",
  "the godfahter": rapidfuzz ratio >= 85 of the matching forms). Someone typing a title wants
  that title first, even when the vector search, which reads a typo as noise, ranks others
  higher; the boost is large because only one strategy (keyword) can see the match.
Near the top of one list, 1/61 and 1/67 differ by 10%: a mood can lift a title about six
places past titles one strategy alone ranks, but never past one that two strategies both rank
first.
"""

from __future__ import annotations

import math
import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from rapidfuzz import fuzz, utils

from agents.discovery.filters import payload_genres, payload_platforms
from agents.sona.moods import genres_for_mood
from agents.titles.names import normalize_title
from agreements.typo_rules import is_number
from schemas.discovery import (
    STRATEGIES,
    MatchedEpisode,
    ParsedIntent,
    SearchResult,
    SeasonAvailability,
    Strategy,
    StrategyScores,
)

RRF_K = 60
WEIGHTS: Mapping[Strategy, float] = {
    "vector": 0.35,
    "graph": 0.30,
    "keyword": 0.20,
    "popularity": 0.15,
}
PERSONALIZATION_BLEND = 0.25  # docs/RULES.md: b
MOOD_BOOST = 1.10
THEME_BOOST = 1.05
THEME_BOOST_MAX = 1.15
REFERENCE_GENRE_BOOST = 1.10
TITLE_MATCH_BOOST = 1.50
TITLE_MATCH = 85.0  # rapidfuzz ratio, 0-100
# rapidfuzz token_set_ratio (0-100) at which a title counts as similar to a reference:
# "Shrek 2" and "Shrek" score 100, unrelated titles sharing "the" stay well below.
REFERENCE_SIMILARITY = 80.0
# A SONA score at or above this adds "matches your taste" to the reasons.
TASTE_REASON_THRESHOLD = 0.5

_DEFAULT_REASONS: Mapping[Strategy, str] = {
    "vector": "matches your query",
    "keyword": "matches words in your query",
    "popularity": "popular",
    "graph": "related to titles you like",
}
_WORDS = re.compile(r"\w+")


@dataclass(frozen=True, slots=True)
class Hit:
    """One title in a strategy's ranked list, best first."""

    canonical_id: uuid.UUID
    reason: str | None = None  # the strategy's own explanation, replacing the default one


@dataclass(frozen=True, slots=True)
class SearchHit:
    """What a result shows and what the boosts read."""

    canonical_id: uuid.UUID
    title: str
    release_year: int | None = None
    genres: tuple[str, ...] = ()
    platforms: tuple[str, ...] = ()
    keywords: tuple[str, ...] = ()
    content_type: str | None = None
    # Of a series: its seasons and the episodes the search found it by (agents/discovery/series.py).
    seasons: tuple[SeasonAvailability, ...] | None = None
    matched_episodes: tuple[MatchedEpisode, ...] = ()

    @classmethod
    def from_payload(
        cls, canonical_id: uuid.UUID, payload: Mapping[str, Any], region: str | None = None
    ) -> SearchHit:
        """From a read-model document or a vector payload (see agents.discovery.filters)."""
        year = payload.get("release_year")
        keywords = payload.get("keywords")
        kind = payload.get("content_type")
        return cls(
            canonical_id=canonical_id,
            title=str(payload.get("title") or ""),
            release_year=year if isinstance(year, int) and not isinstance(year, bool) else None,
            genres=tuple(payload_genres(payload)),
            platforms=tuple(payload_platforms(payload, region)),
            keywords=tuple(k for k in keywords if isinstance(k, str))
            if isinstance(keywords, list)
            else (),
            content_type=kind if isinstance(kind, str) else None,
        )


def rrf_term(weight: float, rank: int) -> float:
    """A rank's share of the fused score: w / (k + rank), rank counted from 1."""
    if rank < 1:
        raise ValueError(f"rank {rank} must be at least 1")
    return weight / (RRF_K + rank)


def answered(rankings: Mapping[Strategy, Sequence[Hit]]) -> list[Strategy]:
    """The strategies that returned at least one title, in a fixed order."""
    return [s for s in STRATEGIES if rankings.get(s)]


def _terms(
    rankings: Mapping[Strategy, Sequence[Hit]],
    weights: Mapping[Strategy, float],
    first_rank: int = 1,
) -> tuple[dict[uuid.UUID, dict[Strategy, float]], dict[uuid.UUID, dict[Strategy, str]]]:
    terms: dict[uuid.UUID, dict[Strategy, float]] = {}
    reasons: dict[uuid.UUID, dict[Strategy, str]] = {}
    for strategy in answered(rankings):
        rank = first_rank - 1
        for hit in rankings[strategy]:
            per_title = terms.setdefault(hit.canonical_id, {})
            if strategy in per_title:
                continue  # a title listed twice keeps its better rank; ranks stay dense
            rank += 1
            per_title[strategy] = rrf_term(weights[strategy], rank)
            if hit.reason:
                reasons.setdefault(hit.canonical_id, {})[strategy] = hit.reason
    return terms, reasons


def _strategy_reason(strategy: Strategy, intent: ParsedIntent | None) -> str:
    if strategy == "graph" and intent is not None and intent.references:
        return "related to " + ", ".join(f"'{r}'" for r in intent.references[:3])
    return _DEFAULT_REASONS[strategy]


def _similar_references(title: str, intent: ParsedIntent) -> list[str]:
    return [
        f"title similar to '{reference}'"
        for reference in intent.references
        if fuzz.token_set_ratio(title, reference, processor=utils.default_process)
        >= REFERENCE_SIMILARITY
    ]


def _mood_boost(candidate: SearchHit, intent: ParsedIntent) -> tuple[float, list[str]]:
    reasons: list[str] = []
    named: set[str] = set()
    for mood in intent.mood:
        for genre in genres_for_mood(mood):
            if genre in candidate.genres and genre not in named:
                named.add(genre)
                reasons.append(f"genre: {genre} (mood: {mood})")
    return (MOOD_BOOST if reasons else 1.0), reasons


def _theme_boost(candidate: SearchHit, intent: ParsedIntent) -> tuple[float, list[str]]:
    words = {
        w.casefold()
        for text in (candidate.title, *candidate.keywords)
        for w in _WORDS.findall(text)
    }
    found = [
        theme
        for theme in intent.themes
        if (theme_words := {w.casefold() for w in _WORDS.findall(theme)}) and theme_words <= words
    ]
    factor = min(THEME_BOOST ** len(found), THEME_BOOST_MAX) if found else 1.0
    return factor, [f"theme: {theme}" for theme in found]


def _reference_boost(
    candidate: SearchHit, reference_genres: Mapping[str, Sequence[str]]
) -> tuple[float, list[str]]:
    reasons = [
        f"genre: {', '.join(shared)} (like '{reference}')"
        for reference, genres in reference_genres.items()
        if (shared := [g for g in genres if g in candidate.genres])
    ]
    return (REFERENCE_GENRE_BOOST if reasons else 1.0), reasons


def is_title_match(title: str, title_form: str) -> bool:
    """Whether search words (in the matching form of titles) name this title: close enough,
    and with the same numbers (a number is never a typo: "Part 4" does not name "Part 3")."""
    if not title_form:
        return False
    form = normalize_title(title)
    numbers = {w for w in form.split() if is_number(w)}
    if numbers != {w for w in title_form.split() if is_number(w)}:
        return False
    return fuzz.ratio(form, title_form) >= TITLE_MATCH


def fuse(
    rankings: Mapping[Strategy, Sequence[Hit]],
    candidates: Mapping[uuid.UUID, SearchHit],
    intent: ParsedIntent | None = None,
    *,
    reference_genres: Mapping[str, Sequence[str]] | None = None,
    title_form: str = "",
    personal_scores: Mapping[uuid.UUID, float] | None = None,
    weights: Mapping[Strategy, float] = WEIGHTS,
    blend: float = PERSONALIZATION_BLEND,
    first_rank: int = 1,
) -> list[SearchResult]:
    """All titles of all lists, best first; titles without a candidate are left out.

    A rank is the position in the list as given, so filter the lists before fusing them;
    `first_rank` is the rank of the first title of each list (a list that is a later page of
    a longer one goes on from the pages before it).
    `reference_genres`: the genres of each title the query compares with, by the reference as
    typed. `title_form`: the search words in the matching form of titles
    (agents.titles.names.normalize_title). `personal_scores` (0-1, from SONA) blend in for
    the titles they score; titles SONA did not score keep their relevance.
    """
    unknown = set(rankings) - set(weights)
    if unknown:
        raise ValueError(f"no weight for strategies {sorted(unknown)}")
    best = sum(rrf_term(weights[s], 1) for s in answered(rankings))
    if best <= 0:
        return []
    terms, strategy_reasons = _terms(rankings, weights, first_rank)
    results: list[tuple[float, float, SearchResult]] = []
    for canonical_id, per_strategy in terms.items():
        candidate = candidates.get(canonical_id)
        if candidate is None or not candidate.title:
            continue
        fused = sum(per_strategy.values())
        reasons = [
            strategy_reasons.get(canonical_id, {}).get(s) or _strategy_reason(s, intent)
            for s in sorted(per_strategy, key=lambda s: -per_strategy[s])
        ]
        relevance = fused / best
        if intent is not None:
            reasons += _similar_references(candidate.title, intent)
            for boost in (_mood_boost, _theme_boost):
                factor, boost_reasons = boost(candidate, intent)
                relevance *= factor
                reasons += boost_reasons
        if is_title_match(candidate.title, title_form):
            relevance *= TITLE_MATCH_BOOST
            reasons.insert(0, "title matches your query")
        if reference_genres:
            factor, boost_reasons = _reference_boost(candidate, reference_genres)
            relevance *= factor
            reasons += boost_reasons
        personal = (personal_scores or {}).get(canonical_id)
        if personal is not None and math.isfinite(personal):
            personal = min(1.0, max(0.0, personal))
            relevance = relevance * (1 - blend) + personal * blend
            if personal >= TASTE_REASON_THRESHOLD:
                reasons.append("matches your taste")
        result = SearchResult(
            canonical_id=canonical_id,
            title=candidate.title,
            release_year=candidate.release_year,
            genres=list(candidate.genres),
            platforms=list(candidate.platforms),
            relevance_score=relevance,
            match_reasons=list(dict.fromkeys(reasons)),
            strategy_scores=StrategyScores(**per_strategy),
            content_type=candidate.content_type,
            seasons=list(candidate.seasons) if candidate.seasons is not None else None,
            matched_episodes=list(candidate.matched_episodes),
        )
        results.append((relevance, fused, result))
    results.sort(key=lambda r: (-r[0], -r[1], str(r[2].canonical_id)))
    return [result for _, _, result in results]
