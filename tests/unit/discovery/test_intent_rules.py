"""The local intent parser: genres, platforms, references, years, moods, themes, fallback."""

from __future__ import annotations

import pytest

from agents.discovery.filters import merge_filters
from agents.discovery.intent_rules import (
    KNOWN_PLATFORMS,
    RULES_CONFIDENCE,
    canonical_genres,
    genres_of,
    parse_intent,
    platform_id,
)
from schemas.discovery import YEAR_MAX, YEAR_MIN, SearchFilters


def test_the_issue_example() -> None:
    intent = parse_intent("something funny and animated like Shrek on Netflix from the 2000s")
    assert intent.mood == ["happy"]
    assert "animation" in intent.filters.genres
    assert intent.references == ["Shrek"]
    assert intent.filters.platforms == ["netflix"]
    assert intent.filters.year_range == (2000, 2009)
    assert intent.source == "rules"
    assert intent.confidence == RULES_CONFIDENCE == 0.5
    # Moods stay soft: "funny" does not put comedy into the hard genre filter.
    assert intent.filters.genres == ["animation"]
    assert intent.fallback_query == "funny animated Shrek"
    assert intent.themes == []


@pytest.mark.parametrize(
    ("query", "genres"),
    [
        ("sci-fi", ["science_fiction"]),
        ("Sci Fi movies", ["science_fiction"]),
        ("science fiction", ["science_fiction"]),
        ("thrillers", ["thriller"]),
        ("documentaries", ["documentary"]),
        ("westerns", ["western"]),
        ("comedies", ["comedy"]),
        ("horror movies", ["horror"]),
        ("animated", ["animation"]),
        ("anime", ["animation"]),
        ("romantic comedy", ["comedy", "romance"]),
        ("rom-com", ["comedy", "romance"]),
        ("sci fi and fantasy", ["fantasy", "science_fiction"]),
        ("true crime docuseries", ["crime", "documentary"]),
        ("superhero films", ["action", "fantasy"]),
        ("whodunit", ["mystery"]),
        ("war films", ["war"]),
        ("90's cartoons", ["animation", "family"]),
        ("something for kids", ["family"]),
    ],
)
def test_genre_words_map_to_canonical_genres(query: str, genres: list[str]) -> None:
    assert parse_intent(query).filters.genres == genres


@pytest.mark.parametrize(
    ("query", "platforms"),
    [
        ("comedies on Netflix", ["netflix"]),
        ("sci-fi on prime", ["prime_video"]),
        ("sci-fi on amazon", ["prime_video"]),
        ("anything on Amazon Prime Video", ["prime_video"]),
        ("amazon prime thrillers", ["prime_video"]),
        ("prime video dramas", ["prime_video"]),
        ("hbo dramas", ["hbo_max"]),
        ("HBO Max dramas", ["hbo_max"]),
        ("dramas on max", ["hbo_max"]),
        ("disney+ cartoons", ["disney_plus"]),
        ("Disney Plus", ["disney_plus"]),
        ("hulu originals", ["hulu"]),
        ("apple tv+ series", ["apple_tv_plus"]),
        ("apple tv comedies", ["apple_tv_plus"]),
        ("on netflix or prime", ["netflix", "prime_video"]),
        ("netflix, hulu or max", ["hbo_max", "hulu", "netflix"]),
    ],
)
def test_platform_words_map_to_ingestion_platform_ids(query: str, platforms: list[str]) -> None:
    intent = parse_intent(query)
    assert intent.filters.platforms == platforms
    assert set(intent.filters.platforms) <= KNOWN_PLATFORMS


@pytest.mark.parametrize(
    "query",
    [
        "max 90 minutes comedy",
        "a prime example of noir",
        "documentaries about the amazon rainforest",
        "apple orchards",
    ],
)
def test_platform_words_that_are_also_english_need_a_preposition(query: str) -> None:
    assert parse_intent(query).filters.platforms == []


def test_an_ambiguous_platform_word_after_on_is_a_platform() -> None:
    assert parse_intent("comedies on prime").filters.platforms == ["prime_video"]
    assert parse_intent("documentaries about the amazon on amazon").filters.platforms == [
        "prime_video"
    ]


def test_known_platforms_are_the_ingestion_ids() -> None:
    assert {
        "netflix",
        "prime_video",
        "disney_plus",
        "hulu",
        "hbo_max",
        "apple_tv_plus",
    } == KNOWN_PLATFORMS


@pytest.mark.parametrize(
    ("query", "year_range"),
    [
        ("from the 2000s", (2000, 2009)),
        ("2000s", (2000, 2009)),
        ("90s", (1990, 1999)),
        ("'90s", (1990, 1999)),
        ("the 80's", (1980, 1989)),
        ("1970s", (1970, 1979)),
        ("the eighties", (1980, 1989)),
        ("in the sixties", (1960, 1969)),
        ("the 20s", (1920, 1929)),
        ("the 2010s", (2010, 2019)),
        ("early 90s", (1990, 1993)),
        ("mid-80s", (1984, 1986)),
        ("late 2000s", (2007, 2009)),
        ("between 1990 and 2000", (1990, 2000)),
        ("between 2000 and 1990", (1990, 2000)),
        ("from 1990 to 2000", (1990, 2000)),
        ("1990-2000", (1990, 2000)),
        ("from the seventies to the nineties", (1970, 1999)),
        ("between the 80s and 90s", (1980, 1999)),
        ("80s or 90s", (1980, 1999)),
        ("after 2010", (2011, YEAR_MAX)),
        ("since 2015", (2015, YEAR_MAX)),
        ("from 1990 onwards", (1990, YEAR_MAX)),
        ("after the 90s", (2000, YEAR_MAX)),
        ("before 1980", (YEAR_MIN, 1979)),
        ("pre-2000", (YEAR_MIN, 1999)),
        ("before the 90s", (YEAR_MIN, 1989)),
        ("until 1975", (YEAR_MIN, 1975)),
        ("from 1995", (1995, 1995)),
        ("in 1999", (1999, 1999)),
        ("after 2010 before 2015", (2011, 2014)),
        ("90s movies after 1995", (1996, 1999)),
    ],
)
def test_decades_and_year_ranges(query: str, year_range: tuple[int, int]) -> None:
    assert parse_intent(f"thrillers {query}").filters.year_range == year_range


@pytest.mark.parametrize(
    "query",
    [
        "1917",
        "2012",
        "2001 a space odyssey",
        "like Blade Runner 2049",
        "blade runner 2049",
        "top 10 comedies",
        "like Shrek 2001",
    ],
)
def test_a_number_that_is_likely_a_title_is_not_a_year(query: str) -> None:
    # A year alone or first ("1917", "2001 a space odyssey"), further ahead than listings go
    # ("2049"), or inside a reference, is more likely part of a title.
    assert parse_intent(query, this_year=2026).filters.year_range is None


@pytest.mark.parametrize(
    ("query", "year_range", "words"),
    [
        ("wicker lantern 1973", (1973, 1973), "wicker lantern"),
        ("dune 2021", (2021, 2021), "dune"),
        ("horror 1980 on netflix", (1980, 1980), "horror"),
        ("heist movies 2027", (2027, 2027), "heist"),  # announced for next year
        ("thrillers 1995 1999", (1995, 1999), "thrillers"),
    ],
)
def test_a_bare_year_after_words_is_the_release_year(
    query: str, year_range: tuple[int, int], words: str
) -> None:
    intent = parse_intent(query, this_year=2026)
    assert intent.filters.year_range == year_range
    assert intent.fallback_query == words


def test_year_words_are_not_left_in_the_fallback_query() -> None:
    intent = parse_intent("horror from the 80s on hulu")
    assert intent.fallback_query == "horror"
    assert intent.themes == []


@pytest.mark.parametrize(
    ("query", "references"),
    [
        ("like Shrek", ["Shrek"]),
        ("something like Shrek on Netflix", ["Shrek"]),
        ("like Shrek from the 2000s", ["Shrek"]),
        ("like Shrek 90s", ["Shrek"]),
        ("movies similar to The Matrix", ["The Matrix"]),
        ("similar to Breaking Bad but funnier", ["Breaking Bad"]),
        ("in the style of Wes Anderson on disney+", ["Wes Anderson"]),
        ("like Mad Max on max", ["Mad Max"]),
        ("like shrek or toy story", ["shrek", "toy story"]),
        ("something like Pride and Prejudice", ["Pride and Prejudice"]),
        ("like Blade Runner 2049", ["Blade Runner 2049"]),
        ("like The Office, but darker", ["The Office"]),
        ('something like "Toy Story" on disney plus', ["Toy Story"]),
        ("like Mr. Robot on hulu", ["Mr. Robot"]),
        ("like a Pixar movie", ["Pixar"]),
        ("Like Funny People", ["Funny People"]),
        ("like Shrek and funny", ["Shrek"]),
        ("reminds me of Amélie", ["Amélie"]),
    ],
)
def test_like_x_gives_references(query: str, references: list[str]) -> None:
    assert parse_intent(query).references == references


@pytest.mark.parametrize(
    "query",
    ["I like horror", "I would like something scary", "movies i like", "stuff like horror"],
)
def test_like_as_a_verb_or_before_a_genre_is_no_reference(query: str) -> None:
    assert parse_intent(query).references == []


def test_a_reference_title_is_not_read_for_platforms_or_moods() -> None:
    intent = parse_intent("like Mad Max")
    assert intent.references == ["Mad Max"]
    assert intent.filters.platforms == []
    funny = parse_intent("like Funny People")
    assert funny.mood == []


def test_reference_and_the_rest_of_the_query() -> None:
    intent = parse_intent("like Shrek or horror")
    assert intent.references == ["Shrek"]
    assert intent.filters.genres == ["horror"]


@pytest.mark.parametrize(
    ("query", "moods"),
    [
        ("something cheerful", ["happy"]),
        ("a feel-good movie", ["happy"]),
        ("feel good", ["happy"]),
        ("something scary", ["scared"]),
        ("a sad romantic drama", ["sad", "romantic"]),
        ("cozy mysteries", ["relaxed"]),
        ("mind-bending and thought-provoking", ["curious"]),
        ("classics", ["nostalgic"]),
        ("pumped up action", ["excited"]),
    ],
)
def test_mood_words_map_to_mood_families(query: str, moods: list[str]) -> None:
    assert parse_intent(query).mood == moods


def test_moods_do_not_become_hard_genres() -> None:
    intent = parse_intent("something scary and romantic")
    assert intent.mood == ["scared", "romantic"]
    assert intent.filters.genres == []


def test_negated_genres_and_moods_are_dropped() -> None:
    intent = parse_intent("nothing too scary for kids")
    assert intent.mood == []
    assert intent.filters.genres == ["family"]
    assert "scary" not in intent.fallback_query
    no_romance = parse_intent("no romance please, action on hulu")
    assert no_romance.filters.genres == ["action"]
    assert no_romance.filters.platforms == ["hulu"]
    assert no_romance.fallback_query == "action"


def test_themes_are_leftover_content_words_kept_together() -> None:
    intent = parse_intent("time travel movies about revenge")
    assert intent.themes == ["time travel", "revenge"]
    assert intent.fallback_query == "time travel revenge"
    assert intent.filters.genres == []


def test_themes_skip_stop_words_and_filter_words() -> None:
    intent = parse_intent("I want to watch a heist movie set in Paris on Netflix")
    assert intent.filters.genres == ["crime", "thriller"]
    assert intent.themes == ["paris"]
    assert intent.filters.platforms == ["netflix"]
    assert intent.fallback_query == "heist Paris"


def test_a_combined_query() -> None:
    intent = parse_intent(
        "feel-good sci-fi similar to The Martian on apple tv+ between 2010 and 2020 about space"
    )
    assert intent.mood == ["happy"]
    assert intent.filters.genres == ["science_fiction"]
    assert intent.references == ["The Martian"]
    assert intent.filters.platforms == ["apple_tv_plus"]
    assert intent.filters.year_range == (2010, 2020)
    assert intent.themes == ["space"]
    assert intent.fallback_query == "feel-good sci-fi The Martian space"


@pytest.mark.parametrize("query", ["", "   ", "?!", "the and of", "on netflix from the 90s"])
def test_queries_with_nothing_to_search_leave_an_empty_fallback(query: str) -> None:
    intent = parse_intent(query)
    assert intent.fallback_query == ""
    assert intent.themes == []
    assert intent.references == []


def test_a_plain_title_query_is_kept_whole() -> None:
    intent = parse_intent("Spirited Away")
    assert intent.fallback_query == "Spirited Away"
    assert intent.themes == ["spirited away"]
    assert intent.filters == type(intent.filters)()


def test_parse_intent_never_raises_on_odd_input() -> None:
    for query in ["like", "like on netflix", "similar to", "from", "between 1990 and", "x" * 600]:
        parse_intent(query)


def test_vocabulary_helpers() -> None:
    assert platform_id("Disney+") == "disney_plus"
    assert platform_id("HBO") == "hbo_max"
    assert platform_id("peacock") is None
    assert genres_of("Sci-Fi") == ("science_fiction",)
    assert genres_of("mysteries") == ("mystery",)
    # No fuzzy matching on free text: "time" is not "crime".
    assert genres_of("time") is None
    assert canonical_genres(["sci_fi", "Science Fiction", "comedy", "made_up"]) == [
        "science_fiction",
        "comedy",
        "made_up",
    ]


FILMS = ["documentary", "movie", "short", "special"]


@pytest.mark.parametrize(
    ("query", "kinds"),
    [
        ("series", ["series"]),
        ("tv shows", ["series"]),
        ("a TV show", ["series"]),
        ("comedy series on netflix", ["series"]),
        ("90s movies", FILMS),
        ("crime films from the 80s", FILMS),
        # Words left to search for: the kind word is a plain word, never a filter.
        ("Series 7: The Contenders", []),
        ("series 7", []),
        ("breaking bad series", []),
        ("movies like Heat", []),
        # Both kinds named, or none.
        ("movies and shows", []),
        ("show me comedies", []),
        ("drama", []),
    ],
)
def test_a_query_made_of_filters_asks_for_a_kind_of_title(query: str, kinds: list[str]) -> None:
    assert parse_intent(query).filters.content_types == kinds


def test_the_request_s_content_types_win_over_the_query_s() -> None:
    intent = parse_intent("tv shows")
    asked = merge_filters(SearchFilters(content_types=["movie"]), intent)
    assert asked.content_types == ["movie"]
    assert merge_filters(SearchFilters(), intent).content_types == ["series"]
