"""Search-as-you-type (`GET /api/v1/search/suggest`, docs/DISCOVERY.md): the index the
discovery agents build from the catalog and publish in Redis, and the lookup the gateway runs
over its own copy of it. Pure: the agents write the bytes, the gateway reads them.

An entry is a title or a person; its words, in a matching form (case, accents, apostrophes
and punctuation aside), are looked up as the word search looks up titles: every query word
must match a word of the entry, within the typos the engines allow (0 under 5 letters, 1 from
5, 2 from 9, a transposition one typo, numbers never), and the last word also as a prefix.
Entries whose whole text starts with the query come first (one equal to it, then the more
popular), then those holding every word without a typo (the more popular first), then those
with typos (fewer typos, then fewer words, first; 4 typos in all at most).
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
# Answers ready per prefix: a limited profile's deeper list (gateway/routes/suggest.py asks
# MAX_SUGGESTIONS * 5) fits, and the entries the whole-name stage took can be skipped.
READY_DEPTH = 100
# A start of whole names shared by more names than this has its answer ready; a smaller range
# is sorted on the spot (a few microseconds).
READY_NAMES_FROM = 256
# A start of words whose words are in more entries than this has its most popular entries
# ready; a smaller union is built on the spot.
READY_WORDS_FROM = 2000
# Checking an entry's name for a word starting with a prefix (a substring search) against a
# union of the completions' sets: an entry checked costs about as much as this many set elements
# copied (85-250 ns against 70-230 ns, measured at 100,000 titles on a loaded 2-core VM).
CHECK_COST = 1
# Typos in all the words of a suggestion at most: beyond, what was typed is not a name (and a
# query of 16 words of 9 letters would otherwise have 3**16 combinations of typos to try).
MAX_TYPOS = 4


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
    are its most popular entries). Every lookup is bounded by what it can return, not by how
    common the typed words are:

    - whole names sorted, and the answer of every start shared by more than READY_NAMES_FROM
      names ready (what search engines' completion suggesters keep per node of their trie);
      a smaller range is sorted on the spot;
    - each word's entries (sets intersected in C, the smallest first), the sorted vocabulary
      with the running count of its entries (how many entries a last word's completions reach,
      by two bisections), and the most popular entries of every start of words reaching more
      than READY_WORDS_FROM; a last word is matched as a prefix by checking the few entries the
      other words left, or by the union of its completions when that is cheaper;
    - typo candidates by length and first or second letter (rapidfuzz's OSA distance), the
      entries with typos gathered by increasing count of typos, stopping once enough are found.
    """

    def __init__(self, entries: Sequence[Entry]) -> None:
        self.entries = sorted(entries, key=lambda e: -e.popularity)
        self.forms = [suggest_form(e.text) for e in self.entries]
        self.spaced = [f" {f}" for f in self.forms]  # " " + a prefix: a word starting with it
        self.extra = [f.count(" ") for f in self.forms]  # words beyond the first
        order = sorted(range(len(self.forms)), key=self.forms.__getitem__)
        self.sorted_forms = [self.forms[i] for i in order]
        self.sorted_ids = order
        postings: dict[str, list[int]] = {}
        for i, form in enumerate(self.forms):
            for word in dict.fromkeys(form.split()):
                postings.setdefault(word, []).append(i)
        self.postings = {w: frozenset(ids) for w, ids in postings.items()}
        self.vocabulary = sorted(self.postings)
        self.reach = [0]  # reach[j]: entries of the first j words of the vocabulary, summed
        for word in self.vocabulary:
            self.reach.append(self.reach[-1] + len(self.postings[word]))
        # Typo candidates by (length, first letter) and (length, second letter): a word within
        # its typos of a typed word shares its first letter, or its second, or has the typed
        # second letter first (the two swapped); anything else is two typos in two letters.
        self.by_first: dict[tuple[int, str], list[str]] = {}
        self.by_second: dict[tuple[int, str], list[str]] = {}
        for word in self.vocabulary:
            if not is_number(word) and len(word) > 1:
                self.by_first.setdefault((len(word), word[0]), []).append(word)
                self.by_second.setdefault((len(word), word[1]), []).append(word)
        self.ready_names: dict[str, list[int]] = {}
        self._ready_names(0, len(self.sorted_forms), 0)
        self.ready_words: dict[str, list[int]] = {}
        self._ready_words("", 0, len(self.vocabulary))

    @classmethod
    def decode(cls, data: bytes) -> SuggestIndex:
        rows = json.loads(zlib.decompress(data))
        return cls([Entry(*row[:7], tuple(row[7]) if len(row) > 7 else ()) for row in rows])

    # ------------------------------------------------------------------ built once

    def _ready_names(self, lo: int, hi: int, depth: int) -> None:
        """The answers of the starts of names in sorted_forms[lo:hi] (which share their first
        `depth` letters) longer than `depth` and shared by more than READY_NAMES_FROM names."""
        forms = self.sorted_forms
        i = lo
        while i < hi and len(forms[i]) == depth:
            i += 1
        while i < hi:
            start = forms[i][: depth + 1]
            j = bisect.bisect_left(forms, start + "\uffff", i, hi)
            if j - i > READY_NAMES_FROM:
                self.ready_names[start] = self._starting_with(start, READY_DEPTH, i, j)
                self._ready_names(i, j, depth + 1)
            i = j

    def _ready_words(self, start: str, lo: int, hi: int) -> list[int]:
        """The READY_DEPTH most popular entries holding a word of vocabulary[lo:hi] (the words
        starting with `start`); kept for the starts reaching more than READY_WORDS_FROM."""
        vocabulary = self.vocabulary
        depth = len(start)
        best: list[int] = []
        i = lo
        if i < hi and vocabulary[i] == start:
            best.extend(self.postings[start])
            i += 1
        while i < hi:
            longer = vocabulary[i][: depth + 1]
            j = bisect.bisect_left(vocabulary, longer + "\uffff", i, hi)
            if self.reach[j] - self.reach[i] > READY_WORDS_FROM:
                best.extend(self._ready_words(longer, i, j))
            else:
                for word in vocabulary[i:j]:
                    best.extend(self.postings[word])
            i = j
        top = heapq.nsmallest(READY_DEPTH, set(best))
        if start and self.reach[hi] - self.reach[lo] > READY_WORDS_FROM:
            self.ready_words[start] = top
        return top

    # ------------------------------------------------------------------ lookups

    def _within_typos(self, typed: str) -> dict[str, int]:
        limit = allowed_typos(typed)
        found = {typed: 0} if typed in self.postings else {}
        if limit == 0:
            return found
        for length in range(len(typed) - limit, len(typed) + limit + 1):
            for words in (
                self.by_first.get((length, typed[0])),
                self.by_first.get((length, typed[1])),
                self.by_second.get((length, typed[1])),
            ):
                if not words:
                    continue
                for word, distance, _ in process.extract(
                    typed, words, scorer=OSA.distance, score_cutoff=limit, limit=None
                ):
                    found.setdefault(word, int(distance))
        return found

    def _starting_with(
        self, typed: str, limit: int, start: int | None = None, end: int | None = None
    ) -> list[int]:
        """Entries whose whole name starts with the text: those equal to it, then the most
        popular."""
        if start is None or end is None:
            ready = self.ready_names.get(typed)
            if ready is not None and limit <= READY_DEPTH:
                return ready[:limit]
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
        found = self._starting_with(" ".join(words), limit)
        if len(found) < limit:
            found += _Lookup(self, words).best(limit - len(found), set(found))
        return [self.entries[i] for i in found]


class _Lookup:
    """One query's words against the index: each word's entries by typos, the last word's
    completions kept as a range of the vocabulary until a set of them is cheaper than checking."""

    def __init__(self, index: SuggestIndex, words: list[str]) -> None:
        self.index = index
        self.words = words
        last = words[-1]
        self.prefix = None if is_number(last) else last
        lo = hi = 0
        if self.prefix is not None:
            lo = bisect.bisect_left(index.vocabulary, last)
            hi = bisect.bisect_left(index.vocabulary, last + "\uffff")
        self.completions = (lo, hi)
        self.completions_reach = index.reach[hi] - index.reach[lo]
        self._completed: frozenset[int] | None = None
        # levels[i][c]: the entries where word i matches with c typos (the last word's
        # completions, at 0, apart); the typos looked for only when the words without a typo
        # did not find enough.
        empty: frozenset[int] = frozenset()
        self.levels: list[list[frozenset[int]]] = [
            [
                empty
                if self.prefix is not None and n == len(words) - 1
                else index.postings.get(typed, empty),
                empty,
                empty,
            ]
            for n, typed in enumerate(words)
        ]

    def _with_typos(self) -> None:
        last = len(self.words) - 1
        for n, typed in enumerate(self.words):
            by_typos: list[list[frozenset[int]]] = [[], [], []]
            for word, typos in self.index._within_typos(typed).items():
                if typos and not (n == last and self.prefix and word.startswith(self.prefix)):
                    by_typos[typos].append(self.index.postings[word])  # (a completion is 0)
            self.levels[n][1:] = [_union(by_typos[1]), _union(by_typos[2])]

    def _completed_set(self) -> frozenset[int]:
        if self._completed is None:
            lo, hi = self.completions
            index = self.index
            self._completed = _union([index.postings[w] for w in index.vocabulary[lo:hi]])
        return self._completed

    def _matching(self, sets: list[frozenset[int]], completed: bool) -> frozenset[int]:
        """The entries in every set, and holding a completion of the last word when asked."""
        if not completed:
            return _intersection(sets)
        if not sets:
            return self._completed_set()
        found = _intersection(sets)
        if self._completed is None and len(found) * CHECK_COST < self.completions_reach:
            # A word of the name starts with the prefix: one substring search in C.
            needle, spaced = f" {self.prefix}", self.index.spaced
            return frozenset([e for e in found if needle in spaced[e]])
        return found & self._completed_set()

    def best(self, limit: int, taken: set[int]) -> list[int]:
        last = len(self.words) - 1
        completes = self.prefix is not None and self.completions[0] < self.completions[1]
        others = [lv[0] for lv in self.levels[:last]]
        # Without a typo: the other words exactly, the last by its completions (a number
        # exactly). A common start of a word has its most popular entries ready, and those the
        # other words hold too are often enough: they are the most popular of all.
        ready = self.index.ready_words.get(self.prefix or "") if completes else None
        if ready is not None and all(others):
            found = [e for e in ready if e not in taken and all(e in s for s in others)]
            if len(found) >= limit:
                return found[:limit]
        exact: frozenset[int] = frozenset()
        if all(others):
            if completes:
                exact = self._matching(others, completed=True) - taken
            elif self.levels[last][0]:
                exact = _intersection([*others, self.levels[last][0]]) - taken
        found = heapq.nsmallest(limit, exact)
        if len(found) == limit:
            return found
        # With typos: the combinations of each word's typos by increasing total (at most
        # MAX_TYPOS in all), each an intersection of sets (the smallest first) built word by word
        # and given up once empty; within a total, fewer words first.
        self._with_typos()
        seen = taken | exact
        extra = self.index.extra
        for total in range(1, MAX_TYPOS + 1):
            at_total: set[int] = set()
            self._gather(0, None, total, completes, at_total)
            at_total -= seen
            found += heapq.nsmallest(limit - len(found), at_total, key=lambda e: (extra[e], e))
            if len(found) == limit:
                break
            seen |= at_total
        return found

    def _gather(
        self, n: int, held: frozenset[int] | None, left: int, completes: bool, into: set[int]
    ) -> None:
        """Into `into`, the entries matching words n.. with exactly `left` typos among them
        and holding `held` (the entries words ..n-1 matched; None: no word yet)."""
        last = len(self.words) - 1
        for typos in range(min(left, 2) + 1):
            level = self.levels[n][typos]
            if n == last:
                if typos != left:
                    continue
                if typos == 0 and completes:
                    into |= self._matching([] if held is None else [held], completed=True)
                elif level:
                    into |= level if held is None else held & level
            elif level:
                narrowed = level if held is None else held & level
                if narrowed:
                    self._gather(n + 1, narrowed, left - typos, completes, into)


def _union(sets: list[frozenset[int]]) -> frozenset[int]:
    if not sets:
        return frozenset()
    return sets[0] if len(sets) == 1 else frozenset().union(*sets)


def _intersection(sets: list[frozenset[int]]) -> frozenset[int]:
    if not sets:
        return frozenset()
    ordered = sorted(sets, key=len)
    return ordered[0].intersection(*ordered[1:]) if len(ordered) > 1 else ordered[0]
