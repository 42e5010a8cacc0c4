"""Text rules the gateway's checks and the agents' normalization share: folding, and the year
and article a listing's title may carry at its end. Pure."""

from __future__ import annotations

import re
import unicodedata

TRAILING_YEAR = re.compile(r"\s*[(\[]\s*(\d{4})\s*[)\]]\s*$")
TRAILING_ARTICLE = re.compile(r",\s*(the|a|an)\s*$", re.IGNORECASE)


def fold(text: str) -> str:
    """Casefold and strip accents: 'Amélie' -> 'amelie', 'Straße' -> 'strasse'."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def title_year(title: str) -> int | None:
    """The year a title ends with ("King Kong (1933)" -> 1933), when it has more than that."""
    match = TRAILING_YEAR.search(title)
    if match and match.start() > 0:
        return int(match.group(1))
    return None
