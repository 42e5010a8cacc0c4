"""When two listings' titles may name one film: how their normalized titles relate, and what the
rest of the listings (runtime, credits, original title) says about it. Pure.

A wrong merge shows one film's availability under another's name, while a missed merge only
leaves a duplicate that a later id or an operator can fold: so a title match needs titles that
differ only in ways a re-listing of the same film differs, and no evidence against it.

Relations of two normalized titles (agents/titles/names.py has already folded case, accents,
punctuation, a moved or dropped leading article, "&"/"and", a year suffix and roman numerals):
- same:      identical.
- joined:    the same letters, split differently ("spider man" / "spiderman").
- typo:      the same words but one, which has two adjacent letters swapped ("tasmania" /
             "tsamania"), in a word of five letters or more.
- reordered: the same words in another order ("man bites dog" / "dog bites man"); real
             re-listings rarely reorder words, different films sometimes do, so this one
             needs evidence for it, not just no evidence against it.
- different: anything else: a missing or extra word ("brother" / "the brothers",
             "i know what you did last summer" / "i still know ..."), a different word however
             close ("wood" / "woo", "story" / "glory"), different numbers ("vol 1" / "vol 2").
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from enum import IntEnum

from agents.titles.names import ROMAN_NUMERALS, fold

# Runtimes of one film agree within 10 %, at least 5 minutes (cuts, credits, PAL speed-up);
# remakes and different films rarely do (Dune: 137 vs 155).
RUNTIME_TOLERANCE = 0.10
RUNTIME_TOLERANCE_MIN = 5
# Two casts say "different films" only when both name at least this many people: one name
# each is often a director on one side and a lead actor on the other.
CREDITS_MIN_TO_CONTRADICT = 2
TYPO_MIN_WORD = 5

_NAME_WORDS = re.compile(r"[^\W_]+")


class Relation(IntEnum):
    """Ordered from closest to farthest: a lower value wins when several titles qualify."""

    same = 0
    joined = 1
    typo = 2
    reordered = 3
    different = 4


def title_numbers(normalized: str) -> tuple[int, ...]:
    """Sequel markers: 'kill bill vol 2' -> (2,); 'rocky ii' -> (2,) (normally already '2')."""
    out: list[int] = []
    for word in normalized.split():
        word = ROMAN_NUMERALS.get(word, word)
        if word.isdigit():
            out.append(int(word))
    return tuple(sorted(out))


def is_transposition(a: str, b: str) -> bool:
    """Two adjacent letters swapped, in a word long enough that the swap is not a new word."""
    if len(a) != len(b) or len(a) < TYPO_MIN_WORD or a.isdigit() or b.isdigit():
        return False
    diffs = [i for i, (x, y) in enumerate(zip(a, b, strict=True)) if x != y]
    if len(diffs) != 2 or diffs[1] != diffs[0] + 1:
        return False
    i = diffs[0]
    return a[i] == b[i + 1] and a[i + 1] == b[i]


def relation(a: str, b: str) -> Relation:
    """How two normalized titles relate (see the module doc)."""
    if a == b:
        return Relation.same
    if title_numbers(a) != title_numbers(b):
        return Relation.different
    words_a, words_b = a.split(), b.split()
    if "".join(words_a) == "".join(words_b):
        return Relation.joined
    if len(words_a) == len(words_b):
        diffs = [(x, y) for x, y in zip(words_a, words_b, strict=True) if x != y]
        if len(diffs) == 1 and is_transposition(*diffs[0]):
            return Relation.typo
        if sorted(words_a) == sorted(words_b):
            return Relation.reordered
    return Relation.different


def person_key(name: str) -> str:
    """'Robert Downey, Jr.' and 'robert downey jr' -> 'robert downey jr'."""
    return " ".join(_NAME_WORDS.findall(fold(name)))


def people(names: Iterable[str]) -> frozenset[str]:
    return frozenset(k for k in (person_key(n) for n in names) if k)


@dataclass(frozen=True, slots=True)
class Evidence:
    """What a listing or a stored title says about itself besides its name."""

    runtime_minutes: int | None = None
    credits: frozenset[str] = frozenset()  # person_key of each credited name
    original_titles: frozenset[str] = frozenset()  # normalized


def runtimes_agree(a: int | None, b: int | None) -> bool:
    """Unknown agrees with anything; known runtimes within 10 % (at least 5 minutes)."""
    if a is None or b is None:
        return True
    return abs(a - b) <= max(RUNTIME_TOLERANCE_MIN, RUNTIME_TOLERANCE * max(a, b))


def contradiction(a: Evidence, b: Evidence) -> str | None:
    """Why these two cannot be one film, if what they say disagrees; None otherwise."""
    if not runtimes_agree(a.runtime_minutes, b.runtime_minutes):
        return f"runtimes {a.runtime_minutes} and {b.runtime_minutes} min"
    if (
        len(a.credits) >= CREDITS_MIN_TO_CONTRADICT
        and len(b.credits) >= CREDITS_MIN_TO_CONTRADICT
        and not a.credits & b.credits
    ):
        return "no credited person in common"
    if (
        a.original_titles
        and b.original_titles
        and not any(
            relation(x, y) <= Relation.typo for x in a.original_titles for y in b.original_titles
        )
    ):
        return "different original titles"
    return None


def support(a: Evidence, b: Evidence) -> bool:
    """Whether anything besides the name says these are one film."""
    both_timed = a.runtime_minutes is not None and b.runtime_minutes is not None
    return (
        (both_timed and runtimes_agree(a.runtime_minutes, b.runtime_minutes))
        or bool(a.credits & b.credits)
        or bool(a.original_titles & b.original_titles)
    )


def accepts(kind: Relation, a: Evidence, b: Evidence) -> bool:
    """Whether titles related by `kind` (same type, year +-1) are one film given the evidence."""
    if kind is Relation.different or contradiction(a, b) is not None:
        return False
    return kind is not Relation.reordered or support(a, b)
