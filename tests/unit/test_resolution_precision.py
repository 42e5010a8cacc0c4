"""Resolution precision: different films with close names stay apart, one film's listings merge.

The corpus (tests/unit/resolution_corpus.py) pairs listings of real and generated titles: true
variants of one film (case, spacing, accents, punctuation, a year suffix, articles moved or
dropped, "&"/"and", hyphens, year +-1, one swapped pair of letters, the original title) and near
misses (sequels, a missing, extra or different word, plurals, a dropped letter, another number,
remakes told apart only by runtime or cast, films with other original titles). Run with -s to
see the report; the figures are quoted in docs/INGESTION.md.
"""

from __future__ import annotations

from typing import Any

import pytest

from agents.ingestion.resolution import KnownTitleIndex, assign
from agents.ingestion.title_match import (
    Evidence,
    Relation,
    accepts,
    contradiction,
    is_transposition,
    people,
    relation,
)
from agents.titles.names import normalize_title
from tests.unit.ingestion_factories import item
from tests.unit.resolution_corpus import ISSUE_EXAMPLES, build_corpus, score


@pytest.mark.parametrize("seed", [10, 11])
def test_precision_is_one_and_every_true_variant_still_merges(seed: int) -> None:
    result = score(build_corpus(seed=seed))
    print(result.report())
    assert result.near_misses > 3000 and result.true_pairs > 4500
    assert result.false_merged == 0, result.report()
    assert result.precision == 1.0
    assert result.recall == 1.0, result.report()


def merged(first: dict[str, Any], second: dict[str, Any]) -> bool:
    """Whether the second listing resolves to the title the first created, in either order."""
    outcomes = []
    for a, b in ((first, second), (second, first)):
        index = KnownTitleIndex()
        one = assign(item(platform="netflix", platform_item_id="1", **a), index)
        two = assign(item(platform="hulu", platform_item_id="2", **b), index)
        outcomes.append(one.canonical_id == two.canonical_id)
    assert outcomes[0] == outcomes[1], "resolution depends on arrival order"
    return outcomes[0]


@pytest.mark.parametrize(("first", "first_year", "second", "second_year"), ISSUE_EXAMPLES)
@pytest.mark.parametrize("runtimes", [(None, None), (100, 102)])
def test_the_issues_wrong_merges_stay_apart(
    first: str, first_year: int, second: str, second_year: int, runtimes: tuple
) -> None:
    """Found merged in a real catalog split over two platforms; agreeing runtimes do not make
    them one film either."""
    a = {"title": first, "year": first_year, "runtime": runtimes[0]}
    b = {"title": second, "year": second_year, "runtime": runtimes[1]}
    assert not merged(a, b)


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("The Matrix", "Matrix, The"),
        ("The Matrix", "Matrix"),
        ("Pride and Prejudice", "Pride & Prejudice"),
        ("Crouching Tiger, Hidden Dragon", "Crouching Tiger Hidden Dragon"),
        ("Amélie", "Amelie"),
        ("Schindler's List", "Schindlers List"),
        ("Spider-Man", "Spiderman"),
        ("Spider-Man", "Spider Man"),
        ("Rocky II", "Rocky 2"),
        ("The Matrix", "THE MATRIX (1999)"),
        ("The Tempest of Tasmania", "The Tempest of Tsamania"),
    ],
)
@pytest.mark.parametrize("year_shift", [0, 1, -1])
def test_the_variants_of_one_title_still_merge(first: str, second: str, year_shift: int) -> None:
    a = {"title": first, "year": 1999, "runtime": 136, "credits": ["Keanu Reeves"]}
    b = {"title": second, "year": 1999 + year_shift, "runtime": 138}
    assert merged(a, b)


def test_a_remake_a_year_apart_is_told_apart_by_its_runtime_or_its_cast() -> None:
    original = {"title": "Heat", "year": 1995, "runtime": 170}
    assert not merged(original, {"title": "Heat", "year": 1996, "runtime": 95})
    cast = {"title": "Heat", "year": 1995, "credits": ["Al Pacino", "Robert De Niro"]}
    other_cast = {"title": "Heat", "year": 1996, "credits": ["Jason Statham", "Michael Angarano"]}
    assert not merged(cast, other_cast)
    # One name in common is one film, however the names are spelt.
    same_cast = {"title": "Heat", "year": 1996, "credits": ["ROBERT DE NIRO", "Val Kilmer"]}
    assert merged(cast, same_cast)
    # A single credit each says too little to keep them apart (director vs lead actor).
    assert merged(
        {"title": "Heat", "year": 1995, "credits": ["Michael Mann"]},
        {"title": "Heat", "year": 1995, "credits": ["Al Pacino"]},
    )


def test_original_titles_join_a_translated_listing_and_separate_homonyms() -> None:
    amelie = {"title": "Amelie", "year": 2001, "original_title": "Le Fabuleux Destin d'Amélie"}
    assert merged(amelie, {"title": "Le Fabuleux Destin d'Amelie", "year": 2001})
    other = {"title": "Amelie", "year": 2001, "original_title": "Amelie aus Berlin"}
    assert not merged(amelie, other)


def test_reordered_words_merge_only_with_evidence_for_it() -> None:
    a = {"title": "Man Bites Dog", "year": 1992}
    assert not merged(a, {"title": "Dog Bites Man", "year": 1992})
    assert merged({**a, "runtime": 95}, {"title": "Dog Bites Man", "year": 1992, "runtime": 96})


@pytest.mark.parametrize(
    ("a", "b", "kind"),
    [
        ("The Matrix", "Matrix, The", Relation.same),
        ("Spider-Man", "Spiderman", Relation.joined),
        ("The Tempest of Tasmania", "The Tempest of Tsamania", Relation.typo),
        ("Man Bites Dog", "Dog Bites Man", Relation.reordered),
        ("The Brothers", "Brother", Relation.different),
        ("The Wood", "Woo", Relation.different),
        ("The Work and the Story", "The Work and the Glory", Relation.different),
        (
            "I Know What You Did Last Summer",
            "I Still Know What You Did Last Summer",
            Relation.different,
        ),
        ("Apollo 13", "Apollo 18", Relation.different),
        ("Kill Bill: Vol. 1", "Kill Bill: Vol. 2", Relation.different),
        ("Heats", "Haets", Relation.typo),
        ("Cars", "Cras", Relation.different),  # too short for a swap to be a typo
    ],
)
def test_relation_of_titles(a: str, b: str, kind: Relation) -> None:
    assert relation(normalize_title(a), normalize_title(b)) is kind


def test_transposition_is_one_swapped_adjacent_pair() -> None:
    assert is_transposition("tasmania", "tsamania")
    assert not is_transposition("tasmania", "tasmanai1")
    assert not is_transposition("glory", "story")
    assert not is_transposition("abcdef", "badcef")  # two swaps
    assert not is_transposition("12345", "12354")  # numbers are never typos


def test_evidence_contradictions_name_the_reason() -> None:
    assert contradiction(Evidence(120), Evidence(150)) == "runtimes 120 and 150 min"
    assert contradiction(Evidence(120), Evidence(126)) is None
    a = Evidence(credits=people(["Ana Berg", "Ben Dahl"]))
    b = Evidence(credits=people(["Chloe Eze", "Dev Ito"]))
    assert contradiction(a, b) == "no credited person in common"
    assert contradiction(a, Evidence(credits=people(["ana  berg"]))) is None
    c = Evidence(original_titles=frozenset({"das leben der anderen"}))
    d = Evidence(original_titles=frozenset({"jagten"}))
    assert contradiction(c, d) == "different original titles"
    assert not accepts(Relation.same, c, d)
    assert accepts(Relation.same, c, Evidence())
