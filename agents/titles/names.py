"""Titles in their matching form: the one definition shared by ingestion (resolution) and the
canonical-title store (its normalized_title and title_words columns). Pure."""

from __future__ import annotations

import re
from functools import lru_cache

# fold and the title-suffix patterns are shared with the gateway's checks of catalog items.
from agreements.text import TRAILING_ARTICLE as TRAILING_ARTICLE
from agreements.text import TRAILING_YEAR as TRAILING_YEAR
from agreements.text import fold as fold

_LEADING_ARTICLES = ("the", "a", "an")
_APOSTROPHES = re.compile(r"['\u2018\u2019`\u00b4]")
_NON_WORD = re.compile(r"[^\w\s]|_")
# Roman numerals as whole words, II to XX: "Rocky II" and "Rocky 2" are one title. The single
# letters I, V and X stay words ("I, Robot", "V for Vendetta", "Malcolm X").
ROMAN_NUMERALS: dict[str, str] = {
    "ii": "2",
    "iii": "3",
    "iv": "4",
    "vi": "6",
    "vii": "7",
    "viii": "8",
    "ix": "9",
    "xi": "11",
    "xii": "12",
    "xiii": "13",
    "xiv": "14",
    "xv": "15",
    "xvi": "16",
    "xvii": "17",
    "xviii": "18",
    "xix": "19",
    "xx": "20",
}


# Cached: every batch resolves against candidate titles loaded again from the store, mostly the
# same names batch after batch.
@lru_cache(maxsize=1 << 17)
def normalize_title(title: str) -> str:
    """The matching form of a title: 'Matrix, The (1999)' and 'The Matrix' both give 'matrix'.

    Casefold, strip accents, drop a trailing "(1999)", move a trailing ", The" to the front,
    '&' -> 'and', drop apostrophes (so "Schindler's" == "Schindlers"), other punctuation ->
    space, collapse spaces, roman numerals II-XX -> digits, then drop a leading English article.
    """
    text = fold(title).strip()
    stripped = TRAILING_YEAR.sub("", text)
    text = stripped or text
    moved = TRAILING_ARTICLE.search(text)
    if moved:
        text = f"{moved.group(1)} {text[: moved.start()]}"
    text = text.replace("&", " and ")
    text = _APOSTROPHES.sub("", text)
    words = [ROMAN_NUMERALS.get(w, w) for w in _NON_WORD.sub(" ", text).split()]
    if len(words) > 1 and words[0] in _LEADING_ARTICLES:
        words = words[1:]
    if not words:
        # A title of punctuation only ("?!"): keep it rather than match every such title.
        return " ".join(fold(title).split())
    return " ".join(words)


def title_words(normalized_title: str) -> list[str]:
    """Words a fuzzy match of this title almost surely shares one of (a typo hits one word).

    Stored as every word (string_to_array in SQL); looked up by words of two letters or more,
    which keeps "a" and "i" from matching half the catalog.
    """
    return sorted({w for w in normalized_title.split() if len(w) > 1} or {normalized_title})
