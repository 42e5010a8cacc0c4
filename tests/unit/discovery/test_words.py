"""The typo rules and ranking rules of agents/discovery/words.py, word by word."""

from __future__ import annotations

import pytest

from agents.discovery.words import (
    allowed_typos,
    candidates,
    credit_reason,
    credit_roles,
    deletions,
    match_rank,
    name_form,
    numbers_to_keep,
    rank_titles,
    typos,
)


@pytest.mark.parametrize(
    ("word", "allowed"),
    [("jaws", 0), ("alien", 1), ("stripes", 1), ("godfather", 2), ("interstellar", 2), ("2", 0)],
)
def test_typos_allowed_by_length(word: str, allowed: int) -> None:
    assert allowed_typos(word) == allowed


@pytest.mark.parametrize(
    ("typed", "word", "expected"),
    [
        ("jawz", "jaws", None),  # 4 letters: none
        ("aliem", "alien", 1),  # 5 letters: one
        ("stirpes", "stripes", 1),  # a transposition is one typo, not two
        ("ssripes", "stripes", 1),
        ("sstrpes", "stripes", None),  # two typos in 7 letters: too many
        ("godfahtre", "godfather", 2),  # 9 letters: two
        ("13th", "14th", None),  # a number is never fuzzed
        ("2049", "2048", None),
    ],
)
def test_typos_between_words(typed: str, word: str, expected: int | None) -> None:
    assert typos(typed, word) == expected


def test_a_word_within_its_typos_shares_a_deletion_variant() -> None:
    # The symmetric delete index: catalog words keep 1 deletion from 4 letters, 2 from 7.
    for typed, word in (("stirpes", "stripes"), ("godfahtre", "godfather"), ("aliem", "alien")):
        assert deletions(typed, allowed_typos(typed)) & deletions(word, 2 if len(word) >= 7 else 1)


def index(*vocabulary: str) -> list[tuple[str, str]]:
    return [(v, w) for w in vocabulary for v in deletions(w, 2 if len(w) >= 7 else 1)]


def test_candidates_and_the_last_word_as_a_prefix() -> None:
    found = candidates(
        ["star", "wa"], index("star", "stars", "wars", "way"), ["war", "wars", "way"]
    )
    assert found.matches[0] == {"star": 0}  # "stars" is a typo too many for 4 letters
    assert found.matches[1] == {"war": 0, "wars": 0, "way": 0}
    assert found.completions == {"war", "wars", "way"}


def ranked(query: list[str], titles: list[str], vocabulary: list[str]) -> list[str]:
    words = candidates(
        query, index(*vocabulary), [w for w in vocabulary if w.startswith(query[-1])]
    )
    rows = [(t, t, 0.0) for t in titles]
    return [str(cid) for cid, _ in rank_titles(words, rows)]


def test_an_exact_title_comes_before_a_longer_neighbour() -> None:
    vocabulary = ["stripes", "and", "stars", "big", "fish"]
    assert ranked(["stripes"], ["stripes and stars", "stripes"], vocabulary)[0] == "stripes"
    assert ranked(["big"], ["big fish", "big"], vocabulary) == ["big", "big fish"]


def test_a_number_must_match() -> None:
    vocabulary = ["creepshow", "friday", "13th", "part"]
    assert ranked(["creepshow", "2"], ["creepshow", "creepshow 2"], vocabulary) == ["creepshow 2"]
    assert ranked(["creepshow"], ["creepshow 2", "creepshow"], vocabulary) == [
        "creepshow",
        "creepshow 2",
    ]
    part = ["friday", "the", "13th", "part", "3"]
    titles = ["friday the 13th part 2", "friday the 13th part 3"]
    assert ranked(part, titles, [*vocabulary, "the"]) == ["friday the 13th part 3"]
    # Searched by the words the filters left, a typed number other than a year still counts.
    assert numbers_to_keep(["friday", "13th", "part", "4"], ["friday", "13th", "part"]) == {"4"}
    assert numbers_to_keep(["matrix", "1999"], ["matrix"]) == set()


def test_fewer_typos_then_proximity_then_fewer_extra_words() -> None:
    vocabulary = ["stripes", "strides", "dark", "knight", "the", "returns", "of"]
    # "stripes" exact beats "strides" (one typo away from "stripes").
    assert ranked(["stripes"], ["strides", "stripes"], vocabulary) == ["stripes", "strides"]
    query = candidates(["dark", "knight"], index(*vocabulary))
    near = match_rank(query, "dark knight returns")
    apart = match_rank(query, "knight of the dark")
    assert near is not None and apart is not None and near < apart


def test_every_word_must_match() -> None:
    query = candidates(["something", "creepy", "on"], index("on", "nightmare"))
    assert match_rank(query, "nightmare on elm street") is None


def test_names_and_credits() -> None:
    assert name_form("Émile O'Brien-Smith") == "emile obrien smith"
    assert credit_reason("director", "Steven Spielberg") == "directed by Steven Spielberg"
    assert credit_reason("actor", "Tom Hanks") == "with Tom Hanks"
    assert credit_reason("producer", "Kathleen Kennedy") == "producer: Kathleen Kennedy"
    assert credit_roles(["movies", "by", "steven", "spielberg"]) == ("director", "creator")
    assert credit_roles(["with", "tom", "hanks"]) == ("actor", "cast")
    assert credit_roles(["spielberg"]) is None
