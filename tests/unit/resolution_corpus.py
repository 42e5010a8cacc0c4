"""Pairs of catalog listings for measuring entity resolution: near misses that must stay two
titles, and true variants of one title that must merge (tests/unit/test_resolution_precision.py).

Each pair is two listings from two platforms, carrying the evidence real listings carry: a
runtime (sometimes missing), a few credits (sometimes none), a year. A true variant is the same
film (its runtime within a few minutes, its credits a subset of the other listing's or absent,
its year the same or one off); a near miss is a different film (runtime and credits drawn on
their own, year the same or one off, since that is what makes it dangerous). Deterministic by
seed: only `random.Random(seed)`.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any

from agents.ingestion.normalize import NormalizedItem
from agents.ingestion.resolution import KnownTitleIndex, assign
from devtools.sample_catalog import _ADJECTIVES, _NAMES, _NOUNS, _PLACES
from tests.unit.ingestion_factories import item

# Real titles, long and short, with and without articles, "and", numbers and punctuation.
REAL_TITLES = (
    "The Brothers",
    "The Wood",
    "I Know What You Did Last Summer",
    "The Work and the Glory",
    "Brother",
    "The Matrix",
    "Heat",
    "The Godfather",
    "Pride and Prejudice",
    "Romeo and Juliet",
    "Harold and Maude",
    "The Good, the Bad and the Ugly",
    "Crouching Tiger, Hidden Dragon",
    "Spirited Away",
    "Amelie",
    "The Shawshank Redemption",
    "Eternal Sunshine of the Spotless Mind",
    "No Country for Old Men",
    "There Will Be Blood",
    "The Lord of the Rings",
    "A Beautiful Mind",
    "The Silence of the Lambs",
    "Pulp Fiction",
    "Fargo",
    "The Big Lebowski",
    "Mulholland Drive",
    "The Social Network",
    "Moonlight",
    "Parasite",
    "Whiplash",
    "The Departed",
    "Gone Girl",
    "The Grand Budapest Hotel",
    "Lost in Translation",
    "Little Miss Sunshine",
    "The Royal Tenenbaums",
    "Children of Men",
    "The Prestige",
    "Memento",
    "Inception",
    "The Dark Knight",
    "Black Swan",
    "Mad Max Fury Road",
    "Arrival",
    "Her",
    "Drive",
    "Up",
    "Coco",
    "Frozen",
    "Brave",
    "Cars",
    "Hunt",
    "The Hunt",
    "The Town",
    "The Tourist",
    "The Others",
    "Babel",
    "Sicario",
    "Prisoners",
    "Nightcrawler",
    "The Wolf of Wall Street",
    "Catch Me If You Can",
    "Saving Private Ryan",
    "The Truman Show",
    "Good Will Hunting",
    "Dead Poets Society",
    "The Breakfast Club",
    "Stand by Me",
    "Back to the Future",
    "Raiders of the Lost Ark",
    "Close Encounters of the Third Kind",
    "When Harry Met Sally",
    "Sleepless in Seattle",
    "The Sixth Sense",
    "Signs",
    "The Village",
    "Unbreakable",
    "Split",
    "Glass",
    "Spider-Man",
    "X-Men",
    "Ant-Man",
    "Apollo 13",
    "District 9",
    "28 Days Later",
    "Ocean's Eleven",
    "Schindler's List",
)
# Films listed under an English title and their original one.
TRANSLATED = (
    ("Amelie", "Le Fabuleux Destin d'Amelie Poulain"),
    ("The Lives of Others", "Das Leben der Anderen"),
    ("Spirited Away", "Sen to Chihiro no Kamikakushi"),
    ("Pan's Labyrinth", "El Laberinto del Fauno"),
    ("Downfall", "Der Untergang"),
    ("The Hunt", "Jagten"),
    ("Run Lola Run", "Lola rennt"),
    ("City of God", "Cidade de Deus"),
)
# Words a sequel or a different film adds to a title ("I Still Know ...", "... Returns").
EXTRA_WORDS = (
    "Still",
    "Again",
    "Returns",
    "Reloaded",
    "Forever",
    "Begins",
    "Rising",
    "Revenge",
    "Legacy",
    "Origins",
    "Redemption",
    "Last",
    "Final",
    "Little",
    "Secret",
)
# Real pairs of different words a few letters apart.
CLOSE_WORDS = (
    ("story", "glory"),
    ("wood", "woo"),
    ("brother", "brothers"),
    ("hunt", "hurt"),
    ("cars", "card"),
    ("night", "light"),
    ("house", "horse"),
    ("mother", "other"),
    ("river", "rider"),
    ("dream", "dread"),
    ("game", "fame"),
    ("king", "kind"),
    ("war", "way"),
    ("love", "live"),
    ("summer", "summers"),
    ("girl", "girls"),
    ("man", "men"),
    ("heart", "hearts"),
    ("road", "roads"),
    ("star", "stars"),
)
PEOPLE_FIRST = ("Ana", "Ben", "Chloe", "Dev", "Emma", "Farid", "Grace", "Hiro", "Ines", "Jon")
PEOPLE_LAST = ("Abara", "Berg", "Castro", "Dahl", "Eze", "Fontaine", "Gupta", "Hale", "Ito")


@dataclass(frozen=True)
class Film:
    title: str
    year: int
    runtime: int
    credits: tuple[str, ...]
    content_type: str = "movie"
    original_title: str | None = None


@dataclass(frozen=True)
class Pair:
    kind: str  # the variant or near-miss kind
    same: bool  # True: one film listed twice; False: two films
    first: Film
    second: Film
    first_runtime: int | None  # as listed (None: the listing gives no runtime)
    second_runtime: int | None
    first_credits: tuple[str, ...]
    second_credits: tuple[str, ...]


def _people(rng: random.Random, n: int, avoid: Iterable[str] = ()) -> tuple[str, ...]:
    taken = set(avoid)
    out: list[str] = []
    while len(out) < n:
        name = f"{rng.choice(PEOPLE_FIRST)} {rng.choice(PEOPLE_LAST)}"
        if name not in taken:
            taken.add(name)
            out.append(name)
    return tuple(out)


def _base_titles(rng: random.Random, generated: int) -> list[str]:
    titles = list(REAL_TITLES)
    for _ in range(generated):
        pattern = rng.random()
        if pattern < 0.5:
            titles.append(f"The {rng.choice(_ADJECTIVES)} {rng.choice(_NOUNS)}")
        elif pattern < 0.8:
            titles.append(f"The {rng.choice(_NOUNS)} of {rng.choice(_PLACES)}")
        else:
            titles.append(f"{rng.choice(_NAMES)}'s {rng.choice(_NOUNS)}")
    return list(dict.fromkeys(titles))


def _film(rng: random.Random, title: str, year: int | None = None) -> Film:
    return Film(
        title=title,
        year=year if year is not None else rng.randint(1950, 2024),
        runtime=rng.randint(80, 175),
        credits=_people(rng, 3),
    )


# --- true variants: one film, two spellings -----------------------------------------------------


def _typo(rng: random.Random, title: str) -> str | None:
    words = title.split()
    longest = max(range(len(words)), key=lambda i: len(words[i]))
    word = words[longest]
    if len(word) < 5 or not word.isalpha():
        return None
    i = rng.randint(1, len(word) - 3)
    if word[i] == word[i + 1]:
        return None
    words[longest] = word[:i] + word[i + 1] + word[i] + word[i + 2 :]
    return " ".join(words)


def true_variants(rng: random.Random, base: Film) -> list[tuple[str, str, int]]:
    """(kind, variant title, year) of `base`: spellings that name the same film."""
    title, year = base.title, base.year
    out: list[tuple[str, str, int]] = [
        ("case", title.upper(), year),
        ("spacing", "  ".join(title.split()), year),
        ("year_in_title", f"{title} ({year})", year),
        ("year_plus_one", title, year + 1),
        ("year_minus_one", title, year - 1),
        ("accent", title.replace("e", "\u00e9", 1), year),
        ("punctuation", f"{title}!", year),
        ("colon", title.replace(" ", ": ", 1) if " " in title else f"{title}:", year),
    ]
    if title.startswith("The "):
        out.append(("library_sort", f"{title[4:]}, The", year))
        out.append(("article_dropped", title[4:], year))
    elif not title.startswith(("A ", "An ")):
        out.append(("article_added", f"The {title}", year))
    if "-" in title:
        out.append(("hyphen_joined", title.replace("-", ""), year))
        out.append(("hyphen_spaced", title.replace("-", " "), year))
    if " and " in title:
        out.append(("ampersand", title.replace(" and ", " & "), year))
    if "'" in title:
        out.append(("apostrophe", title.replace("'", ""), year))
    if "," in title:
        out.append(("comma", title.replace(",", ""), year))
    typo = _typo(rng, title)
    if typo is not None and len(title) >= 12:
        out.append(("typo", typo, year + rng.choice((0, 0, 1, -1))))
    return out


# --- near misses: two films, close names --------------------------------------------------------


def _swap_close_word(rng: random.Random, title: str) -> str | None:
    words = title.split()
    options = [
        (i, b if w.casefold() == a else a)
        for i, w in enumerate(words)
        for a, b in CLOSE_WORDS
        if w.casefold() in (a, b)
    ]
    if not options:
        return None
    i, replacement = rng.choice(options)
    words[i] = replacement.capitalize() if words[i][:1].isupper() else replacement
    return " ".join(words)


def _content_words(title: str) -> list[int]:
    small = {"the", "a", "an", "of", "and", "in", "to", "for", "by", "if", "&"}
    return [
        i
        for i, w in enumerate(title.split())
        if w.casefold().strip(",:'") not in small and _core(w)[0].isalpha()
    ]


def _core(word: str) -> tuple[str, str]:
    """('Good,') -> ('Good', ','): a word and the punctuation after it, which changing the
    word must keep (dropping the comma of "Good," would not make another title)."""
    core = word.rstrip(",:;.!?")
    return core, word[len(core) :]


def _with_word(words: list[str], i: int, replacement: str) -> str:
    return " ".join([*words[:i], replacement + _core(words[i])[1], *words[i + 1 :]])


def near_misses(rng: random.Random, base: Film) -> list[tuple[str, str, int]]:
    """(kind, other title, year) of films that are not `base` but are named almost like it."""
    title, year = base.title, base.year
    words = title.split()
    near = year + rng.choice((0, 0, 1, -1))
    out: list[tuple[str, str, int]] = [
        ("sequel_number", f"{title} {rng.choice(('2', 'II', 'Part 2', '3'))}", year + 1),
        ("sequel_word", f"{title} {rng.choice(EXTRA_WORDS)}", near),
    ]
    inner = _content_words(title)
    if len(words) >= 2:
        at = rng.randint(1, len(words) - 1)
        inserted = [*words[:at], rng.choice(EXTRA_WORDS), *words[at:]]
        out.append(("extra_word", " ".join(inserted), near))
    if len(inner) >= 2:
        drop = rng.choice(inner)
        out.append(("missing_word", " ".join(w for i, w in enumerate(words) if i != drop), near))
    swapped = _swap_close_word(rng, title)
    if swapped is not None:
        out.append(("close_word", swapped, near))
    if inner:
        i = rng.choice(inner)
        word = _core(words[i])[0]
        if word.endswith("'s"):
            plural = word[:-2]
        else:
            plural = word[:-1] if word.endswith("s") else f"{word}s"
        out.append(("plural", _with_word(words, i, plural), near))
        if len(word) >= 4 and word[-2].isalpha():
            out.append(("last_letter_dropped", _with_word(words, i, word[:-1]), near))
    numbers = [i for i, w in enumerate(words) if _core(w)[0].isdigit()]
    if numbers:
        i = rng.choice(numbers)
        other = str(int(_core(words[i])[0]) + rng.choice((1, 2, 5)))
        out.append(("number_changed", _with_word(words, i, other), near))
    return out


# The pairs the issue found merged in a real catalog, each with its real year.
ISSUE_EXAMPLES = (
    ("The Brothers", 2001, "Brother", 2001),
    ("The Wood", 1999, "Woo", 1998),
    ("I Know What You Did Last Summer", 1997, "I Still Know What You Did Last Summer", 1998),
    ("The Work and the Story", 2003, "The Work and the Glory", 2004),
)


def build_corpus(seed: int = 10, generated_titles: int = 150) -> list[Pair]:
    rng = random.Random(seed)
    pairs: list[Pair] = []
    for title in _base_titles(rng, generated_titles):
        base = _film(rng, title)
        for kind, variant, year in true_variants(rng, base):
            same = Film(variant, year, base.runtime, base.credits)
            runtime = rng.choice((base.runtime, base.runtime, base.runtime + 2, None))
            credits = rng.choice((base.credits[:2], base.credits[1:], ()))
            pairs.append(Pair(kind, True, base, same, base.runtime, runtime, base.credits, credits))
        for kind, other_title, year in near_misses(rng, base):
            other = _film(rng, other_title, year)
            pairs.append(
                Pair(
                    kind,
                    False,
                    base,
                    other,
                    rng.choice((base.runtime, None)),
                    rng.choice((other.runtime, None)),
                    rng.choice((base.credits, ())),
                    rng.choice((_people(rng, 2, base.credits), ())),
                )
            )
        # A remake a year apart: only the evidence tells it from a re-listing, by its runtime
        # or by its cast.
        remake = _film(rng, title, base.year + 1)
        longer = base.runtime + max(25, base.runtime // 4)
        pairs.append(Pair("remake", False, base, remake, base.runtime, longer, base.credits, ()))
        cast = _people(rng, 2, base.credits)
        pairs.append(Pair("remake_cast", False, base, remake, None, None, base.credits[:2], cast))
    for english, original in TRANSLATED:
        base = replace(_film(rng, english), original_title=original)
        # One platform lists the film under its original title only.
        listed = Film(original, base.year, base.runtime, base.credits)
        runtime = rng.choice((base.runtime, None))
        pairs.append(Pair("original_title", True, base, listed, None, runtime, (), ()))
        # Another film of the same English title, a year apart, with another original title.
        other = replace(_film(rng, english, base.year + 1), original_title=f"{original} II")
        pairs.append(Pair("other_original_title", False, base, other, None, None, (), ()))
    for first, first_year, second, second_year in ISSUE_EXAMPLES:
        a, b = _film(rng, first, first_year), _film(rng, second, second_year)
        pairs.append(Pair("issue_example", False, a, b, a.runtime, b.runtime, (), ()))
        pairs.append(Pair("issue_example", False, a, b, None, None, (), ()))
    return pairs


def _listing(
    film: Film, platform: str, item_id: str, runtime: int | None, credits: tuple[str, ...]
) -> NormalizedItem:
    fields: dict[str, Any] = {
        "platform": platform,
        "platform_item_id": item_id,
        "title": film.title,
        "year": film.year,
        "content_type": film.content_type,
        "runtime": runtime,
        "credits": list(credits),
        "original_title": film.original_title,
    }
    return item(**fields)


def merged(pair: Pair, reverse: bool = False) -> bool:
    """Whether the second listing resolves to the title the first one created."""
    first = _listing(pair.first, "netflix", "a", pair.first_runtime, pair.first_credits)
    second = _listing(pair.second, "hulu", "b", pair.second_runtime, pair.second_credits)
    if reverse:
        first, second = second, first
    index = KnownTitleIndex()
    return assign(first, index).canonical_id == assign(second, index).canonical_id


@dataclass(frozen=True)
class Score:
    true_pairs: int
    near_misses: int
    true_merged: int
    false_merged: int
    missed: Counter[str]  # kinds of true variants kept apart
    wrong: Counter[str]  # kinds of near misses merged
    wrong_examples: list[tuple[str, str]]

    @property
    def precision(self) -> float:
        merged_any = self.true_merged + self.false_merged
        return self.true_merged / merged_any if merged_any else 1.0

    @property
    def recall(self) -> float:
        return self.true_merged / self.true_pairs if self.true_pairs else 1.0

    def report(self) -> str:
        lines = [
            f"resolution on {self.true_pairs} true-variant and {self.near_misses} near-miss "
            "listing pairs (each resolved in both orders):",
            f"  precision {self.precision:.4f}  ({self.false_merged} near misses merged)",
            f"  recall    {self.recall:.4f}  ({self.true_merged} of {self.true_pairs} merged)",
        ]
        if self.wrong:
            lines.append(f"  near misses merged, by kind: {dict(self.wrong)}")
            lines += [f"    {a!r} + {b!r}" for a, b in self.wrong_examples[:10]]
        if self.missed:
            lines.append(f"  true variants kept apart, by kind: {dict(self.missed)}")
        return "\n".join(lines)


def score(pairs: Iterable[Pair]) -> Score:
    true_pairs = near = true_merged = false_merged = 0
    missed: Counter[str] = Counter()
    wrong: Counter[str] = Counter()
    examples: list[tuple[str, str]] = []
    for pair in pairs:
        for reverse in (False, True):
            hit = merged(pair, reverse)
            if pair.same:
                true_pairs += 1
                true_merged += hit
                if not hit:
                    missed[pair.kind] += 1
            else:
                near += 1
                false_merged += hit
                if hit:
                    wrong[pair.kind] += 1
                    examples.append((pair.first.title, pair.second.title))
    return Score(true_pairs, near, true_merged, false_merged, missed, wrong, examples)
