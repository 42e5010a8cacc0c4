"""Search-as-you-type (`GET /api/v1/search/suggest`, docs/DISCOVERY.md): the index the
discovery agents build from the catalog and publish in Redis, and the lookup the gateway runs
over its own copy of it. Pure: the agents write the bytes, the gateway reads them.

An entry is a title or a person; its words, in a matching form (case, accents, apostrophes
and punctuation aside), are looked up as the word search looks up titles: every query word
must match a word of the entry, within the typos the engines allow (0 under 5 letters, 1 from
5, 2 from 9, a transposition one typo, numbers never), and the last word also as a prefix.
Entries whose text starts with the query come first, then those with fewer typos, then those
with fewer words beyond the query's, then the more popular.
"""

from __future__ import annotations

import bisect
import json
import re
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from rapidfuzz import process
from rapidfuzz.distance import OSA

from contracts.text import fold

INDEX_VERSION = 1
MAX_SUGGESTIONS = 10
# Completions of the last word considered, shortest first ("s" alone has thousands).
MAX_COMPLETIONS = 200
ONE_TYPO_FROM = 5
TWO_TYPOS_FROM = 9

_APOSTROPHES = re.compile(r"['\u2018\u2019`\u00b4]")
_NON_ALNUM = re.compile(r"[^0-9a-z]+")


def index_key(prefix: str) -> str:
    return f"{prefix}:discovery:suggest:index:v{INDEX_VERSION}"


def index_version_key(prefix: str) -> str:
    return f"{prefix}:discovery:suggest:built:v{INDEX_VERSION}"


def suggest_form(text: str) -> str:
    """The matching form of a title or a name for suggestions: 'Schindler's List' ->
    'schindlers list'."""
    return " ".join(_NON_ALNUM.sub(" ", _APOSTROPHES.sub("", fold(text))).split())


def is_number(word: str) -> bool:
    return any(ch.isdigit() for ch in word)


def allowed_typos(word: str) -> int:
    """Typos a typed word may carry (the rule of agents/discovery/words.py)."""
    if is_number(word) or len(word) < ONE_TYPO_FROM:
        return 0
    return 1 if len(word) < TWO_TYPOS_FROM else 2


@dataclass(frozen=True, slots=True)
class Entry:
    kind: str  # "title" or "person"
    text: str
    popularity: float
    canonical_id: str | None = None  # a title's
    release_year: int | None = None  # a title's
    titles: int | None = None  # a person's credited titles


def encode(entries: Iterable[Entry]) -> bytes:
    rows = [
        [e.kind, e.text, round(e.popularity, 3), e.canonical_id, e.release_year, e.titles]
        for e in entries
    ]
    return zlib.compress(json.dumps(rows, separators=(",", ":")).encode(), 6)


class SuggestIndex:
    """The entries, their words' postings, the sorted vocabulary (prefixes by bisection) and the
    vocabulary by word length (typo candidates)."""

    def __init__(self, entries: Sequence[Entry]) -> None:
        self.entries = list(entries)
        self.forms = [suggest_form(e.text) for e in self.entries]
        postings: dict[str, list[int]] = {}
        for i, form in enumerate(self.forms):
            for word in dict.fromkeys(form.split()):
                postings.setdefault(word, []).append(i)
        self.postings = {w: frozenset(ids) for w, ids in postings.items()}
        self.vocabulary = sorted(self.postings)
        self.by_length: dict[int, list[str]] = {}
        for word in self.vocabulary:
            if not is_number(word):
                self.by_length.setdefault(len(word), []).append(word)

    @classmethod
    def decode(cls, data: bytes) -> SuggestIndex:
        rows = json.loads(zlib.decompress(data))
        return cls([Entry(*row) for row in rows])

    def _within_typos(self, typed: str) -> dict[str, int]:
        limit = allowed_typos(typed)
        if limit == 0:
            return {typed: 0} if typed in self.postings else {}
        found: dict[str, int] = {}
        for length in range(len(typed) - limit, len(typed) + limit + 1):
            words = self.by_length.get(length)
            if not words:
                continue
            for word, distance, _ in process.extract(
                typed, words, scorer=OSA.distance, score_cutoff=limit, limit=None
            ):
                found[word] = int(distance)
        return found

    def _completions(self, typed: str) -> list[str]:
        start = bisect.bisect_left(self.vocabulary, typed)
        end = bisect.bisect_left(self.vocabulary, typed + "\uffff")
        words = self.vocabulary[start:end]
        return sorted(words, key=len)[:MAX_COMPLETIONS] if len(words) > MAX_COMPLETIONS else words

    def suggest(self, query: str, limit: int = MAX_SUGGESTIONS) -> list[Entry]:
        words = suggest_form(query).split()
        if not words:
            return []
        typos: dict[int, int] = {}  # entry -> the fewest typos of each word, summed
        matched: set[int] | None = None
        for n, typed in enumerate(words):
            candidates = self._within_typos(typed)
            if n == len(words) - 1 and not is_number(typed):
                for word in self._completions(typed):
                    candidates.setdefault(word, 0)
            best: dict[int, int] = {}
            for word, count in candidates.items():
                for entry in self.postings[word]:
                    if matched is None or entry in matched:
                        if count < best.get(entry, count + 1):
                            best[entry] = count
            matched = set(best)
            for entry, count in best.items():
                typos[entry] = typos.get(entry, 0) + count
            if not matched:
                return []
        typed_form = " ".join(words)
        ranked = sorted(
            matched or (),
            key=lambda i: (
                not self.forms[i].startswith(typed_form),
                typos[i],
                self.forms[i].count(" ") + 1 - len(words),
                -self.entries[i].popularity,
                self.forms[i],
            ),
        )
        return [self.entries[i] for i in ranked[:limit]]
