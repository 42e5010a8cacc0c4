"""Map each platform's free-text genre names onto the 18 canonical genres.

Lookup for one raw genre, first hit wins:
1. the platform's own table, then the generic synonyms, then the known-but-ignored names,
   on the whole name ("Sci-Fi & Fantasy", "Kids");
2. the same after dropping noise words ("Horror Movies", "TV Dramas") and plural endings;
3. a compound ("Action & Adventure", "Crime/Thriller") is split on &, /, "and", commas,
   and each part mapped alone;
4. word by word ("Romantic Drama" -> romance, drama);
5. fuzzy: rapidfuzz `fuzz.ratio` >= 80 (docs/RULES.md's 0.8) against every known name, which
   catches typos ("Thriler", "Documentry") without letting substrings match.
Names that match nothing are reported in GenreMapping.unknown: the gateway tells the producer
(agreements/catalog_warnings.py) and the pipeline counts and keeps them with the item's mapping.
It lives in contracts because both sides need the one table.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache

from rapidfuzz import fuzz, process

from agreements.text import fold
from schemas.content import ContentType

CANONICAL_GENRES: tuple[str, ...] = (
    "action",
    "adventure",
    "animation",
    "comedy",
    "crime",
    "documentary",
    "drama",
    "family",
    "fantasy",
    "history",
    "horror",
    "music",
    "mystery",
    "romance",
    "science_fiction",
    "thriller",
    "war",
    "western",
)
_ORDER = {g: i for i, g in enumerate(CANONICAL_GENRES)}

FUZZY_THRESHOLD = 80.0  # rapidfuzz scores are 0-100; docs/RULES.md's 0.8

# A title needs at least one genre (CanonicalContent). When nothing maps, documentaries keep
# their obvious genre and everything else gets drama, the most common genre in every catalog
# we model; the caller logs the unknown names so the table can grow.
DEFAULT_FALLBACK = "drama"
FALLBACK_BY_TYPE: dict[ContentType, str] = {ContentType.documentary: "documentary"}

_G = tuple[str, ...]

SYNONYMS: dict[str, _G] = {
    **{g: (g,) for g in CANONICAL_GENRES},
    "science fiction": ("science_fiction",),
    "sci fi": ("science_fiction",),
    "scifi": ("science_fiction",),
    "sf": ("science_fiction",),
    "cyberpunk": ("science_fiction",),
    "space opera": ("science_fiction",),
    "dystopian": ("science_fiction",),
    "suspense": ("thriller",),
    "psychological thriller": ("thriller",),
    "spy": ("thriller",),
    "espionage": ("thriller",),
    "heist": ("crime", "thriller"),
    "disaster": ("action",),
    "martial arts": ("action",),
    "superhero": ("action", "fantasy"),
    "survival": ("adventure",),
    "animated": ("animation",),
    "anime": ("animation",),
    "cartoon": ("animation", "family"),
    "adult animation": ("animation",),
    "stop motion": ("animation",),
    "comedies": ("comedy",),
    "stand up": ("comedy",),
    "standup": ("comedy",),
    "stand up comedy": ("comedy",),
    "sitcom": ("comedy",),
    "parody": ("comedy",),
    "satire": ("comedy",),
    "sketch comedy": ("comedy",),
    "dark comedy": ("comedy",),
    "black comedy": ("comedy",),
    "buddy": ("comedy",),
    "rom com": ("romance", "comedy"),
    "romcom": ("romance", "comedy"),
    "romantic comedy": ("romance", "comedy"),
    "dramedy": ("comedy", "drama"),
    "police": ("crime",),
    "cop": ("crime",),
    "gangster": ("crime",),
    "noir": ("crime",),
    "true crime": ("crime", "documentary"),
    "docuseries": ("documentary",),
    "docu series": ("documentary",),
    "docs": ("documentary",),
    "doc": ("documentary",),
    "nature": ("documentary",),
    "science": ("documentary",),
    "biography": ("drama", "history"),
    "biographical": ("drama", "history"),
    "biopic": ("drama", "history"),
    "melodrama": ("drama",),
    "coming of age": ("drama",),
    "medical": ("drama",),
    "legal": ("drama",),
    "courtroom": ("drama",),
    "kid": ("family",),
    "kids": ("family",),
    "children": ("family",),
    "childrens": ("family",),
    "fairy tale": ("fantasy",),
    "sword and sorcery": ("fantasy",),
    "supernatural": ("fantasy",),
    "historical": ("history",),
    "period": ("history", "drama"),
    "period drama": ("history", "drama"),
    "slasher": ("horror",),
    "zombie": ("horror",),
    "musical": ("music",),
    "concert": ("music",),
    "dance": ("music",),
    "whodunit": ("mystery",),
    "detective": ("mystery", "crime"),
    "romantic": ("romance",),
    "love": ("romance",),
    "military": ("war",),
    "spaghetti western": ("western",),
    # A franchise name, not a genre, but common as a hub name; word by word it would be "war".
    "star wars": ("science_fiction", "adventure"),
}

# Known names that describe audience, origin or format rather than a genre: dropped, and not
# reported as unknown (they are not gaps in the table).
IGNORED: frozenset[str] = frozenset(
    {
        "international",
        "independent",
        "indie",
        "sport",
        "sports",
        "reality",
        "lgbtq",
        "teen",
        "young adult",
        "young adult audience",
        "special interest",
        "faith",
        "spirituality",
        "lifestyle",
        "lifestyle and culture",
        "cooking and food",
        "food",
        "news",
        "talk show",
        "talk show and variety",
        "variety",
        "game show",
        "late night",
        "classic",
        "classics",
        "cult",
        "arthouse",
        "black stories",
        "latino",
        "fitness",
        "unscripted",
        "foreign",
        "british",
        "korean",
        "spanish language",
        "short",
        "shorts",
        "tv movie",
        "adult",
    }
)

# Platform-specific names, as the platforms spell them; () means known and ignored.
PLATFORM_GENRES: dict[str, dict[str, _G]] = {
    "netflix": {
        "Sci-Fi & Fantasy": ("science_fiction", "fantasy"),
        "TV Sci-Fi & Fantasy": ("science_fiction", "fantasy"),
        "Action & Adventure": ("action", "adventure"),
        "TV Action & Adventure": ("action", "adventure"),
        "Children & Family Movies": ("family",),
        "Kids' TV": ("family",),
        "Anime Features": ("animation",),
        "Anime Series": ("animation",),
        "Docuseries": ("documentary",),
        "Documentaries": ("documentary",),
        "Stand-Up Comedy": ("comedy",),
        "Stand-Up Comedy & Talk Shows": ("comedy",),
        "Music & Musicals": ("music",),
        "Romantic Movies": ("romance",),
        "Romantic TV Shows": ("romance",),
        "TV Mysteries": ("mystery",),
        "Crime TV Shows": ("crime",),
        "Science & Nature TV": ("documentary",),
        "Classic & Cult TV": (),
        "Reality TV": (),
        "Independent Movies": (),
        "International Movies": (),
        "International TV Shows": (),
        "LGBTQ Movies": (),
        "Faith & Spirituality": (),
        "Sports Movies": (),
        "Teen TV Shows": (),
    },
    "prime_video": {
        "Kids": ("family",),
        "Suspense": ("thriller",),
        "Science Fiction": ("science_fiction",),
        "Military and War": ("war",),
        "Arts, Entertainment, and Culture": ("documentary",),
        "Music Videos and Concerts": ("music",),
        "Young Adult Audience": (),
        "Special Interest": (),
        "Unscripted": (),
        "Talk Show and Variety": (),
        "Arthouse": (),
        "Fitness": (),
    },
    "disney_plus": {
        "Action-Adventure": ("action", "adventure"),
        "Animals & Nature": ("documentary", "family"),
        "Superhero": ("action", "fantasy"),
        "Coming of Age": ("drama",),
        "Police/Cop": ("crime",),
        "Spy/Espionage": ("thriller",),
        "Biographical": ("drama", "history"),
        "Historical": ("history",),
        "Kids": ("family",),
        "Musical": ("music",),
        "Buddy": ("comedy",),
        "Parody": ("comedy",),
        "Medical": ("drama",),
        "Survival": ("adventure",),
        "Game Show": (),
        "Lifestyle": (),
        # Brand hubs imply genres.
        "Star Wars": ("science_fiction", "adventure"),
        "Marvel": ("action", "fantasy"),
        "Pixar": ("animation", "family"),
        "National Geographic": ("documentary",),
    },
    "hulu": {
        "Rom-Com": ("romance", "comedy"),
        "Sci Fi": ("science_fiction",),
        "Cartoons": ("animation", "family"),
        "Stand Up": ("comedy",),
        "Sitcom": ("comedy",),
        "Kids": ("family",),
        "Cooking & Food": (),
        "Black Stories": (),
        "Latino": (),
        "LGBTQ+": (),
        "Lifestyle & Culture": (),
        "Late Night": (),
        "News": (),
        "Game Shows": (),
    },
    "hbo_max": {
        "Action/Adventure": ("action", "adventure"),
        "Fantasy & Sci-Fi": ("fantasy", "science_fiction"),
        "Kids & Family": ("family",),
        "Adult Animation": ("animation",),
        "Suspense": ("thriller",),
        "Classics": (),
        "International": (),
    },
    "apple_tv_plus": {
        "Sci-Fi & Fantasy": ("science_fiction", "fantasy"),
        "Action & Adventure": ("action", "adventure"),
        "Kids": ("family",),
        "Kids & Family": ("family",),
        "Historical": ("history",),
    },
}

# Format words that carry no genre: "Horror Movies" -> "horror", "TV Dramas" -> "dramas".
_NOISE = frozenset(
    {
        "tv",
        "movie",
        "movies",
        "film",
        "films",
        "show",
        "shows",
        "series",
        "feature",
        "features",
        "program",
        "programs",
        "programme",
        "programmes",
        "cinema",
        "genre",
        "and",
    }
)
_SPLIT_CHARS = re.compile(r"[&/,;|+]")
_NON_WORD = re.compile(r"[^\w\s]|_")
_IGNORE = "<ignored>"


@dataclass(frozen=True, slots=True)
class GenreMapping:
    genres: tuple[str, ...]  # canonical, deduplicated, in the order the raw names gave them
    unknown: tuple[str, ...]  # raw names that matched nothing: log them, grow the table
    fallback: bool = False  # genres came from the fallback, not from the item


def genre_key(name: str) -> str:
    """'Sci-Fi & Fantasy' -> 'sci fi and fantasy'; "Kids' TV" -> 'kids tv'."""
    text = fold(name).replace("'", "").replace("\u2019", "")
    text = _SPLIT_CHARS.sub(" and ", text)
    words = _NON_WORD.sub(" ", text).split()
    # "Arts, Entertainment, and Culture" -> "arts and entertainment and culture".
    out: list[str] = []
    for word in words:
        if not (word == "and" and (not out or out[-1] == "and")):
            out.append(word)
    while out and out[-1] == "and":
        out.pop()
    return " ".join(out)


def singular(word: str) -> str:
    """English plural to singular for genre words ("comedies" -> "comedy", "thrillers")."""
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    return word


def _table(platform: str) -> Mapping[str, _G]:
    return _PLATFORM_KEYS.get(platform, {})


def _exact(key: str, platform: str) -> _G | str | None:
    if not key:
        return None
    table = _table(platform)
    if key in table:
        return table[key] or _IGNORE
    if key in _GENERIC_KEYS:
        return _GENERIC_KEYS[key]
    if key in IGNORED:
        return _IGNORE
    return None


def _plain(key: str, platform: str) -> _G | str | None:
    """Whole name, then without noise words, then singular."""
    found = _exact(key, platform)
    if found is not None:
        return found
    words = [w for w in key.split() if w not in _NOISE]
    if not words:
        return _IGNORE  # "TV Movies": only format words
    for variant in (" ".join(words), " ".join(singular(w) for w in words)):
        found = _exact(variant, platform)
        if found is not None:
            return found
    return None


def _fuzzy(key: str, platform: str) -> _G | str | None:
    choices = _FUZZY_CHOICES.get(platform, _FUZZY_CHOICES[""])
    match = process.extractOne(key, choices, scorer=fuzz.ratio, score_cutoff=FUZZY_THRESHOLD)
    if match is None:
        return None
    return _exact(match[0], platform)


def _part(key: str, platform: str) -> _G | str | None:
    found = _plain(key, platform)
    if found is not None:
        return found
    words = [w for w in key.split() if w not in _NOISE]
    if len(words) > 1:
        # Word by word, exact only: fuzzy on single words would invent genres.
        mapped: list[str] = []
        ignored = False
        for word in words:
            hit = _exact(word, platform) or _exact(singular(word), platform)
            if hit == _IGNORE:
                ignored = True
            elif hit is not None:
                mapped.extend(hit)
        if mapped:
            return tuple(mapped)
        if ignored:
            return _IGNORE
    return _fuzzy(" ".join(words), platform) if words else None


@lru_cache(maxsize=8192)
def map_one(platform: str, raw: str) -> _G | None:
    """Canonical genres of one raw name; () when known but ignored; None when unknown."""
    key = genre_key(raw)
    found = _plain(key, platform)
    if found is None:
        parts = [p.strip() for p in key.split(" and ") if p.strip()]
        if len(parts) > 1:
            mapped: list[str] = []
            any_known = False
            for part in parts:
                hit = _part(part, platform)
                if hit is not None:
                    any_known = True
                    if hit != _IGNORE:
                        mapped.extend(hit)
            found = tuple(mapped) if mapped else (_IGNORE if any_known else None)
        else:
            found = _part(key, platform)
    if found is None:
        return None
    return () if found == _IGNORE else tuple(dict.fromkeys(found))


def classify_genres(
    platform: str, raw_genres: Iterable[str], content_type: ContentType | None = None
) -> GenreMapping:
    """Map every raw name; with a content_type, apply the fallback when nothing mapped."""
    genres: list[str] = []
    unknown: list[str] = []
    for raw in raw_genres:
        mapped = map_one(platform, raw)
        if mapped is None:
            unknown.append(raw)
            continue
        for genre in mapped:
            if genre not in genres:
                genres.append(genre)
    if not genres and content_type is not None:
        return GenreMapping(tuple(fallback_genres(content_type)), tuple(unknown), fallback=True)
    return GenreMapping(tuple(genres), tuple(unknown))


def map_genres(platform: str, raw_genres: Iterable[str]) -> list[str]:
    """Canonical genres, deduplicated in stable order; unknown names dropped (no fallback)."""
    return list(classify_genres(platform, raw_genres).genres)


def fallback_genres(content_type: ContentType) -> list[str]:
    return [FALLBACK_BY_TYPE.get(content_type, DEFAULT_FALLBACK)]


def canonical_order(genres: Iterable[str]) -> list[str]:
    """Deduplicated, in CANONICAL_GENRES order: an order that does not depend on arrival."""
    return sorted(set(genres), key=lambda g: _ORDER.get(g, len(_ORDER)))


_GENERIC_KEYS: dict[str, _G] = {genre_key(k): v for k, v in SYNONYMS.items()}
_GENERIC_KEYS.update({genre_key(g.replace("_", " ")): (g,) for g in CANONICAL_GENRES})
_PLATFORM_KEYS: dict[str, dict[str, _G]] = {
    platform: {genre_key(k): v for k, v in table.items()}
    for platform, table in PLATFORM_GENRES.items()
}
_FUZZY_CHOICES: dict[str, list[str]] = {
    platform: sorted({*_GENERIC_KEYS, *IGNORED, *_PLATFORM_KEYS.get(platform, {})})
    for platform in ["", *PLATFORM_GENRES]
}
