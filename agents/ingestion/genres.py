"""The genre vocabulary and mapper moved to agreements/genres.py, which the gateway's item checks
share; these names stay importable from here for the slices that use them."""

from __future__ import annotations

from agreements.genres import CANONICAL_GENRES as CANONICAL_GENRES
from agreements.genres import DEFAULT_FALLBACK as DEFAULT_FALLBACK
from agreements.genres import FALLBACK_BY_TYPE as FALLBACK_BY_TYPE
from agreements.genres import FUZZY_THRESHOLD as FUZZY_THRESHOLD
from agreements.genres import IGNORED as IGNORED
from agreements.genres import PLATFORM_GENRES as PLATFORM_GENRES
from agreements.genres import SYNONYMS as SYNONYMS
from agreements.genres import GenreMapping as GenreMapping
from agreements.genres import canonical_order as canonical_order
from agreements.genres import classify_genres as classify_genres
from agreements.genres import fallback_genres as fallback_genres
from agreements.genres import genre_key as genre_key
from agreements.genres import map_genres as map_genres
from agreements.genres import map_one as map_one
from agreements.genres import singular as singular
