"""What an embedder is, and the text we embed for a title."""

from __future__ import annotations

import re
from typing import Protocol, runtime_checkable

import numpy as np

from schemas.content import CanonicalContent

_SPACES = re.compile(r"\s+")

# all-MiniLM-L6-v2 reads at most 256 word pieces: the fields that say most about what a
# title is come first, so a long description is what gets cut.
_MAX_KEYWORDS = 20
_MAX_ALTERNATE_TITLES = 3


@runtime_checkable
class Embedder(Protocol):
    """Turns texts into unit vectors of one fixed dimension."""

    @property
    def dimension(self) -> int: ...

    @property
    def model(self) -> str:
        """Name of the model (recorded next to stored vectors)."""
        ...

    async def embed(self, texts: list[str]) -> np.ndarray:
        """Shape (len(texts), dimension), float32, each row of L2 norm 1 (zero rows stay 0)."""
        ...

    async def close(self) -> None: ...


def normalize_rows(vectors: np.ndarray) -> np.ndarray:
    """L2-normalize each row as float32; an all-zero row stays zero instead of NaN."""
    matrix = np.asarray(vectors, dtype=np.float32)
    if matrix.ndim != 2:
        raise ValueError(f"expected a 2-d array, got shape {matrix.shape}")
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    np.maximum(norms, np.float32(1e-12), out=norms)
    return np.ascontiguousarray(matrix / norms, dtype=np.float32)


def _clean(text: str) -> str:
    return _SPACES.sub(" ", text).strip()


def _label(value: str) -> str:
    # Canonical genre ids such as "science_fiction" read better to the model as words.
    return _clean(value.replace("_", " "))


def content_text(content: CanonicalContent) -> str:
    """The text embedded for a title: who it is, what kind, then what it is about.

    Order: title (with the original title when it differs, and a few alternate titles),
    content type and year, genres, keywords, then the description. Credits, ratings and
    availability are left out: they say where or how well a title plays, not what it is,
    and the vector is for "titles like this one".
    """
    title = _clean(content.title)
    names = [title]
    original = _clean(content.original_title or "")
    if original and original.casefold() != title.casefold():
        names.append(original)
    for alternate in content.alternate_titles[:_MAX_ALTERNATE_TITLES]:
        cleaned = _clean(alternate)
        if cleaned and cleaned.casefold() not in {n.casefold() for n in names}:
            names.append(cleaned)
    parts = [" / ".join(names) + "."]

    kind = _label(content.content_type.value)
    article = "An" if kind[:1] in "aeiou" else "A"
    year = f" from {content.release_year}" if content.release_year else ""
    parts.append(f"{article} {kind}{year}.")
    genres = [_label(g) for g in content.genres if _label(g)]
    if genres:
        parts.append("Genres: " + ", ".join(genres) + ".")
    keywords = [_label(k) for k in content.keywords[:_MAX_KEYWORDS] if _label(k)]
    if keywords:
        parts.append("Keywords: " + ", ".join(keywords) + ".")
    description = _clean(content.description or "")
    if description:
        parts.append(description)
    return " ".join(parts)
