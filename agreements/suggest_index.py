"""Search-as-you-type (`GET /api/v1/search/suggest`, docs/DISCOVERY.md): the index the
discovery agents build from the catalog and publish in Redis, and the lookup the gateway runs
over its own copy of it. Pure: the agents write the bytes, the gateway reads them.

An entry is a title or a person; its words, in a matching form (case, accents, apostrophes
and punctuation aside), are looked up as the word search looks up titles: every query word
must match a word of the entry, within the typos the engines allow (0 under 5 letters, 1 from
5, 2 from 9, a transposition one typo, numbers never), and the last word also as a prefix.
Entries whose whole text starts with the query come first (one equal to it, then the more
popular), then those holding every word without a typo (the more popular first), then those
with typos (fewer typos, then fewer words, first).
"""

from __future__ import annotations

import bisect
import heapq
import json
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from rapidfuzz import process
from rapidfuzz.distance import OSA

from agreements.typo_rules import allowed_typos, is_number, matching_form

# 2: titles carry their maturity rating and genres (parental controls filter suggestions).
INDEX_VERSION = 2
MAX_SUGGESTIONS = 10
# Completions of the last word considered, shortest first ("s" alone has thousands).
MAX_COMPLETIONS = 200


def index_key(prefix: str) -> str:
    return f"{prefix}:discovery:suggest:index:v{INDEX_VERSION}"


def index_version_key(prefix: str) -> str:
    return f"{prefix}:discovery:suggest:built:v{INDEX_VERSION}"


def suggest_form(text: str) -> str:
    """The matching form of a title or a name for suggestions: 'Schindler's List' ->
    'schindlers list'."""
    return matching_form(text)


@dataclass(frozen=True, slots=True)
class Entry:
    kind: str  # "title" or "person"
    text: str
    popularity: float
    canonical_id: str | None = None  # a title's
    release_year: int | None = None  # a title's
    titles: int | None = None  # a person's credited titles
    # A title's maturity rating and genres: suggestions to a limited profile are filtered by
    # them (agreements/parental_controls.py); an index without them shows such a profile none.
    maturity_rating: str | None = None
    genres: tuple[str, ...] = ()


def encode(entries: Iterable[Entry]) -> bytes:
    rows = [
        [
            e.kind,
            e.text,
            round(e.popularity, 3),
            e.canonical_id,
            e.release_year,
            e.titles,
            e.maturity_rating,
            list(e.genres),
        ]
        for e in entries
    ]
    return zlib.compress(json.dumps(rows, separators=(",", ":")).encode(), 6)


class SuggestIndex:
    """The entries numbered by popularity (0 the most popular, so the smallest numbers of a set
    are its most popular entries), their forms sorted (prefixes of a whole name by bisection),
    each word's entries, the sorted vocabulary (a last word's completions by bisection) and the
    vocabulary by word length (typo candidates)."""

    def __init__(self, entries: Sequence[Entry]) -> None:
        self.entries = sorted(entries, key=lambda e: -e.popularity)
        self.forms = [suggest_form(e.text) for e in self.entries]
        order = sorted(range(len(self.forms)), key=self.forms.__getitem__)
        self.sorted_forms = [self.forms[i] for i in order]
        self.sorted_ids = order
        postings: dict[str, list[int]] = {}
        for i, form in enumerate(self.forms):
            for word in dict.fromkeys(form.split()):
                postings.setdefault(word, []).append(i)
        self.postings = {w: frozenset(ids) for w, ids in postings.items()}
        self.vocabulary = sorted(self.postings)
        # Typo candidates by (length, first letter) and (length, second letter): a word within
        # its typos of a typed word shares its first letter, or its second, or has the typed
        # second letter first (the two swapped); anything else is two typos in two letters.
        self.by_first: dict[tuple[int, str], list[str]] = {}
        self.by_second: dict[tuple[int, str], list[str]] = {}
        for word in self.vocabulary:
            if not is_number(word) and len(word) > 1:
                self.by_first.setdefault((len(word), word[0]), []).append(word)
                self.by_second.setdefault((len(word), word[1]), []).append(word)
        # The most popular entries of every start of one to three letters, ready.
        self.short_starts: dict[str, list[int]] = {}
        for form in {f[:n] for f in self.forms for n in (1, 2, 3) if len(f) >= n}:
            self.short_starts[form] = self._starting_with(form, MAX_SUGGESTIONS)

    @classmethod
    def decode(cls, data: bytes) -> SuggestIndex:
        rows = json.loads(zlib.decompress(data))
        return cls([Entry(*row[:7], tuple(row[7]) if len(row) > 7 else ()) for row in rows])

    def _within_typos(self, typed: str) -> dict[str, int]:
        limit = allowed_typos(typed)
        found = {typed: 0} if typed in self.postings else {}
        if limit == 0:
            return found
        for length in range(len(typed) - limit, len(typed) + limit + 1):
            words = {
                *self.by_first.get((length, typed[0]), ()),
                *self.by_first.get((length, typed[1]), ()),
                *self.by_second.get((length, typed[1]), ()),
            }
            if not words:
                continue
            for word, distance, _ in process.extract(
                typed, list(words), scorer=OSA.distance, score_cutoff=limit, limit=None
            ):
                found.setdefault(word, int(distance))
        return found

    def _completions(self, typed: str) -> list[str]:
        start = bisect.bisect_left(self.vocabulary, typed)
        end = bisect.bisect_left(self.vocabulary, typed + "\uffff")
        words = self.vocabulary[start:end]
        return sorted(words, key=len)[:MAX_COMPLETIONS] if len(words) > MAX_COMPLETIONS else words

    def _starting_with(self, typed: str, limit: int) -> list[int]:
        """Entries whose whole name starts with the text: those equal to it, then the most
        popular."""
        start = bisect.bisect_left(self.sorted_forms, typed)
        end = bisect.bisect_left(self.sorted_forms, typed + "\uffff")
        exact = start
        while exact < end and self.sorted_forms[exact] == typed:
            exact += 1
        equal = sorted(self.sorted_ids[start:exact])
        rest = heapq.nsmallest(limit, self.sorted_ids[exact:end])
        return (equal + rest)[:limit]

    def suggest(self, query: str, limit: int = MAX_SUGGESTIONS) -> list[Entry]:
        """Entries starting with the text; then entries holding every word (the last as a
        prefix too), without a typo, the most popular first; then with typos, fewest first."""
        words = suggest_form(query).split()
        if not words:
            return []
        typed = " ".join(words)
        ready = self.short_starts.get(typed) if limit == MAX_SUGGESTIONS else None
        found = list(ready) if ready is not None else self._starting_with(typed, limit)
        if len(found) < limit:
            found += self._by_words(words, limit - len(found), set(found))
        return [self.entries[i] for i in found]

    def _by_words(self, words: list[str], limit: int, taken: set[int]) -> list[int]:
        per_word: list[dict[str, int]] = []
        for n, typed in enumerate(words):
            candidates = self._within_typos(typed)
            if n == len(words) - 1 and not is_number(typed):
                for word in self._completions(typed):
                    candidates.setdefault(word, 0)
            if not candidates:
                return []
            per_word.append(candidates)
        # Sets of entries, unions and intersections in C: the rarest word first. levels[i][c]:
        # the entries where word i matches with c typos at best.
        levels: list[list[frozenset[int]]] = []
        for m in per_word:
            by_typos = [
                frozenset().union(*(self.postings[w] for w, c in m.items() if c == n))
                for n in range(3)
            ]
            levels.append(
                [by_typos[0], by_typos[1] - by_typos[0], by_typos[2] - by_typos[1] - by_typos[0]]
            )
        exact_all = frozenset.intersection(*sorted((lv[0] for lv in levels), key=len)) - taken
        found = heapq.nsmallest(limit, exact_all)
        if len(found) == limit:
            return found
        reachable = [lv[0] | lv[1] | lv[2] for lv in levels]
        typo_all = frozenset.intersection(*sorted(reachable, key=len)) - taken - exact_all

        def rank(entry: int) -> tuple[int, int, int]:
            typos = sum(0 if entry in lv[0] else 1 if entry in lv[1] else 2 for lv in levels)
            return typos, self.forms[entry].count(" "), entry

        return found + heapq.nsmallest(limit - len(found), typo_all, key=rank)
