"""The genre vocabulary and mapper moved to contracts/genres.py, which the gateway's item checks
share; these names stay importable from here for the slices that use them."""

from __future__ import annotations

from contracts.genres import CANONICAL_GENRES as CANONICAL_GENRES
from contracts.genres import DEFAULT_FALLBACK as DEFAULT_FALLBACK
from contracts.genres import FALLBACK_BY_TYPE as FALLBACK_BY_TYPE
from contracts.genres import FUZZY_THRESHOLD as FUZZY_THRESHOLD
from contracts.genres import IGNORED as IGNORED
from contracts.genres import PLATFORM_GENRES as PLATFORM_GENRES
from contracts.genres import SYNONYMS as SYNONYMS
from contracts.genres import GenreMapping as GenreMapping
from contracts.genres import canonical_order as canonical_order
from contracts.genres import classify_genres as classify_genres
from contracts.genres import fallback_genres as fallback_genres
from contracts.genres import genre_key as genre_key
from contracts.genres import map_genres as map_genres
from contracts.genres import map_one as map_one
from contracts.genres import singular as singular
