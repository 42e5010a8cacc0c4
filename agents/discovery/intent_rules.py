"""The local intent parser: what a query asks for, read with word tables instead of an LLM.

Used when there is no OpenAI key and whenever the LLM fails (docs/RULES.md: confidence 0.5). The
vocabulary is the ingestion pipeline's: genre synonyms from agents.ingestion.genres, platform
spellings through schemas.ingestion.normalize_platform, moods from agents.sona.moods.

Order of reading, each step taking the words it understood so later steps do not reread them:
1. years and decades ("from the 2000s", "between 1990 and 2000", "after 2010");
2. references ("like Shrek", "similar to The Matrix"), the title ending at "on <platform>",
   "from the", a year expression, punctuation, "but"/"except", or the end;
3. platforms ("on Netflix", "disney+", "hbo"); words that are also plain English ("max",
   "prime", "apple", "amazon") count only after "on"/"via"/... or next to another platform;
4. moods before genres for words that are both ("romantic", "love"): a mood is a soft boost,
   a genre a hard filter, and a user typing a feeling rarely means to exclude everything else;
5. themes: the remaining content words, adjacent ones kept together ("time travel").
A genre or mood right after a negation ("no horror", "nothing too scary") is dropped.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from itertools import pairwise

from agents.ingestion.genres import (
    CANONICAL_GENRES,
    PLATFORM_GENRES,
    SYNONYMS,
    genre_key,
    map_one,
    singular,
)
from agents.sona.moods import mood_of
from agreements.catalog_warnings import YEARS_AHEAD
from schemas.discovery import YEAR_MAX, YEAR_MIN, IntentFilters, ParsedIntent, YearRange
from schemas.ingestion import normalize_platform

RULES_CONFIDENCE = 0.5  # docs/RULES.md: the keyword fallback's confidence

# The platforms the ingestion pipeline has tables for, by canonical id.
KNOWN_PLATFORMS: frozenset[str] = frozenset(PLATFORM_GENRES)

_GENRE_KEYS: dict[str, tuple[str, ...]] = {
    **{genre_key(name): genres for name, genres in SYNONYMS.items()},
    **{genre_key(g.replace("_", " ")): (g,) for g in CANONICAL_GENRES},
}

# Platform aliases that are also ordinary words: "max 90 minutes", "prime example".
_AMBIGUOUS_PLATFORM_WORDS = frozenset({"max", "prime", "apple", "amazon"})
_PLATFORM_PREPOSITIONS = frozenset({"on", "via", "at", "through", "using"})
_PLATFORM_JOINERS = frozenset({"or", "and", ",", "/", "&"})

_NEGATIONS = frozenset({"no", "not", "without", "non", "nothing", "never", "except", "avoid"})
_INTENSIFIERS = frozenset({"too", "very", "so", "overly", "really", "that", "a", "any"})

_REFERENCE_TRIGGERS: tuple[tuple[str, ...], ...] = (
    ("in", "the", "style", "of"),
    ("along", "the", "lines", "of"),
    ("in", "the", "vein", "of"),
    ("reminds", "me", "of"),
    ("reminiscent", "of"),
    ("comparable", "to"),
    ("similar", "to"),
    ("such", "as"),
    ("like",),
)
_TRIGGER_FIRST_WORDS = frozenset(trigger[0] for trigger in _REFERENCE_TRIGGERS)
# "I like", "would like", "feels like": the verb, not a comparison.
_LIKE_AS_VERB_AFTER = frozenset(
    {
        "i",
        "i'd",
        "id",
        "we",
        "you",
        "they",
        "he",
        "she",
        "would",
        "really",
        "also",
        "don't",
        "dont",
        "do",
        "does",
        "didn't",
        "feel",
        "feels",
        "look",
        "looks",
        "sound",
        "sounds",
        "kids",
        "people",
    }
)
_TITLE_END_PUNCTUATION = frozenset({",", ";", ".", "!", "?", "(", ")", "[", "]"})
_TITLE_END_WORDS = frozenset({"but", "except", "though", "although", "please", "without"})
# After "and"/"for"/"with"/"in", a genre, mood or platform word ends the title: "like Shrek
# and funny", "like Shrek for kids". Other words go on: "like Pride and Prejudice".
_TITLE_SOFT_BREAKS = frozenset({"and", "for", "with", "in"})
_ABBREVIATIONS = frozenset({"mr", "mrs", "ms", "dr", "st", "vs", "jr", "sr"})
_REFERENCE_LEADING_FILLER = frozenset({"a", "an", "some", "any"})
_REFERENCE_TRAILING_NOISE = frozenset(
    {"movie", "movies", "film", "films", "show", "shows", "series", "one", "ones", "stuff"}
)
_QUOTES = "\"'`\u2018\u2019\u201c\u201d"

STOP_WORDS: frozenset[str] = frozenset(
    """
    a an the and or but of to in on at for from with by about into onto over under than then
    as if so too very just really quite pretty kind sort type lot lots bit
    is are was were be been being am it its it's this that these those there here
    i i'm im i'd id i've me my we us our you your they them their he she his her
    want wanna need looking look find show shows movie movies film films series tv
    watch watching watched see seen recommend recommendation recommendations suggest
    please something anything someone stuff thing things one ones some any
    good great best top nice cool
    like similar style vibe vibes lines vein such reminds comparable
    set made released make do does did can could would should will may might must
    what which who whom where when how why give get got let lets let's maybe also
    more most less other another all both either each every tonight today now
    no not nothing without never except avoid
    streaming stream streams available via using through
    content title titles episode episodes season seasons
    """.split()
)

# Words naming a kind of title. They are stop words (never searched for), and become a filter
# only in a query with no other words to search for ("comedy series", "tv shows", "90s
# movies"): in "Series 7: The Contenders" or "movies like Heat" they stay plain words.
_SERIES_WORDS = frozenset({"series", "shows", "miniseries"})
_FILM_WORDS = frozenset({"movie", "movies", "film", "films"})
# A film is any kind of title but a series: shorts, documentaries and specials are films too.
FILM_CONTENT_TYPES = ("documentary", "movie", "short", "special")

# "the eighties"
_DECADE_WORDS = {
    "twenties": 1920,
    "thirties": 1930,
    "forties": 1940,
    "fifties": 1950,
    "sixties": 1960,
    "seventies": 1970,
    "eighties": 1980,
    "nineties": 1990,
    "noughties": 2000,
}
# Parts of a decade: "early 90s" 1990-1993, "mid 90s" 1994-1996, "late 90s" 1997-1999.
_DECADE_PARTS = {"early": (0, 3), "mid": (4, 6), "late": (7, 9)}


# Cached: the same few hundred words come back query after query.
@lru_cache(maxsize=8192)
def platform_id(text: str) -> str | None:
    """'Disney+' -> 'disney_plus', 'hbo' -> 'hbo_max'; None for anything not a known platform."""
    found = normalize_platform(text)
    return found if found in KNOWN_PLATFORMS else None


@lru_cache(maxsize=8192)
def genres_of(text: str) -> tuple[str, ...] | None:
    """Canonical genres a genre word or phrase names ('sci-fi', 'comedies'); exact, no fuzzy
    match: in free text, fuzzy matching turns ordinary words into genres ('time' ~ 'crime')."""
    key = genre_key(text)
    if key in _GENRE_KEYS:
        return _GENRE_KEYS[key]
    singular = _singular_phrase(key)
    return _GENRE_KEYS.get(singular) if singular != key else None


def _singular_phrase(text: str) -> str:
    head, _, last = text.rpartition(" ")
    return f"{head} {singular(last)}" if head else singular(last)


def _mood(text: str) -> str | None:
    return mood_of(text) or mood_of(_singular_phrase(text))


# --- years -------------------------------------------------------------------------------

_YEAR = r"(?:1[89]\d\d|20\d\d)"
_BARE_YEAR = re.compile(_YEAR)
_DECADE_NUMBER = r"['\u2019]?(?:1[89]|20)?\d0['\u2019]?s"
_DECADE_WORD = "|".join(_DECADE_WORDS)
_WHEN = rf"(?:the\s+)?(?:(?:early|mid|late)[\s-]*)?(?:{_DECADE_NUMBER}|{_DECADE_WORD}|{_YEAR})"
_DECADE = rf"(?:the\s+)?(?:(?:early|mid|late)[\s-]*)?(?:{_DECADE_NUMBER}|{_DECADE_WORD})"
_B, _E = r"(?<!\w)", r"(?!\w)"
_RANGE_TO = r"(?:and|to|until|till|through|thru|-|\u2013|\u2014)"

_YEAR_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (kind, re.compile(pattern, re.IGNORECASE))
    for kind, pattern in (
        ("range", rf"{_B}(?:between|from)\s+({_WHEN})\s+{_RANGE_TO}\s+({_WHEN}){_E}"),
        ("range", rf"{_B}({_WHEN})\s*(?:-|\u2013|\u2014|\bto\b)\s*({_WHEN}){_E}"),
        (
            "since",
            rf"{_B}(?:from|since)\s+({_WHEN})\s+(?:onwards?|and later|or later|and newer|"
            rf"or newer|and up|forward){_E}",
        ),
        ("after", rf"{_B}(?:after|post|newer than|later than)[\s-]+({_WHEN}){_E}"),
        ("since", rf"{_B}since\s+({_WHEN}){_E}"),
        ("before", rf"{_B}(?:before|pre|prior to|older than|earlier than)[\s-]+({_WHEN}){_E}"),
        ("until", rf"{_B}(?:until|till|up to|through)\s+({_WHEN}){_E}"),
        ("in", rf"{_B}(?:from|in|of|during)\s+({_WHEN}){_E}"),
        ("in", rf"{_B}({_DECADE}){_E}"),
    )
)


def _period(text: str) -> YearRange | None:
    """'the 90s' -> (1990, 1999), 'early 2000s' -> (2000, 2003), '1999' -> (1999, 1999)."""
    t = " ".join(text.casefold().split()).removeprefix("the ")
    part = re.match(r"(early|mid|late)[\s-]*", t)
    if part:
        t = t[part.end() :]
    if t in _DECADE_WORDS:
        start = _DECADE_WORDS[t]
    elif decade := re.fullmatch(r"['\u2019]?(\d{2}|\d{4})['\u2019]?s", t):
        digits = int(decade.group(1))
        if digits >= 100:
            start = digits
        else:
            # "20s" means the 1920s; "00s" and "10s" are this century's.
            start = 2000 + digits if digits < 20 else 1900 + digits
    elif re.fullmatch(r"\d{4}", t):
        return (int(t), int(t))
    else:
        return None
    low, high = _DECADE_PARTS[part.group(1)] if part else (0, 9)
    return (start + low, start + high)


@dataclass(slots=True)
class _Years:
    closed: list[YearRange] = field(default_factory=list)
    lower: list[int] = field(default_factory=list)
    upper: list[int] = field(default_factory=list)

    def add(self, kind: str, periods: Sequence[YearRange]) -> None:
        first = periods[0]
        if kind == "range":
            second = periods[1]
            low, high = min(first[0], second[0]), max(first[1], second[1])
            self.closed.append((low, high))
        elif kind == "in":
            self.closed.append(first)
        elif kind == "after":
            self.lower.append(first[1] + 1)
        elif kind == "since":
            self.lower.append(first[0])
        elif kind == "before":
            self.upper.append(first[0] - 1)
        elif kind == "until":
            self.upper.append(first[1])

    def year_range(self) -> YearRange | None:
        """Closed periods join ("80s or 90s" -> 1980-1999); open bounds ("after 2010", "before
        2015") narrow them. Bounds that contradict the periods are dropped, periods win."""
        if not (self.closed or self.lower or self.upper):
            return None
        low, high = YEAR_MIN, YEAR_MAX
        if self.closed:
            low = min(r[0] for r in self.closed)
            high = max(r[1] for r in self.closed)
        bounded_low = max([low, *self.lower])
        bounded_high = min([high, *self.upper])
        if bounded_low <= bounded_high:
            low, high = bounded_low, bounded_high
        low, high = max(low, YEAR_MIN), min(high, YEAR_MAX)
        return (low, high) if low <= high else None


def _read_years(text: str) -> tuple[_Years, list[tuple[int, int]]]:
    spans: list[tuple[int, int]] = []
    years = _Years()
    for kind, pattern in _YEAR_PATTERNS:
        for match in pattern.finditer(text):
            start, end = match.span()
            if any(start < s_end and s_start < end for s_start, s_end in spans):
                continue
            periods = [_period(g) for g in match.groups()]
            if any(p is None for p in periods):
                continue
            years.add(kind, [p for p in periods if p is not None])
            spans.append((start, end))
    return years, spans


def _read_bare_years(tokens: Sequence[_Token], years: _Years, this_year: int) -> None:
    """A year standing alone after other words ("wicker lantern 1973", "dune 2021") is the
    year the title came out. One that opens the query ("1917", "2001 a space odyssey") or lies
    further ahead than listings announce titles ("blade runner 2049") is more likely part of a
    title, and is left alone; so is one inside a reference ("like Shrek 2001"), read before."""
    for i, token in enumerate(tokens):
        if not (token.free and _BARE_YEAR.fullmatch(token.word)):
            continue
        year = int(token.word)
        if year > this_year + YEARS_AHEAD or not any(t.is_word for t in tokens[:i]):
            continue
        token.role = "year"
        years.add("in", [(year, year)])


# --- tokens ------------------------------------------------------------------------------

_TOKEN = re.compile(r"[\w'\u2019]+(?:[-+][\w'\u2019]+)*\+?|[^\w\s]")


@dataclass(slots=True)
class _Token:
    text: str  # as typed
    word: str  # casefolded, without surrounding quotes or a possessive 's
    start: int
    end: int
    role: str = ""  # "", "year", "reference", "trigger", "platform", "negated", "mood", "genre"

    @property
    def free(self) -> bool:
        return not self.role

    @property
    def is_word(self) -> bool:
        return any(c.isalnum() for c in self.word)


def _tokenize(text: str) -> list[_Token]:
    tokens = []
    for match in _TOKEN.finditer(text):
        word = match.group().casefold().strip("'\u2019")
        if word.endswith(("'s", "\u2019s")):
            word = word[:-2]
        tokens.append(_Token(match.group(), word, match.start(), match.end()))
    return tokens


def _phrase(tokens: Sequence[_Token]) -> str:
    return " ".join(t.word for t in tokens)


def _is_vocabulary(word: str) -> bool:
    return bool(genres_of(word) or _mood(word) or platform_id(word))


# --- references --------------------------------------------------------------------------


def _trigger_at(tokens: Sequence[_Token], i: int) -> int:
    """Length of the reference trigger starting at token i, 0 if none."""
    if tokens[i].word not in _TRIGGER_FIRST_WORDS:
        return 0
    for trigger in _REFERENCE_TRIGGERS:
        window = tokens[i : i + len(trigger)]
        if len(window) == len(trigger) and all(
            t.free and t.word == w for t, w in zip(window, trigger, strict=True)
        ):
            if trigger == ("like",) and i > 0 and tokens[i - 1].word in _LIKE_AS_VERB_AFTER:
                return 0
            return len(trigger)
    return 0


def _platform_at(tokens: Sequence[_Token], i: int) -> int:
    """Length of the platform name starting at token i (ambiguous words included), 0 if none."""
    for size in (3, 2, 1):
        window = tokens[i : i + size]
        if len(window) == size and all(t.is_word for t in window) and platform_id(_phrase(window)):
            return size
    return 0


def _ends_title(tokens: Sequence[_Token], j: int) -> bool:
    """Whether token j, after at least one title word, ends the title."""
    token = tokens[j]
    following = tokens[j + 1] if j + 1 < len(tokens) else None
    if token.role == "year":
        return True
    if token.text in _TITLE_END_PUNCTUATION:
        # "Mr. Robot": a full stop after an abbreviation belongs to the title.
        return not (token.text == "." and tokens[j - 1].word in _ABBREVIATIONS)
    if token.word in _TITLE_END_WORDS or _trigger_at(tokens, j):
        return True
    if token.word in _PLATFORM_PREPOSITIONS and _platform_at(tokens, j + 1):
        return True
    if token.word == "from" and (following is None or following.word == "the"):
        return True
    return (
        token.word in _TITLE_SOFT_BREAKS
        and following is not None
        and following.is_word
        and not following.text[:1].isupper()
        and _is_vocabulary(following.word)
    )


def _clean_title(tokens: list[_Token]) -> list[_Token]:
    while tokens and tokens[0].word in _REFERENCE_LEADING_FILLER:
        tokens = tokens[1:]
    while tokens and (tokens[-1].word in _REFERENCE_TRAILING_NOISE or not tokens[-1].is_word):
        tokens = tokens[:-1]
    return tokens


def _looks_like_title(tokens: Sequence[_Token]) -> bool:
    """At least one word that is not a stop or vocabulary word, or that is capitalized:
    "like horror" is a genre, "like Funny People" is a title."""
    return any(
        t.is_word and (t.text[:1].isupper() or not (t.word in STOP_WORDS or _is_vocabulary(t.word)))
        for t in tokens
    )


def _read_references(text: str, tokens: list[_Token]) -> list[str]:
    references: list[str] = []
    i = 0
    while i < len(tokens):
        size = _trigger_at(tokens, i)
        if not size:
            i += 1
            continue
        j = i + size
        titles: list[list[_Token]] = [[]]
        while j < len(tokens) and tokens[j].free:
            current = titles[-1]
            if tokens[j].word == "or" and current:
                titles.append([])  # "like Shrek or Toy Story": two references
                j += 1
                continue
            if current and _ends_title(tokens, j):
                break
            if not current and tokens[j].text in _TITLE_END_PUNCTUATION:
                break
            current.append(tokens[j])
            j += 1
        accepted = False
        for title in titles:
            cleaned = _clean_title(title)
            if not cleaned or not _looks_like_title(cleaned):
                continue
            accepted = True
            name = text[cleaned[0].start : cleaned[-1].end].strip(_QUOTES + " ")
            if name and name.casefold() not in (r.casefold() for r in references):
                references.append(name)
            # Filler around the title ("a", "movie") is taken too, but is not the title.
            kept = {t.start for t in cleaned}
            for token in title:
                token.role = "reference" if token.start in kept else "trigger"
        if accepted:
            for token in tokens[i : i + size]:
                token.role = "trigger"
            i = j
        else:
            i += size
    return references


# --- platforms, moods, genres, themes ----------------------------------------------------


def _read_platforms(tokens: list[_Token]) -> list[str]:
    platforms: list[str] = []
    last_platform_end = -10  # token index after the last platform found
    i = 0
    while i < len(tokens):
        size = 0
        for n in (3, 2, 1):
            window = tokens[i : i + n]
            # No stop-word rule here: "apple tv" ends in one, and platform names are exact.
            if _free_words(window, n) and platform_id(_phrase(window)):
                size = n
                break
        if not size:
            i += 1
            continue
        before = tokens[i - 1] if i > 0 else None
        if size == 1 and tokens[i].word in _AMBIGUOUS_PLATFORM_WORDS:
            after_preposition = before is not None and before.word in _PLATFORM_PREPOSITIONS
            in_a_list = before is not None and before.word in _PLATFORM_JOINERS
            if not (after_preposition or (in_a_list and last_platform_end == i - 1)):
                i += 1
                continue
        found = platform_id(_phrase(tokens[i : i + size]))
        if found and found not in platforms:
            platforms.append(found)
        for token in tokens[i : i + size]:
            token.role = "platform"
        if before is not None and before.free and before.word in _PLATFORM_PREPOSITIONS:
            before.role = "platform"
        last_platform_end = i + size
        i += size
    return platforms


def _free_words(window: Sequence[_Token], size: int) -> bool:
    return len(window) == size and all(t.free and t.is_word for t in window)


def _genre_window(window: Sequence[_Token]) -> bool:
    """A genre phrase does not start or end with a stop word, or genre_key would read "and
    animated" as "animated" and take the "and" with it."""
    return len(window) == 1 or not (window[0].word in STOP_WORDS or window[-1].word in STOP_WORDS)


def _negated(tokens: Sequence[_Token], i: int) -> bool:
    j = i - 1
    while j >= 0 and tokens[j].word in _INTENSIFIERS:
        j -= 1
    return j >= 0 and tokens[j].word in _NEGATIONS


def _read_moods_and_genres(tokens: list[_Token]) -> tuple[list[str], list[str]]:
    moods: list[str] = []
    genres: list[str] = []
    i = 0
    while i < len(tokens):
        matched = 0
        for n in (3, 2, 1):
            window = tokens[i : i + n]
            if not _free_words(window, n):
                continue
            phrase = _phrase(window)
            # Mood phrases are looked up whole ("feel good"); genre_key would trim them.
            mood = _mood(phrase)
            found = None if mood or not _genre_window(window) else genres_of(phrase)
            if not (mood or found):
                continue
            matched = n
            negated = _negated(tokens, i)
            for token in window:
                token.role = "negated" if negated else ("mood" if mood else "genre")
            if negated:
                break
            if mood and mood not in moods:
                moods.append(mood)
            for genre in found or ():
                if genre not in genres:
                    genres.append(genre)
            break
        i += matched or 1
    return moods, genres


def _is_content_word(token: _Token) -> bool:
    return (
        token.free
        and token.is_word
        and token.word not in STOP_WORDS
        and any(c.isalpha() for c in token.word)
    )


def _read_themes(tokens: Sequence[_Token]) -> list[str]:
    themes: list[str] = []
    run: list[str] = []
    for token in [*tokens, None]:
        if token is not None and _is_content_word(token):
            run.append(token.word)
            continue
        if run:
            theme = " ".join(run)
            if theme not in themes:
                themes.append(theme)
            run = []
    return themes


def _fallback_query(text: str, tokens: Sequence[_Token]) -> str:
    """Moods, genres, themes and reference titles, as typed; filter words and stop words go."""
    words: list[str] = []
    i = 0
    while i < len(tokens):
        token = tokens[i]
        if token.role == "reference":
            j = i
            while j + 1 < len(tokens) and tokens[j + 1].role == "reference":
                j += 1
            words.append(text[token.start : tokens[j].end].strip(_QUOTES + " ,"))
            i = j + 1
            continue
        keep = token.role in ("mood", "genre") or _is_content_word(token)
        if keep and token.is_word:
            words.append(token.text.strip(_QUOTES))
        i += 1
    return " ".join(w for w in words if w)


def parse_intent(query: str, this_year: int | None = None) -> ParsedIntent:
    """Read a query with the local tables; never raises for any string. `this_year` (default:
    the clock's) bounds the years a bare number may be."""
    text = " ".join(query.split())
    years, year_spans = _read_years(text)
    tokens = _tokenize(text)
    for token in tokens:
        if any(start <= token.start < end for start, end in year_spans):
            token.role = "year"
    references = _read_references(text, tokens)
    _read_bare_years(tokens, years, this_year or datetime.now(UTC).year)
    year_range = years.year_range()
    platforms = _read_platforms(tokens)
    moods, genres = _read_moods_and_genres(tokens)
    themes = _read_themes(tokens)
    words_left = themes or references or any(_is_number_word(t) for t in tokens)
    kinds = [] if words_left else _read_content_types(tokens)
    return ParsedIntent(
        mood=moods,
        themes=themes[:20],
        references=references[:10],
        filters=IntentFilters(
            genres=genres, platforms=platforms, year_range=year_range, content_types=kinds
        ),
        fallback_query=_fallback_query(text, tokens)[:500],
        confidence=RULES_CONFIDENCE,
        source="rules",
    )


def _is_number_word(token: _Token) -> bool:
    """A number left over ("Series 7", "Creepshow 2"): part of a title, not a filter."""
    return token.free and token.is_word and token.word.isdigit()


def _read_content_types(tokens: Sequence[_Token]) -> list[str]:
    """The kind of title the words ask for: series ("series", "shows", "tv show"), films
    ("movies", "films"), or either when they name both ("movies and shows"): no filter."""
    words = {t.word for t in tokens if t.free and t.is_word}
    series = bool(words & _SERIES_WORDS) or any(
        t.word == "tv" and n.word in ("show", "shows", "series") for t, n in pairwise(tokens)
    )
    films = bool(words & _FILM_WORDS)
    if series == films:
        return []
    return ["series"] if series else list(FILM_CONTENT_TYPES)


def only_filter_words(text: str, genres: Collection[str], platforms: Collection[str]) -> bool:
    """Whether search words say nothing the filters do not already: each word is a stop word,
    part of a genre phrase all of whose genres are among `genres`, or part of a platform's name
    among `platforms`. "horror movies" under the horror filter does; "scary movies" does not (a
    mood ranks titles, it filters none), nor "horror" under a request's comedy filter."""
    tokens = _tokenize(text)
    i = 0
    while i < len(tokens):
        if not tokens[i].is_word or tokens[i].word in STOP_WORDS:
            i += 1
            continue
        size = next(
            (n for n in (3, 2, 1) if _names_filter(tokens[i : i + n], n, genres, platforms)), 0
        )
        if not size:
            return False
        i += size
    return True


def _names_filter(
    window: Sequence[_Token], size: int, genres: Collection[str], platforms: Collection[str]
) -> bool:
    if len(window) != size or not all(t.is_word for t in window):
        return False
    phrase = _phrase(window)
    named = genres_of(phrase) if _genre_window(window) else None
    if named and set(named) <= set(genres):
        return True
    return platform_id(phrase) in platforms


def canonical_genres(names: Iterable[str]) -> list[str]:
    """Genre names or ids mapped onto canonical genres as ingestion maps a platform's genre
    names (agreements/genres.py: synonyms, plurals, compounds such as "Action & Adventure",
    typos); a name that maps to no genre is kept as given, so a filter on it matches nothing
    rather than everything."""
    out: list[str] = []
    for name in names:
        for genre in map_one("", name.replace("_", " ")) or (name,):
            if genre not in out:
                out.append(genre)
    return out
