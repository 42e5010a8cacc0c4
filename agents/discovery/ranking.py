"""From what the strategies found to the SearchResponse: filter, rank by popularity, fuse, count
facets, cut the page.

Every list is filtered before fusion (a rank is a position among titles that may be shown), by
the one filter test of agents.discovery.filters over each title's payload, whichever strategy
found it and whether or not the vector store already filtered: a filter never lets a
non-matching title through. Titles the user compared with ("like Shrek") are left out: they
asked for others like it.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from agents.discovery.facets import facet_counts
from agents.discovery.filters import matches
from agents.discovery.fusion import Hit, SearchHit, fuse
from agents.discovery.plan import SearchPlan
from agents.discovery.series import (
    collapse_hits,
    collapse_ids,
    matched_episodes,
    season_availability,
    series_of,
)
from schemas.discovery import (
    STRATEGIES,
    Facets,
    MatchedEpisode,
    ParsedIntent,
    SearchRequested,
    SearchResponse,
    Strategy,
)


@dataclass(frozen=True)
class BrowsePage:
    """One page of a browse, and what PostgreSQL counted of all the titles passing the filters
    (agents/discovery/store.py)."""

    ids: Sequence[uuid.UUID]  # this page's titles, most popular first
    offset: int  # titles before this page
    total: int
    facets: Facets
    # Seconds until an offer of one of the titles passing the filters starts or ends; None:
    # none will.
    offers_change_in_s: float | None = None
    # False: the facets and offer changes were not counted in time; the page and total stand,
    # the facets are empty, and the answer is not kept.
    counted: bool = True


@dataclass(frozen=True)
class Retrieved:
    """What the strategies returned, before any filtering."""

    # Each strategy that ran without error, its titles best first (possibly none).
    rankings: Mapping[Strategy, Sequence[Hit]] = field(default_factory=dict)
    # Strategies that failed or ran out of time.
    failed: Sequence[Strategy] = ()
    # The payload of every title found: the read model's shape (with availability offers), or
    # the vector store's flat one when PostgreSQL could not be read (`degraded`).
    payloads: Mapping[uuid.UUID, Mapping[str, Any]] = field(default_factory=dict)
    # The titles the query's references resolved to, with the reference as typed; their
    # payloads are in `payloads` too (their genres are a soft preference).
    references: Mapping[uuid.UUID, str] = field(default_factory=dict)
    degraded: bool = False
    # A browse's page: then `rankings` holds only its titles, as "popularity".
    browse: BrowsePage | None = None
    # The titles the word search matched, in the order of the ranking rules (titles whose own
    # words match, then titles whose credits do): they lead the result in this order, before
    # whatever the fused strategies rank (docs/DISCOVERY.md, "Ranking rules").
    word_order: Sequence[uuid.UUID] = ()
    # Titles matching every word as typed: shown under the request's own filters only (the
    # query's filters came from words that named the title).
    typed_titles: Sequence[uuid.UUID] = ()
    # The words named people: the result is their titles and nothing else (a person filter).
    people_only: bool = False

    @property
    def partial(self) -> bool:
        """Whether something is missing from this answer, which is then given but not kept."""
        return self.degraded or (self.browse is not None and not self.browse.counted)


@dataclass(frozen=True)
class Assembled:
    response: SearchResponse
    # The titles whose change can change this page of the result: for a search by words every
    # title any strategy found (whether it passed the filters or not); for a browse, those of
    # the page (the titles passing its filters can be the whole catalog).
    depends_on: Sequence[uuid.UUID]
    # Seconds until an offer of one of those titles (of a browse: of any title passing its
    # filters) starts or ends, which changes where it is shown; None: none will.
    offers_change_in_s: float | None


# A vector list keeps the titles scoring at least this share of its best cosine similarity.
# Nearest-neighbour search always returns top_k titles, however unrelated the last ones are;
# unrelated titles would swell the result count and facets, and the popularity list would lift
# the popular ones among them above titles that match.
VECTOR_RELATIVE_MIN = 0.6


def close_enough(scores: Sequence[float], ratio: float = VECTOR_RELATIVE_MIN) -> int:
    """How many of these scores (best first) are close enough to the best to keep."""
    if not scores or scores[0] <= 0:
        return len(scores)
    floor = scores[0] * ratio
    return next((i for i, score in enumerate(scores) if score < floor), len(scores))


def _number(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return 0.0
    return float(value)


def popularity_ranking(
    ids: Sequence[uuid.UUID], payloads: Mapping[uuid.UUID, Mapping[str, Any]]
) -> list[Hit]:
    """The titles with a popularity above zero, most popular first (then by number of ratings,
    then by id, so equal titles keep one order). A title nobody measured is not 'popular'."""
    scored = [
        (_number(payloads[cid].get("popularity_score")), _number(payloads[cid].get("rating_count")))
        for cid in ids
    ]
    ranked = sorted(
        ((pop, count, cid) for (pop, count), cid in zip(scored, ids, strict=True) if pop > 0),
        key=lambda item: (-item[0], -item[1], str(item[2])),
    )
    return [Hit(cid) for _, _, cid in ranked]


def shown(
    retrieved: Retrieved, plan: SearchPlan
) -> tuple[dict[Strategy, list[Hit]], list[uuid.UUID]]:
    """Each list without the titles that may not be shown, and every title left, in the order
    first found."""
    allowed: dict[uuid.UUID, bool] = {}
    typed = set(retrieved.typed_titles)
    only = set(retrieved.word_order) if retrieved.people_only else None

    def ok(cid: uuid.UUID) -> bool:
        if cid not in allowed:
            payload = retrieved.payloads.get(cid)
            allowed[cid] = (
                payload is not None
                and cid not in retrieved.references
                and (only is None or cid in only)
                and matches(payload, plan.title_filters if cid in typed else plan.filters)
            )
        return allowed[cid]

    lists = {
        strategy: [hit for hit in hits if ok(hit.canonical_id)]
        for strategy, hits in retrieved.rankings.items()
    }
    found = [cid for cid, passed in allowed.items() if passed]
    return lists, found


def collapse_episodes(
    retrieved: Retrieved,
) -> tuple[Retrieved, dict[uuid.UUID, list[MatchedEpisode]]]:
    """What the strategies found with every episode replaced by its series (its reason naming
    the episode), each series once at its best rank, and per series the episodes found
    (agents/discovery/series.py). Page-independent, so the pages of one query still cut one
    result, and the total and facets count a series once."""
    payloads = retrieved.payloads
    parents = {cid: sid for cid, p in payloads.items() if (sid := series_of(p)) is not None}
    if not parents:
        return retrieved, {}
    rankings = {
        strategy: collapse_hits(hits, parents, payloads)
        for strategy, hits in retrieved.rankings.items()
    }
    # An episode whose series was not read cannot be shown; word_order keeps only what can.
    shown_parents = {cid: sid for cid, sid in parents.items() if sid in payloads}
    collapsed = replace(
        retrieved,
        rankings=rankings,
        word_order=collapse_ids(
            (c for c in retrieved.word_order if c not in parents or c in shown_parents),
            shown_parents,
        ),
        typed_titles=collapse_ids(
            (c for c in retrieved.typed_titles if c not in parents or c in shown_parents),
            shown_parents,
        ),
    )
    return collapsed, matched_episodes(retrieved.rankings, shown_parents, payloads)


def _earliest(seconds: Iterable[object]) -> float | None:
    found = [float(s) for s in seconds if isinstance(s, int | float) and not isinstance(s, bool)]
    return min(found, default=None)


def _seasons(payload: Mapping[str, Any], region: str | None) -> tuple[Any, ...] | None:
    seasons = season_availability(payload, region)
    return tuple(seasons) if seasons is not None else None


def assemble(
    request: SearchRequested,
    intent: ParsedIntent,
    plan: SearchPlan,
    retrieved: Retrieved,
    search_time_ms: float,
) -> Assembled:
    retrieved, episodes = collapse_episodes(retrieved)
    lists, found = shown(retrieved, plan)
    failed = set(retrieved.failed)
    browse = retrieved.browse
    if "popularity" not in lists and "popularity" not in failed:
        if retrieved.degraded:
            failed.add("popularity")  # the vector store's payloads carry no popularity
        else:
            lists["popularity"] = popularity_ranking(found, retrieved.payloads)
    region = plan.filters.region
    candidates = {
        cid: replace(
            SearchHit.from_payload(cid, retrieved.payloads[cid], region),
            seasons=_seasons(retrieved.payloads[cid], region),
            matched_episodes=tuple(episodes.get(cid, ())),
        )
        for cid in found
    }
    reference_genres = {
        name: [str(g) for g in retrieved.payloads[cid].get("genres") or ()]
        for cid, name in retrieved.references.items()
        if cid in retrieved.payloads
    }
    changes = _earliest(p.get("offers_change_in_s") for p in retrieved.payloads.values())
    if browse is not None:
        # The page is already cut, in the order of the whole browse: no boost may reorder it,
        # and its ranks go on from the pages before it.
        page = fuse(lists, candidates, first_rank=browse.offset + 1)
        total, facets = browse.total, browse.facets
        changes = _earliest((changes, browse.offers_change_in_s))
    else:
        results = fuse(
            lists,
            candidates,
            intent,
            reference_genres=reference_genres,
            title_form=plan.title_form,
        )
        # Stable: titles the word search did not match keep the fused order after them.
        lead = {cid: i for i, cid in enumerate(retrieved.word_order)}
        results.sort(key=lambda r: lead.get(r.canonical_id, len(lead)))
        start = (request.page - 1) * request.page_size
        page, total = results[start : start + request.page_size], len(results)
        facets = facet_counts(results)
    response = SearchResponse(
        results=page,
        total_count=total,
        page=request.page,
        page_size=request.page_size,
        query_parsed=intent,
        search_time_ms=round(max(0.0, search_time_ms), 3),
        facets=facets,
        strategies_used=[s for s in STRATEGIES if s in lists],
        strategies_failed=[s for s in STRATEGIES if s in failed],
    )
    return Assembled(response, list(retrieved.payloads), changes)
