"""The typo rule of search and suggestions, one for the discovery agents and the gateway:
per typed word, no typo under 5 letters, one from 5, two from 9; never any in a number
(docs/DISCOVERY.md, "Typo tolerance"). And the matching form words are compared in."""

from __future__ import annotations

import re

from agreements.text import fold

# Word lengths from which one and two typos are allowed.
ONE_TYPO_FROM = 5
TWO_TYPOS_FROM = 9

_APOSTROPHES = re.compile(r"['\u2018\u2019`\u00b4]")
_NON_ALNUM = re.compile(r"[^0-9a-z]+")


def is_number(word: str) -> bool:
    return any(ch.isdigit() for ch in word)


def allowed_typos(word: str) -> int:
    """Typos a typed word may carry and still match."""
    if is_number(word) or len(word) < ONE_TYPO_FROM:
        return 0
    return 1 if len(word) < TWO_TYPOS_FROM else 2


def matching_form(text: str) -> str:
    """Folded, apostrophes dropped, every other non-alphanumeric a space: 'Schindler's List'
    -> 'schindlers list' (what migration 0033's mgw_name_form() computes for names)."""
    return " ".join(_NON_ALNUM.sub(" ", _APOSTROPHES.sub("", fold(text))).split())
