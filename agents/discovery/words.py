"""Typo tolerance and the ranking rules of word matches, the way search engines define them
(Meilisearch, Typesense, Elasticsearch's `fuzziness: AUTO`; docs/DISCOVERY.md). Pure.

- A query word may differ from a catalog word by 0 typos under 5 letters, 1 from 5, 2 from 9.
  A typo is a letter inserted, deleted or replaced, or two adjacent letters swapped (optimal
  string alignment, the restricted Damerau-Levenshtein distance: "teh" is one typo of "the").
- A word with a digit is a number and never fuzzed: "Part 2" is not "Part 3".
- The last word of the query also matches as a prefix ("star wa" finds "star wars").
- A title matches when every query word matches one of its words. Matches are ranked by, in
  order: the whole title equal to the query (in the matching form of titles); fewer typos; the
  title's numbers all asked for; the words near each other and in the query's order; whole
  words before prefix completions; fewer words beyond those asked; then popularity.

Catalog-side, the candidates come from the "symmetric delete" index of migration 0033: a word
within k typos of a catalog word shares a variant with it, each with at most k letters deleted.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import combinations, pairwise

from rapidfuzz.distance import OSA

from agents.titles.names import normalize_title
from agreements.typo_rules import (
    allowed_typos,
    is_number,
    matching_form,
)

# Completions of the last word looked up, shortest first: "gir" -> girl, girls, giraffe...
PREFIX_COMPLETIONS = 50


def deletions(word: str, up_to: int) -> set[str]:
    """The word with up to `up_to` letters deleted, itself included."""
    found = {word}
    for k in range(1, min(up_to, len(word) - 1) + 1):
        for positions in combinations(range(len(word)), k):
            found.add("".join(ch for i, ch in enumerate(word) if i not in positions))
    return found


def typos(query_word: str, word: str) -> int | None:
    """The typos between a query word and a catalog word, None when more than allowed."""
    limit = allowed_typos(query_word)
    if limit == 0:
        return 0 if query_word == word else None
    distance = OSA.distance(query_word, word, score_cutoff=limit)
    return distance if distance <= limit else None


def query_words(text: str) -> list[str]:
    """The words of a query in the matching form of titles ("The Godfather: Part II" ->
    godfather part 2)."""
    return normalize_title(text).split() if text.strip() else []


def name_form(name: str) -> str:
    """The matching form of a person's name, as mgw_name_form() of migration 0033 computes it."""
    return matching_form(name)


@dataclass(frozen=True)
class WordCandidates:
    """The catalog words each query word may be, with their typos; the last word's prefix
    completions apart (they count as no typo, but rank after whole words)."""

    words: tuple[str, ...]
    matches: tuple[Mapping[str, int], ...]
    completions: frozenset[str] = frozenset()

    def searchable(self) -> list[int]:
        """The query words a lookup requires, all of two letters or more (a single letter is
        checked on the title itself); none when one of them has no candidate, as no title can
        then hold every word."""
        required = [i for i, w in enumerate(self.words) if len(w) > 1]
        return required if all(self.matches[i] for i in required) else []


def variants_to_look_up(words: Sequence[str]) -> list[str]:
    """Every variant of the query words the symmetric delete index is asked for."""
    return sorted({v for w in words if len(w) > 1 for v in deletions(w, allowed_typos(w))})


def candidates(
    words: Sequence[str],
    found: Iterable[tuple[str, str]],
    completions: Iterable[str] = (),
) -> WordCandidates:
    """From the (variant, word) pairs the index returned, each query word's candidates within
    its typos; `completions` are the vocabulary's words starting with the last query word."""
    by_variant: dict[str, set[str]] = {}
    for variant, word in found:
        by_variant.setdefault(variant, set()).add(word)
    matches: list[dict[str, int]] = []
    for w in words:
        own: dict[str, int] = {}
        if len(w) > 1:
            for variant in deletions(w, allowed_typos(w)):
                for word in by_variant.get(variant, ()):
                    n = typos(w, word)
                    if n is not None and n < own.get(word, n + 1):
                        own[word] = n
        matches.append(own)
    extra: set[str] = set()
    if words and not is_number(words[-1]):
        for word in completions:
            if word.startswith(words[-1]) and word not in matches[-1]:
                matches[-1][word] = 0
                extra.add(word)
    return WordCandidates(tuple(words), tuple(matches), frozenset(extra))


@dataclass(frozen=True, order=True)
class MatchRank:
    """How well a title's words match the query; smaller is better (the ranking rules in
    order)."""

    not_exact: bool
    typos: int
    numbers_differ: bool
    proximity: int
    completions: int
    extra_words: int


def _numbers(words: Iterable[str]) -> set[str]:
    return {w for w in words if is_number(w)}


def match_rank(query: WordCandidates, title_form: str) -> MatchRank | None:
    """The rank of a title (in its matching form) for the query, None when a query word finds
    no word of the title."""
    title = title_form.split()
    if not query.words:
        return None
    if not query.searchable() and any(len(w) > 1 for w in query.words):
        return None
    total = 0
    completed = 0
    positions: list[int] = []
    for i, w in enumerate(query.words):
        best: tuple[int, int] | None = None  # (typos, position)
        for j, word in enumerate(title):
            n = 0 if word == w else query.matches[i].get(word) if len(w) > 1 else None
            if n is not None and (best is None or n < best[0]):
                best = (n, j)
        if best is None:
            return None
        total += best[0]
        positions.append(best[1])
        completed += title[best[1]] in query.completions and title[best[1]] != w
    if not positions:
        return None
    # Proximity: the gaps between consecutive query words in the title, and each pair out of
    # the query's order.
    proximity = sum(abs(b - a) - 1 if b > a else abs(b - a) + 1 for a, b in pairwise(positions))
    return MatchRank(
        not_exact=title_form != " ".join(query.words),
        typos=total,
        numbers_differ=_numbers(title) != _numbers(query.words),
        proximity=proximity,
        completions=completed,
        extra_words=max(0, len(title) - len(positions)),
    )


def numbers_to_keep(typed: Sequence[str], searched: Sequence[str]) -> set[str]:
    """The numbers of the query as typed that a title must hold when it is searched by other
    words (those the filters left): every number but a year the filters took ("the matrix
    1999"), which is a release year, not part of a title."""
    return {
        w
        for w in typed
        if is_number(w) and w not in searched and not (w.isdigit() and 1800 <= int(w) <= 2100)
    }


def rank_titles(
    query: WordCandidates,
    rows: Iterable[tuple[object, str, float]],
    numbers: Iterable[str] = (),
) -> list[tuple[object, MatchRank]]:
    """The titles (id, matching form, popularity) that match and hold `numbers`, best first by
    the ranking rules (then the more popular, then by id, so equal titles keep one order)."""
    ranked = []
    wanted = set(numbers)
    for cid, form, popularity in rows:
        rank = match_rank(query, form) if wanted <= set(form.split()) else None
        if rank is not None:
            ranked.append((rank, -popularity, str(cid), cid))
    ranked.sort(key=lambda item: item[:3])
    return [(cid, rank) for rank, _, _, cid in ranked]


_CREDIT_REASONS = {
    "director": "directed by",
    "creator": "created by",
    "writer": "written by",
    "actor": "with",
    "cast": "with",
}


def credit_reason(role: str, name: str) -> str:
    """The match reason of a title found by a credit: "directed by Steven Spielberg"."""
    lead = _CREDIT_REASONS.get(role.casefold())
    return f"{lead} {name}" if lead else f"{role}: {name}"


def rank_people(
    query: WordCandidates, credits: Iterable[tuple[object, str, str, str, float]]
) -> list[tuple[object, str, str]]:
    """Titles found by their credits (id, name, role, name form, popularity), each once with its
    best-matching credit: the names closest to the query first (the ranking rules), then
    directors and creators before cast, then the more popular titles."""
    best: dict[object, tuple[tuple[MatchRank, int, float, str], str, str]] = {}
    for cid, name, role, form, popularity in credits:
        rank = match_rank(query, form)
        if rank is None:
            continue
        key = (rank, 0 if role.casefold() in ("director", "creator") else 1, -popularity, str(cid))
        if cid not in best or key < best[cid][0]:
            best[cid] = (key, role, name)
    ordered = sorted(best.items(), key=lambda item: item[1][0])
    return [(cid, role, name) for cid, (_, role, name) in ordered]


# Words before a name that say which credits the user means: "movies by X", "directed by X",
# "with X", "starring X". None of them: any credit.
_DIRECTING_WORDS = frozenset({"by", "directed", "director", "directors"})
_CAST_WORDS = frozenset({"with", "starring", "featuring", "actor", "actress", "cast"})
DIRECTING_ROLES = ("director", "creator")
CAST_ROLES = ("actor", "cast")


def credit_roles(words: Sequence[str]) -> tuple[str, ...] | None:
    """The credit roles the query's words ask for, None for any."""
    typed = set(words)
    if typed & _DIRECTING_WORDS:
        return DIRECTING_ROLES
    if typed & _CAST_WORDS:
        return CAST_ROLES
    return None
