"""What one search does, decided before any I/O: the filters it applies, the words it searches
by, the titles it compares with, and how many titles each strategy fetches.

The strategies (docs/DISCOVERY.md):
- vector: the nearest titles to the embedded search words (the intent's fallback query);
- keyword: PostgreSQL full text over titles, keywords and descriptions, plus trigram
  similarity of the title's matching form (typos: "shawshank redemtion", "spiderman");
- graph: for "like Shrek", the nearest titles to Shrek's own vector;
- popularity: the found titles again, most popular first, as a list of its own. A query with
  nothing to search by beyond its filters ("on Netflix from the 90s", "horror movies") browses
  instead: every title passing the filters, most popular first, is the result.

What a search finds never depends on the page asked for: each strategy fetches as many titles
for page 7 as for page 1, so the pages of one query cut one ordered result, and every page
says the same total. A browse pages in PostgreSQL and so reaches every title passing the
filters; a search by words ranks the best of each strategy's list, so its deep pages are empty.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from agents.discovery.filters import VECTOR_TOP_K, VectorFetchPlan, merge_filters, plan_vector_fetch
from agents.discovery.intent_rules import only_filter_words
from agents.discovery.selectivity import CatalogStats, estimate_selectivity
from agents.discovery.words import query_words
from agents.titles.names import normalize_title
from schemas.discovery import ParsedIntent, SearchFilters, SearchRequested

# Titles the keyword strategy fetches (the vector and graph strategies: VECTOR_TOP_K each).
KEYWORD_LIMIT = 50
# References beyond the first few add little and each costs a lookup and a vector search.
MAX_REFERENCES = 3
# Trigram similarity (0-1) of a reference's and a title's matching forms for the title to count
# as the one meant: "shrek" finds "Shrek" (1.0) and "the matrix" finds "Matrix" (1.0), while a
# reference the catalog does not hold does not drag in whatever shares a few letters.
REFERENCE_MIN_SIMILARITY = 0.45
# Search words longer than this are a description, not a title: no trigram match on titles.
MAX_TITLE_WORDS = 6
# A request older than this has been given up on by the gateway that sent it (it waits
# DISCOVERY_REPLY_TIMEOUT_S): after an outage, skipping the backlog answers fresh ones sooner.
STALE_AFTER_MIN_S = 5.0


@dataclass(frozen=True, slots=True)
class BrowseWindow:
    """The titles of one page of a browse, in the order of all titles passing the filters."""

    offset: int
    limit: int


@dataclass(frozen=True)
class SearchPlan:
    filters: SearchFilters  # the request's filters merged with the query's own
    text: str  # the words to search by (keyword and vector); empty when browsing
    title_form: str  # the words in the matching form of titles, when short enough to be one
    references: tuple[str, ...]  # titles the user compares with
    vector: VectorFetchPlan
    browse: BrowseWindow | None  # set when there is nothing to search by but the filters
    # The query's words as typed, then the words left once the filters took theirs, in the
    # matching form of titles: what the typo-tolerant word search matches titles and names by
    # (agents/discovery/words.py).
    words: tuple[str, ...] = ()
    fallback_words: tuple[str, ...] = ()
    # The request's own filters, without the query's: the words as typed are matched under
    # these. "Vampire Cop" or "Bride of War" name a title before "cop" or "war" name a genre,
    # so a title matching every typed word is shown whatever filters its words would make.
    title_filters: SearchFilters = field(default_factory=SearchFilters)


def plan_search(
    request: SearchRequested, intent: ParsedIntent, stats: CatalogStats | None = None
) -> SearchPlan:
    """The plan for `request` read as `intent`; `stats` (the catalog's counts) say whether the
    filters are selective enough to apply inside the vector store."""
    text = " ".join(intent.fallback_query.split())
    references = tuple(dict.fromkeys(r for r in intent.references if r.strip()))[:MAX_REFERENCES]
    filters = merge_filters(request.filters, intent)
    # "horror movies" keeps "horror" as words, but every title the filter lets through is a
    # horror title: ranking them by those words would only cut the list short.
    browse = not references and only_filter_words(text, filters.genres, filters.platforms)
    if browse:
        text = ""
    selectivity = estimate_selectivity(stats or CatalogStats(), filters)
    return SearchPlan(
        filters=filters,
        text=text,
        title_form=normalize_title(text) if 0 < len(text.split()) <= MAX_TITLE_WORDS else "",
        references=references,
        vector=plan_vector_fetch(selectivity, VECTOR_TOP_K),
        browse=(
            BrowseWindow((request.page - 1) * request.page_size, request.page_size)
            if browse
            else None
        ),
        words=tuple(query_words(request.query)),
        title_filters=merge_filters(request.filters, ParsedIntent(confidence=1.0, source="rules")),
        fallback_words=tuple(query_words(text)),
    )


def by_words(plan: SearchPlan) -> SearchPlan:
    """A browse whose words turn out to be a title's whole name ("Horror", "She's All That":
    a genre, or only stop words, to the rules) searched by its words instead: an exact title
    is always first."""
    text = " ".join(plan.words)
    return replace(plan, browse=None, text=text, title_form=text)


def is_stale(age_s: float, reply_timeout_s: float) -> bool:
    """Whether a request this old is past anyone waiting for it."""
    return age_s > max(STALE_AFTER_MIN_S, 2 * reply_timeout_s)
