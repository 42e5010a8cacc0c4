"""Genre mapping: platform tables, synonyms, messy spellings, fuzzy matches, fallback."""

from __future__ import annotations

import pytest

from agents.ingestion.genres import (
    CANONICAL_GENRES,
    IGNORED,
    PLATFORM_GENRES,
    SYNONYMS,
    canonical_order,
    classify_genres,
    fallback_genres,
    genre_key,
    map_genres,
    map_one,
)
from schemas.content import ContentType


def test_eighteen_canonical_genres_cover_the_mood_mapping() -> None:
    assert len(CANONICAL_GENRES) == 18 == len(set(CANONICAL_GENRES))
    mood_genres = {
        "comedy",
        "family",
        "animation",
        "drama",
        "romance",
        "action",
        "adventure",
        "thriller",
        "documentary",
        "horror",
        "mystery",
        "science_fiction",
    }
    assert mood_genres <= set(CANONICAL_GENRES)


def test_every_table_maps_into_canonical_genres_only() -> None:
    targets = [g for genres in SYNONYMS.values() for g in genres]
    for table in PLATFORM_GENRES.values():
        targets += [g for genres in table.values() for g in genres]
    assert set(targets) <= set(CANONICAL_GENRES)
    assert set(PLATFORM_GENRES) == {
        "netflix",
        "prime_video",
        "disney_plus",
        "hulu",
        "hbo_max",
        "apple_tv_plus",
    }
    assert not set(SYNONYMS) & IGNORED


@pytest.mark.parametrize(
    ("platform", "name", "expected"),
    [
        ("netflix", "Sci-Fi & Fantasy", ["science_fiction", "fantasy"]),
        ("netflix", "Children & Family Movies", ["family"]),
        ("netflix", "Kids' TV", ["family"]),
        ("netflix", "Docuseries", ["documentary"]),
        ("prime_video", "Kids", ["family"]),
        ("prime_video", "Military and War", ["war"]),
        ("prime_video", "Arts, Entertainment, and Culture", ["documentary"]),
        ("hulu", "Rom-Com", ["romance", "comedy"]),
        ("hulu", "Cartoons", ["animation", "family"]),
        ("disney_plus", "Action-Adventure", ["action", "adventure"]),
        ("disney_plus", "Police/Cop", ["crime"]),
        ("disney_plus", "Star Wars", ["science_fiction", "adventure"]),
        ("hbo_max", "Fantasy & Sci-Fi", ["fantasy", "science_fiction"]),
        ("hbo_max", "Suspense", ["thriller"]),
        ("apple_tv_plus", "Sci-Fi & Fantasy", ["science_fiction", "fantasy"]),
    ],
)
def test_platform_tables(platform: str, name: str, expected: list[str]) -> None:
    assert map_genres(platform, [name]) == expected


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("sci-fi  &  FANTASY", ["science_fiction", "fantasy"]),
        ("ACTION & ADVENTURE", ["action", "adventure"]),
        ("Action/Adventure", ["action", "adventure"]),
        ("action and adventure", ["action", "adventure"]),
        ("Crime & Mystery", ["crime", "mystery"]),
        ("Horror Movies", ["horror"]),
        ("TV Dramas", ["drama"]),
        ("Comedies", ["comedy"]),
        ("Documentaries", ["documentary"]),
        ("Westerns", ["western"]),
        ("Musicals", ["music"]),
        ("  drama ", ["drama"]),
        ("Romantic Drama", ["romance", "drama"]),
        ("Psychological Thriller", ["thriller"]),
        ("Teen Comedy", ["comedy"]),
        ("War & Politics", ["war"]),
        ("Film-Noir", ["crime"]),
        ("Biography", ["drama", "history"]),
        ("Anime", ["animation"]),
    ],
)
def test_messy_spellings(name: str, expected: list[str]) -> None:
    assert map_genres("some_new_platform", [name]) == expected


@pytest.mark.parametrize("name", ["sci-fi", "scifi", "Sci Fi", "SCI-FI", "science-fiction", "SF"])
def test_science_fiction_synonyms(name: str) -> None:
    assert map_genres("netflix", [name]) == ["science_fiction"]


def test_suspense_is_thriller() -> None:
    assert map_genres("hulu", ["suspense"]) == ["thriller"]


@pytest.mark.parametrize(
    ("typo", "expected"),
    [
        ("Thriler", "thriller"),
        ("Documentry", "documentary"),
        ("Histroy", "history"),
        ("Comdy", "comedy"),
        ("Dramma", "drama"),
        ("Fantasi", "fantasy"),
    ],
)
def test_fuzzy_match_catches_typos(typo: str, expected: str) -> None:
    assert map_genres("netflix", [typo]) == [expected]


@pytest.mark.parametrize(
    "name", ["Warriors", "Binge-worthy", "Feel-good", "Critically Acclaimed", "zzz", "Political"]
)
def test_names_below_the_fuzzy_threshold_are_unknown(name: str) -> None:
    mapping = classify_genres("netflix", [name])
    assert mapping.genres == ()
    assert mapping.unknown == (name,)


@pytest.mark.parametrize(
    "name",
    [
        "International Movies",
        "Sports",
        "Reality TV",
        "LGBTQ+",
        "Independent",
        "TV Movie",
        "British TV Shows",
    ],
)
def test_known_non_genres_are_dropped_without_being_reported(name: str) -> None:
    mapping = classify_genres("netflix", [name])
    assert (mapping.genres, mapping.unknown) == ((), ())


def test_deduplicated_in_stable_order_with_unknowns_reported() -> None:
    mapping = classify_genres(
        "netflix",
        ["Comedy", "Sci-Fi & Fantasy", "comedies", "Binge-worthy", "Fantasy", "Sports"],
    )
    assert mapping.genres == ("comedy", "science_fiction", "fantasy")
    assert mapping.unknown == ("Binge-worthy",)
    assert mapping.fallback is False


def test_platform_table_wins_over_generic_words() -> None:
    # Generic word by word, "Arts, Entertainment, and Culture" means nothing; Prime says what.
    assert map_genres("netflix", ["Arts, Entertainment, and Culture"]) == []
    assert map_genres("prime_video", ["Arts, Entertainment, and Culture"]) == ["documentary"]


def test_fallback_when_nothing_maps() -> None:
    assert map_genres("netflix", []) == []
    movie = classify_genres("netflix", ["Binge-worthy"], ContentType.movie)
    assert (movie.genres, movie.fallback, movie.unknown) == (("drama",), True, ("Binge-worthy",))
    doc = classify_genres("netflix", [], ContentType.documentary)
    assert doc.genres == ("documentary",)
    assert fallback_genres(ContentType.series) == ["drama"]
    mapped = classify_genres("netflix", ["Horror"], ContentType.movie)
    assert (mapped.genres, mapped.fallback) == (("horror",), False)


def test_genre_key() -> None:
    assert genre_key("Sci-Fi & Fantasy") == "sci fi and fantasy"
    assert genre_key("Kids' TV") == "kids tv"
    assert genre_key("Arts, Entertainment, and Culture") == "arts and entertainment and culture"
    assert genre_key("Action/Adventure") == "action and adventure"
    assert genre_key("Comédie") == "comedie"


def test_map_one_distinguishes_unknown_from_ignored() -> None:
    assert map_one("netflix", "Sports") == ()
    assert map_one("netflix", "Binge-worthy") is None


def test_canonical_order_is_independent_of_input_order() -> None:
    assert canonical_order(["thriller", "action", "thriller", "comedy"]) == [
        "action",
        "comedy",
        "thriller",
    ]
    assert canonical_order(["comedy", "action"]) == canonical_order(["action", "comedy"])
