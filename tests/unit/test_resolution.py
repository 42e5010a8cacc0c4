"""Entity resolution: id order, fuzzy titles with guards, deterministic ids, batch behaviour."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from agents.ingestion.normalize import NormalizedItem, normalize_item
from agents.ingestion.resolution import (
    NAMESPACE,
    KnownTitle,
    KnownTitleIndex,
    assign,
    identity_key,
    lookup_keys,
    new_canonical_id,
    resolve,
    resolve_by_embedding,
    title_confidence,
    title_numbers,
    title_similarity,
)
from agents.ingestion.title_match import runtimes_agree
from schemas.content import ContentType, ExternalIds
from tests.unit.ingestion_factories import content, item

EIDR = "10.5240/7791-8534-2C23-9030-8610-5"
EIDR2 = "10.5240/0000-1111-2222-3333-4444-Z"

_counter = iter(range(1, 10_000))


def listing(platform: str = "netflix", **overrides: Any) -> NormalizedItem:
    """An item with a fresh platform id unless one is given."""
    overrides.setdefault("platform_item_id", f"id{next(_counter)}")
    return item(platform=platform, **overrides)


def index_of(*entries: tuple[uuid.UUID, NormalizedItem]) -> KnownTitleIndex:
    return KnownTitleIndex(KnownTitle.from_item(cid, it) for cid, it in entries)


A, B, C = uuid.UUID(int=0xA), uuid.UUID(int=0xB), uuid.UUID(int=0xC)


# --- id steps -----------------------------------------------------------------------------------


def test_eidr_match_has_full_confidence() -> None:
    index = index_of((A, listing(title="Something Else", external_ids={"eidr": EIDR})))
    found = resolve(listing("hulu", external_ids={"eidr": EIDR.lower()}), index)
    assert (found.canonical_id, found.method, found.confidence) == (A, "eidr", 1.0)


def test_eidr_beats_a_fuzzy_title_match() -> None:
    index = index_of(
        (A, listing(title="The Matrix", year=1999)),
        (B, listing(title="Matrix (Remastered)", year=2021, external_ids={"eidr": EIDR})),
    )
    newcomer = listing("hulu", title="The Matrix", year=1999, external_ids={"eidr": EIDR})
    found = resolve(newcomer, index)
    assert (found.canonical_id, found.method) == (B, "eidr")


@pytest.mark.parametrize(
    ("ids", "method"),
    [({"imdb": "tt0133093"}, "imdb"), ({"tmdb": 603}, "tmdb")],
)
def test_imdb_and_tmdb_match_with_099(ids: dict, method: str) -> None:
    index = index_of((A, listing(title="Other title", year=1980, external_ids=ids)))
    found = resolve(listing("prime_video", external_ids=ids), index)
    assert (found.canonical_id, found.method, found.confidence) == (A, method, 0.99)


def test_imdb_is_tried_before_tmdb() -> None:
    index = index_of(
        (A, listing(external_ids={"tmdb": 603})),
        (B, listing(title="Other", external_ids={"imdb": "tt0133093"})),
    )
    found = resolve(listing(external_ids={"tmdb": 603, "imdb": "tt0133093"}), index)
    assert (found.canonical_id, found.method) == (B, "imdb")


def test_tmdb_ids_are_per_media_kind() -> None:
    index = index_of((A, listing(title="Some Movie", year=2001, external_ids={"tmdb": 603})))
    series = listing(title="A Series", year=2015, content_type="series", external_ids={"tmdb": 603})
    assert resolve(series, index).canonical_id is None


def test_a_weaker_id_does_not_match_a_title_whose_stronger_id_differs() -> None:
    index = index_of((A, listing(external_ids={"eidr": EIDR, "imdb": "tt0133093"})))
    found = resolve(listing(external_ids={"eidr": EIDR2, "imdb": "tt0133093"}), index)
    assert found.canonical_id is None


# --- fuzzy titles -------------------------------------------------------------------------------


@pytest.mark.parametrize("variant", ["Matrix, The", "The Matrix (1999)", "THE MATRIX", "Matrix"])
def test_title_variants_resolve_to_the_same_title(variant: str) -> None:
    index = index_of((A, listing(title="The Matrix", year=1999)))
    found = resolve(listing("hulu", title=variant, year=1999), index)
    assert (found.canonical_id, found.method, found.confidence) == (A, "title", 0.98)


@pytest.mark.parametrize(
    ("year", "matches"), [(1998, True), (2000, True), (1997, False), (2001, False)]
)
def test_year_tolerance_is_one(year: int, matches: bool) -> None:
    index = index_of((A, listing(title="The Matrix", year=1999)))
    found = resolve(listing("hulu", title="The Matrix", year=year), index)
    assert (found.canonical_id == A) is matches


def test_series_and_movie_with_the_same_title_do_not_merge() -> None:
    index = index_of((A, listing(title="Fargo", year=2014, content_type="movie")))
    series = listing("hulu", title="Fargo", year=2014, content_type="TV Series")
    assert resolve(series, index).canonical_id is None


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("Kill Bill: Vol. 1", "Kill Bill: Vol. 2"),
        ("Rocky II", "Rocky III"),
        ("Toy Story 2", "Toy Story"),
        ("Ocean's Eleven", "Ocean's Eleven 2"),
    ],
)
def test_sequels_never_fuzzy_match(first: str, second: str) -> None:
    index = index_of((A, listing(title=first, year=2003)))
    assert resolve(listing("hulu", title=second, year=2004), index).canonical_id is None


def test_roman_and_arabic_numbers_are_the_same_number() -> None:
    assert title_numbers("rocky ii") == title_numbers("rocky 2") == (2,)
    index = index_of((A, listing(title="Rocky II", year=1979)))
    assert resolve(listing("hulu", title="Rocky 2", year=1979), index).canonical_id == A


def test_a_title_contained_in_another_does_not_match() -> None:
    index = index_of((A, listing(title="Alien", year=1986)))
    versus = listing("hulu", title="Alien vs Predator", year=1986)
    assert resolve(versus, index).canonical_id is None


def test_typo_that_reorders_sorted_words_still_matches() -> None:
    index = index_of((A, listing(title="The Tempest of Tasmania", year=2015)))
    found = resolve(listing("hulu", title="The Tempest of Tsamania", year=2015), index)
    assert found.canonical_id == A
    assert 0.90 <= found.confidence < 0.98


def test_similarity_threshold_and_confidence_scale() -> None:
    assert title_confidence(0.85) == 0.90
    assert title_confidence(1.0) == 0.98
    assert title_confidence(0.80) == 0.90  # clamped; below threshold never reaches it anyway
    assert title_confidence(0.9) < title_confidence(0.95) < title_confidence(1.0)
    # Just below the threshold: rejected.
    assert title_similarity("silent harbor", "sudden harbor") < 0.85
    index = index_of((A, listing(title="Silent Harbor", year=2010)))
    assert resolve(listing("hulu", title="Sudden Harbor", year=2010), index).canonical_id is None


def test_conflicting_ids_block_a_title_match() -> None:
    known = listing(title="The Matrix", year=1999, external_ids={"imdb": "tt0133093"})
    index = index_of((A, known))
    other = listing("hulu", title="The Matrix", year=1999, external_ids={"imdb": "tt9999999"})
    assert resolve(other, index).canonical_id is None


def test_a_platform_listing_two_items_keeps_them_apart() -> None:
    index = index_of((A, listing("netflix", title="The Office", year=2005, platform_item_id="1")))
    twin = listing("netflix", title="The Office", year=2005, platform_item_id="2")
    assert resolve(twin, index).canonical_id is None


def test_closest_title_wins_then_exact_year_then_smallest_id() -> None:
    index = index_of(
        (B, listing(title="The Matrix", year=1998)),
        (A, listing(title="The Matrix", year=1999)),
        (C, listing(title="The Matrixx", year=1999)),
    )
    assert resolve(listing("hulu", title="The Matrix", year=1999), index).canonical_id == A
    # Same similarity and year: the smallest id, whatever the insertion order.
    for order in ((A, B), (B, A)):
        tied = index_of(*((cid, listing(title="Heat", year=1995)) for cid in order))
        assert resolve(listing("hulu", title="Heat", year=1995), tied).canonical_id == A


def test_alternate_titles_of_stored_content_are_matched() -> None:
    stored = content(
        canonical_id=A, title="Léon", alternate_titles=["The Professional"], release_year=1994
    )
    index = KnownTitleIndex([KnownTitle.from_content(stored)])
    assert resolve(listing("hulu", title="Professional, The", year=1994), index).canonical_id == A


# --- missing years ------------------------------------------------------------------------------


def test_yearless_item_matches_a_unique_exact_title() -> None:
    index = index_of((A, listing(title="The Matrix", year=1999)))
    found = resolve(listing("hulu", title="Matrix, The", year=None), index)
    assert (found.canonical_id, found.method, found.confidence) == (A, "title", 0.90)


def test_yearless_item_does_not_fuzzy_match() -> None:
    index = index_of((A, listing(title="The Tempest of Tasmania", year=2015)))
    typo = listing("hulu", title="The Tempest of Tsamania", year=None)
    assert resolve(typo, index).canonical_id is None


def test_yearless_item_with_an_ambiguous_title_is_new() -> None:
    index = index_of((A, listing(title="Dune", year=1984)), (B, listing(title="Dune", year=2021)))
    assert resolve(listing("hulu", title="Dune", year=None), index).canonical_id is None


def test_yearless_match_needs_compatible_runtimes() -> None:
    index = index_of((A, listing(title="Dune", year=1984, runtime=137)))
    remake = listing("hulu", title="Dune", year=None, runtime=155)
    assert resolve(remake, index).canonical_id is None
    assert resolve(listing("hulu", title="Dune", year=None, runtime=140), index).canonical_id == A
    assert resolve(listing("hulu", title="Dune", year=None), index).canonical_id == A
    assert runtimes_agree(None, 90) and runtimes_agree(100, 108) and not runtimes_agree(100, 112)
    assert runtimes_agree(22, 26) and not runtimes_agree(22, 28)


def test_item_with_year_matches_a_unique_yearless_title() -> None:
    index = index_of((A, listing(title="The Matrix", year=None)))
    assert resolve(listing("hulu", title="The Matrix", year=1999), index).canonical_id == A


# --- platform ids and moves ---------------------------------------------------------------------


def test_redelivered_platform_item_resolves_by_its_own_id() -> None:
    index = index_of((A, listing("netflix", title="Teh Matrix", year=1999, platform_item_id="80")))
    renamed = listing("netflix", title="A Different Name", year=1999, platform_item_id="80")
    found = resolve(renamed, index)
    assert (found.canonical_id, found.method, found.confidence, found.previous_id) == (
        A,
        "platform_id",
        0.99,
        None,
    )


def test_item_moving_to_another_title_reports_where_it_was() -> None:
    index = index_of(
        (A, listing("netflix", title="Matrix", year=1999, platform_item_id="80")),
        (B, listing("hulu", title="The Matrix", year=1999, external_ids={"eidr": EIDR})),
    )
    found = resolve(
        listing(
            "netflix", title="Matrix", year=1999, platform_item_id="80", external_ids={"eidr": EIDR}
        ),
        index,
    )
    assert (found.canonical_id, found.method, found.previous_id) == (B, "eidr", A)


# --- deterministic ids and batches --------------------------------------------------------------


@pytest.mark.parametrize(
    ("ids", "content_type", "key"),
    [
        ({"eidr": EIDR, "imdb": "tt0133093", "tmdb": 603}, "movie", f"eidr:{EIDR}"),
        ({"imdb": "tt0133093", "tmdb": 603}, "movie", "imdb:tt0133093"),
        ({"tmdb": 603}, "movie", "tmdb:movie:603"),
        ({"tmdb": 1399}, "series", "tmdb:tv:1399"),
        ({"tvdb": 121361}, "series", "tvdb:tv:121361"),
        ({}, "movie", "netflix:80000001"),
    ],
)
def test_identity_key_order(ids: dict, content_type: str, key: str) -> None:
    it = item(external_ids=ids, content_type=content_type)
    assert identity_key(it) == key
    assert new_canonical_id(it) == uuid.uuid5(NAMESPACE, key)


def test_namespace_is_fixed() -> None:
    # Changing it would re-key every title on the next replay.
    assert NAMESPACE == uuid.UUID("12e23057-e66e-5526-bb90-4b58886f900a")
    assert new_canonical_id(item(external_ids={"imdb": "tt0133093"})) == uuid.UUID(
        "aaa24fae-0c3d-5f05-8940-8716a81ad24a"
    )


def test_same_film_from_two_platforms_in_one_batch_gets_one_id() -> None:
    index = KnownTitleIndex()
    first = assign(listing("netflix", title="The Matrix", year=1999), index)
    second = assign(listing("hulu", title="Matrix, The", year=2000), index)
    third = assign(listing("prime_video", title="The Matrix (1999)", year=None), index)
    assert first.method == "new"
    assert second.canonical_id == third.canonical_id == first.canonical_id
    assert len(index) == 1


def test_ids_learnt_in_a_batch_serve_later_items() -> None:
    index = KnownTitleIndex()
    first = assign(listing("netflix", title="The Matrix", year=1999), index)
    # Matched by title, it teaches the index its IMDb id ...
    with_imdb = listing("hulu", title="The Matrix", year=1999, external_ids={"imdb": "tt0133093"})
    assign(with_imdb, index)
    # ... which then resolves a listing whose title and year alone would not match.
    third = assign(
        listing(
            "prime_video", title="Matrix Reloaded?", year=2003, external_ids={"imdb": "tt0133093"}
        ),
        index,
    )
    assert (third.canonical_id, third.method) == (first.canonical_id, "imdb")


def test_replaying_a_batch_creates_the_same_ids() -> None:
    def batch() -> list[NormalizedItem]:
        return [
            item(platform="netflix", platform_item_id="1", title="The Matrix", year=1999),
            item(
                platform="hulu",
                platform_item_id="2",
                title="Heat",
                year=1995,
                external_ids={"imdb": "tt0113277"},
            ),
            item(platform="hulu", platform_item_id="3", title="Matrix, The", year=1999),
            item(
                platform="disney_plus",
                platform_item_id="4",
                title="Fargo",
                year=2014,
                content_type="series",
                external_ids={"eidr": EIDR},
            ),
        ]

    runs = []
    for _ in range(2):
        index = KnownTitleIndex()
        runs.append([assign(it, index).canonical_id for it in batch()])
    assert runs[0] == runs[1]
    assert runs[0][0] == runs[0][2] == uuid.uuid5(NAMESPACE, "netflix:1")
    assert runs[0][1] == uuid.uuid5(NAMESPACE, "imdb:tt0113277")
    assert runs[0][3] == uuid.uuid5(NAMESPACE, f"eidr:{EIDR}")


def test_minted_id_taken_by_a_contradicting_title_gets_a_distinct_id() -> None:
    newcomer = listing("hulu", title="Brand New", year=2020, external_ids={"imdb": "tt5555555"})
    squatter = KnownTitle(
        canonical_id=new_canonical_id(newcomer),
        content_type=ContentType.movie,
        titles={"something else"},
        year=1950,
        external_ids=ExternalIds(eidr=EIDR),
    )
    index = KnownTitleIndex([squatter])
    found = assign(newcomer, index)
    assert found.method == "new"
    assert found.canonical_id != squatter.canonical_id
    assert found.canonical_id == uuid.uuid5(NAMESPACE, f"imdb:tt5555555|{newcomer.record_key}")


def test_candidate_index_fills_a_missing_year_and_ids() -> None:
    index = index_of((A, listing(title="The Matrix", year=None)))
    index.add(
        KnownTitle.from_item(
            A, listing("hulu", title="The Matrix", year=1999, external_ids={"imdb": "tt0133093"})
        )
    )
    held = index.get(A)
    assert held is not None and held.year == 1999 and held.external_ids.imdb == "tt0133093"
    assert resolve(listing("prime_video", title="Matrix", year=2000), index).canonical_id == A


# --- embeddings ---------------------------------------------------------------------------------


def test_resolve_by_embedding() -> None:
    found = resolve_by_embedding([1.0, 0.0], [(A, [0.0, 1.0]), (B, [0.99, 0.1]), (C, [1.0, 0.05])])
    assert (found.canonical_id, found.method) == (C, "embedding")
    assert 0.99 < found.confidence <= 1.0
    assert resolve_by_embedding([1.0, 0.0], [(A, [0.5, 0.5])]).canonical_id is None
    assert resolve_by_embedding([1.0, 0.0], [(A, [0.5, 0.5])], threshold=0.7).canonical_id == A
    assert resolve_by_embedding([0.0, 0.0], [(A, [1.0, 0.0])]).canonical_id is None
    assert resolve_by_embedding([1.0, 0.0], [(A, [1.0, 0.0, 0.0])]).canonical_id is None
    tie = resolve_by_embedding([1.0, 0.0], [(B, [2.0, 0.0]), (A, [1.0, 0.0])])
    assert tie.canonical_id == A


# --- lookups ------------------------------------------------------------------------------------


def test_lookup_keys_cover_ids_titles_and_year_windows() -> None:
    keys = lookup_keys(
        [
            item(
                platform="netflix",
                platform_item_id="1",
                title="Matrix, The",
                year=1999,
                external_ids={"imdb": "tt0133093", "eidr": EIDR},
            ),
            item(
                platform="hulu",
                platform_item_id="2",
                title="Heat",
                year=None,
                external_ids={"tmdb": 949},
            ),
        ]
    )
    assert keys.eidr == {EIDR} and keys.imdb == {"tt0133093"} and keys.tmdb == {"949"}
    assert keys.platform_ids == {("netflix", "1"), ("hulu", "2")}
    assert keys.titles == {(ContentType.movie, "matrix"), (ContentType.movie, "heat")}
    assert keys.years == {(ContentType.movie, y) for y in (1998, 1999, 2000)}


def test_the_identical_title_shortcut_resolves_as_scoring_every_title_would(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Resolving a messy catalog batch by batch gives the same ids and methods with the
    shortcut for similarity-1.0 titles as with scoring the whole year buckets every time."""
    from agents.ingestion.pipeline import merge_batch, resolve_batch
    from devtools.sample_catalog import generate_sample
    from schemas.ingestion import RawCatalogItem

    sample = generate_sample(600, seed=5)
    items = [normalize_item(RawCatalogItem.model_validate(raw)) for raw in sample.items]

    def run() -> list[tuple[uuid.UUID | None, str, float]]:
        stored: dict[uuid.UUID, Any] = {}
        out = []
        for start in range(0, len(items), 150):
            batch = items[start : start + 150]
            candidates = [KnownTitle.from_content(c) for c in stored.values()]
            resolved = resolve_batch(batch, {}, candidates)
            out += [
                (a.resolution.canonical_id, a.resolution.method, a.resolution.confidence)
                for a in resolved.assignments
            ]
            stored.update(merge_batch(batch, resolved, stored).written)
        return out

    with_shortcut = run()
    assert sum(1 for _, method, confidence in with_shortcut if confidence == 0.98) > 50
    monkeypatch.setattr(KnownTitleIndex, "identical_titles", lambda *_: set())
    assert run() == with_shortcut
