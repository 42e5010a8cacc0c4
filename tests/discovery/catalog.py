"""A small, real-looking catalog for discovery tests: titles people search for, with the
descriptions, genres, years, platforms, regions, ratings and popularity that decide whether a
search should find them. Seeded into PostgreSQL (the titles store) and a vector store (real
all-MiniLM-L6-v2 embeddings of each title's text, as enrichment writes them).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import numpy as np

from agents.adapters.embeddings.base import Embedder, content_text
from agents.adapters.vectors.payload import content_payload
from agents.adapters.vectors.store import VectorPoint, VectorStore
from agents.titles.store import Versioned, upsert_contents
from schemas.content import CanonicalContent

UPDATED = datetime(2026, 1, 1, tzinfo=UTC)
PAST = datetime(2024, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Title:
    title: str
    year: int
    genres: tuple[str, ...]
    description: str
    offers: tuple[tuple[str, tuple[str, ...]], ...]  # (platform, regions)
    maturity: str | None = "PG-13"
    rating: float | None = 7.0
    popularity: float = 10.0
    keywords: tuple[str, ...] = ()
    content_type: str = "movie"
    # Offers that ended: (platform, regions) with available_until in the past.
    ended: tuple[tuple[str, tuple[str, ...]], ...] = field(default=())

    @property
    def canonical_id(self) -> uuid.UUID:
        return uuid.uuid5(uuid.NAMESPACE_URL, f"mgw-test-discovery/{self.title}")

    def content(self, **changes: Any) -> CanonicalContent:
        offers = [
            {"platform": p, "availability_type": "subscription", "regions": list(r)}
            for p, r in self.offers
        ] + [
            {
                "platform": p,
                "availability_type": "subscription",
                "regions": list(r),
                "available_until": PAST.isoformat(),
            }
            for p, r in self.ended
        ]
        data: dict[str, Any] = {
            "canonical_id": str(self.canonical_id),
            "content_type": self.content_type,
            "title": self.title,
            "description": self.description,
            "release_year": self.year,
            "genres": list(self.genres),
            "maturity_rating": self.maturity,
            "average_rating": self.rating,
            "rating_count": int(self.popularity * 1000),
            "popularity_score": self.popularity,
            "keywords": list(self.keywords),
            "availability": offers,
            "updated_at": UPDATED.isoformat(),
        }
        return CanonicalContent.model_validate({**data, **changes})


US, GB = ("US",), ("GB",)
BOTH = ("US", "GB")

CATALOG: tuple[Title, ...] = (
    # --- animated comedies ------------------------------------------------------------------
    Title(
        "Shrek",
        2001,
        ("animation", "comedy", "family", "fantasy"),
        "An ogre's swamp is overrun by fairy-tale creatures, so he sets off with a talkative "
        "donkey to rescue a princess from a dragon-guarded castle.",
        (("netflix", BOTH),),
        "PG",
        7.9,
        80.0,
        ("ogre", "fairy tale", "donkey", "princess"),
    ),
    Title(
        "Shrek 2",
        2004,
        ("animation", "comedy", "family", "fantasy"),
        "The ogre and his princess visit her royal parents in the kingdom of Far Far Away, "
        "where a fairy godmother and Prince Charming plot against them.",
        (("netflix", US),),
        "PG",
        7.3,
        60.0,
        ("ogre", "fairy tale", "donkey", "sequel"),
    ),
    Title(
        "Madagascar",
        2005,
        ("animation", "comedy", "family", "adventure"),
        "Four pampered zoo animals from New York are shipwrecked on the island of Madagascar "
        "and must learn to survive in the wild.",
        (("netflix", US), ("hulu", US)),
        "PG",
        6.9,
        40.0,
        ("zoo", "lion", "zebra", "island"),
    ),
    Title(
        "Kung Fu Panda",
        2008,
        ("animation", "action", "comedy", "family"),
        "A clumsy, noodle-loving panda is chosen as the Dragon Warrior and trains in kung fu "
        "to defend the valley from a vengeful snow leopard.",
        (("prime_video", US),),
        "PG",
        7.6,
        45.0,
        ("panda", "kung fu", "martial arts"),
    ),
    Title(
        "Toy Story",
        1995,
        ("animation", "comedy", "family", "adventure"),
        "A cowboy doll feels threatened when a flashy space ranger action figure becomes his "
        "boy's favourite toy, and the rivals end up lost in the world outside.",
        (("disney_plus", BOTH),),
        "G",
        8.3,
        70.0,
        ("toys", "cowboy", "friendship"),
    ),
    Title(
        "Monsters, Inc.",
        2001,
        ("animation", "comedy", "family", "fantasy"),
        "In a city of monsters powered by children's screams, a top scarer and his one-eyed "
        "friend find a little girl has slipped into their world.",
        (("disney_plus", US),),
        "G",
        8.1,
        55.0,
        ("monsters", "child", "friendship"),
    ),
    Title(
        "Ice Age",
        2002,
        ("animation", "comedy", "family", "adventure"),
        "A mammoth, a sloth and a sabre-toothed tiger journey across a frozen world to return "
        "a human baby to his tribe.",
        (("hulu", US),),
        "PG",
        7.5,
        35.0,
        ("mammoth", "sloth", "ice"),
    ),
    Title(
        "Chicken Run",
        2000,
        ("animation", "comedy", "family", "adventure"),
        "Hens on a Yorkshire farm plot a great escape with the help of a cocky American "
        "rooster before they are turned into pies.",
        (("netflix", GB),),
        "G",
        7.1,
        20.0,
        ("chickens", "escape", "farm", "claymation"),
    ),
    # --- horror -----------------------------------------------------------------------------
    Title(
        "The Shining",
        1980,
        ("horror", "drama"),
        "A writer takes a winter job as caretaker of an isolated mountain hotel, where an evil "
        "presence drives him to violence against his wife and son.",
        (("hbo_max", US),),
        "R",
        8.4,
        50.0,
        ("haunted hotel", "isolation", "madness"),
    ),
    Title(
        "A Nightmare on Elm Street",
        1984,
        ("horror",),
        "Teenagers on one street are stalked and killed in their dreams by a burned man with "
        "knives for fingers.",
        (("netflix", US),),
        "R",
        7.4,
        30.0,
        ("slasher", "dreams", "nightmare"),
    ),
    Title(
        "The Conjuring",
        2013,
        ("horror", "mystery", "thriller"),
        "Paranormal investigators help a family terrorized by a dark, demonic presence in "
        "their secluded farmhouse.",
        (("netflix", BOTH),),
        "R",
        7.5,
        45.0,
        ("haunted house", "demon", "exorcism"),
    ),
    Title(
        "Get Out",
        2017,
        ("horror", "mystery", "thriller"),
        "A young Black man visits his white girlfriend's family estate and uncovers a "
        "terrifying secret about why guests disappear.",
        (("prime_video", US),),
        "R",
        7.7,
        40.0,
        ("suspense", "hypnosis"),
    ),
    Title(
        "Halloween",
        1978,
        ("horror", "thriller"),
        "Fifteen years after murdering his sister, a masked killer escapes an asylum and "
        "stalks a babysitter on Halloween night.",
        # Left Netflix: the offer lists no region any more.
        (("netflix", ()), ("prime_video", US)),
        "R",
        7.7,
        25.0,
        ("slasher", "masked killer"),
    ),
    Title(
        "It Follows",
        2014,
        ("horror", "mystery"),
        "After a sexual encounter, a young woman is pursued by a shape-shifting entity that "
        "only she can see, walking slowly and never stopping.",
        # The offer ended: available_until is in the past.
        (("hulu", US),),
        "R",
        6.8,
        15.0,
        ("curse", "supernatural"),
        ended=(("netflix", US),),
    ),
    # --- drama and crime --------------------------------------------------------------------
    Title(
        "The Shawshank Redemption",
        1994,
        ("drama", "crime"),
        "Two imprisoned men bond over a number of years, finding solace and eventual "
        "redemption through acts of common decency in Shawshank prison.",
        (("netflix", US), ("prime_video", GB)),
        "R",
        9.3,
        90.0,
        ("prison", "friendship", "hope"),
    ),
    Title(
        "The Godfather",
        1972,
        ("crime", "drama"),
        "The aging patriarch of an organized crime dynasty transfers control of his "
        "clandestine empire to his reluctant son.",
        (("prime_video", US),),
        "R",
        9.2,
        85.0,
        ("mafia", "family", "crime boss"),
    ),
    Title(
        "Forrest Gump",
        1994,
        ("drama", "romance", "comedy"),
        "A kind-hearted Alabama man with a low IQ witnesses and unwittingly influences several "
        "defining events of twentieth-century America.",
        (("netflix", GB), ("hulu", US)),
        "PG-13",
        8.8,
        75.0,
        ("life story", "running"),
    ),
    Title(
        "Pulp Fiction",
        1994,
        ("crime", "thriller"),
        "The lives of two mob hitmen, a boxer, a gangster's wife and a pair of diner bandits "
        "intertwine in four tales of violence and redemption.",
        (("hbo_max", US),),
        "R",
        8.9,
        70.0,
        ("hitmen", "nonlinear", "gangsters"),
    ),
    # --- science fiction and superheroes ----------------------------------------------------
    Title(
        "The Matrix",
        1999,
        ("science_fiction", "action"),
        "A computer hacker learns from mysterious rebels that the world he lives in is a "
        "simulated reality and joins their war against its controllers.",
        (("hbo_max", US), ("netflix", GB)),
        "R",
        8.7,
        80.0,
        ("simulation", "hacker", "virtual reality", "dystopia"),
    ),
    Title(
        "Inception",
        2010,
        ("science_fiction", "action", "thriller"),
        "A thief who steals corporate secrets through dream-sharing technology is given the "
        "task of planting an idea into the mind of a CEO.",
        (("netflix", US),),
        "PG-13",
        8.8,
        78.0,
        ("dreams", "heist", "subconscious"),
    ),
    Title(
        "Blade Runner",
        1982,
        ("science_fiction", "thriller"),
        "In a rain-soaked future Los Angeles, a blade runner hunts bioengineered replicants "
        "who have escaped to Earth.",
        (("prime_video", US),),
        "R",
        8.1,
        50.0,
        ("replicants", "dystopia", "cyberpunk"),
    ),
    Title(
        "Interstellar",
        2014,
        ("science_fiction", "adventure", "drama"),
        "A team of explorers travels through a wormhole in space in an attempt to ensure "
        "humanity's survival on a dying Earth.",
        (("prime_video", BOTH),),
        "PG-13",
        8.7,
        75.0,
        ("space travel", "wormhole", "time"),
    ),
    Title(
        "Star Wars",
        1977,
        ("science_fiction", "adventure", "action"),
        "A farm boy joins a Jedi knight, a smuggler and a princess to rescue the galaxy from "
        "the Empire's planet-destroying battle station.",
        (("disney_plus", BOTH),),
        "PG",
        8.6,
        85.0,
        ("space opera", "jedi", "rebels", "empire"),
    ),
    Title(
        "Spider-Man",
        2002,
        ("action", "adventure", "fantasy"),
        "After being bitten by a genetically modified spider, a shy high-school student gains "
        "spider-like abilities and fights the Green Goblin.",
        (("netflix", US), ("disney_plus", GB)),
        "PG-13",
        7.4,
        65.0,
        ("superhero", "spider"),
    ),
    Title(
        "Spider-Man: Into the Spider-Verse",
        2018,
        ("animation", "action", "adventure"),
        "Teen Miles Morales becomes the Spider-Man of his universe and joins spider-powered "
        "heroes from other dimensions.",
        (("netflix", US),),
        "PG",
        8.4,
        60.0,
        ("superhero", "multiverse", "spider"),
    ),
    # --- romance and comedy -----------------------------------------------------------------
    Title(
        "Notting Hill",
        1999,
        ("romance", "comedy"),
        "The life of a shy London bookshop owner changes when a famous American film star "
        "walks into his shop.",
        (("netflix", GB), ("prime_video", US)),
        "PG-13",
        7.2,
        35.0,
        ("love story", "london"),
    ),
    Title(
        "When Harry Met Sally...",
        1989,
        ("romance", "comedy"),
        "Over twelve years of chance meetings in New York, two friends wonder whether men and "
        "women can ever just be friends.",
        (("hulu", US),),
        "R",
        7.7,
        30.0,
        ("friendship", "love story", "new york"),
    ),
    Title(
        "Crazy Rich Asians",
        2018,
        ("romance", "comedy"),
        "A New York economics professor travels to Singapore with her boyfriend and discovers "
        "his family is enormously wealthy and disapproving.",
        (("hbo_max", US),),
        "PG-13",
        6.9,
        40.0,
        ("wedding", "singapore", "family"),
    ),
    Title(
        "Superbad",
        2007,
        ("comedy",),
        "Two co-dependent high-school seniors try to score alcohol for a party before they "
        "part ways for college.",
        (("netflix", US),),
        "R",
        7.6,
        45.0,
        ("teenagers", "party", "friendship"),
    ),
    Title(
        "The Hangover",
        2009,
        ("comedy",),
        "Three friends wake up in Las Vegas after a bachelor party with no memory of the night "
        "and the groom missing.",
        (("hbo_max", US),),
        "R",
        7.7,
        50.0,
        ("las vegas", "bachelor party"),
    ),
    Title(
        "Clueless",
        1995,
        ("comedy", "romance"),
        "A rich, popular Beverly Hills high-school girl plays matchmaker for her classmates "
        "and her teachers.",
        (("prime_video", US),),
        "PG-13",
        6.9,
        25.0,
        ("high school", "matchmaking"),
    ),
    # --- documentary ------------------------------------------------------------------------
    Title(
        "Planet Earth",
        2006,
        ("documentary",),
        "A landmark nature series exploring the planet's habitats, from deserts and jungles "
        "to deep oceans, and the wildlife that lives in them.",
        (("hbo_max", BOTH),),
        "TV-G",
        9.4,
        55.0,
        ("nature", "wildlife", "animals"),
        content_type="series",
    ),
    Title(
        "March of the Penguins",
        2005,
        ("documentary", "family"),
        "Emperor penguins make their yearly march across the Antarctic ice to breed, "
        "enduring the harshest winter on Earth.",
        (("disney_plus", US),),
        "G",
        7.5,
        20.0,
        ("penguins", "antarctica", "nature"),
    ),
    # --- unrated, to test maturity limits ---------------------------------------------------
    Title(
        "Untitled Festival Cut",
        2021,
        ("drama",),
        "An experimental drama that premiered at a film festival, shown here without a rating.",
        (("netflix", US),),
        None,
        None,
        1.0,
        ("festival",),
    ),
)

BY_TITLE = {t.title: t for t in CATALOG}


def ids(*titles: str) -> list[uuid.UUID]:
    return [BY_TITLE[t].canonical_id for t in titles]


def title_of(canonical_id: uuid.UUID) -> str:
    for t in CATALOG:
        if t.canonical_id == canonical_id:
            return t.title
    raise KeyError(canonical_id)


async def seed(
    pool: asyncpg.Pool,
    vectors: VectorStore,
    embedder: Embedder,
    titles: Sequence[Title] = CATALOG,
) -> list[CanonicalContent]:
    """The titles into PostgreSQL and their embeddings into the vector store."""
    contents = [t.content() for t in titles]
    await upsert_contents(pool, [Versioned(c, uuid.uuid4()) for c in contents])
    matrix = await embedder.embed([content_text(c) for c in contents])
    await vectors.upsert(
        [
            VectorPoint(c.canonical_id, np.asarray(v), content_payload(c))
            for c, v in zip(contents, matrix, strict=True)
        ]
    )
    return contents


def later(content: CanonicalContent, **changes: Any) -> CanonicalContent:
    """A newer version of a title with some fields changed."""
    data = content.model_dump(mode="json")
    data.update(changes)
    data["updated_at"] = (content.updated_at + timedelta(days=1)).isoformat()
    return CanonicalContent.model_validate(data)
