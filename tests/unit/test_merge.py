"""Merging platform items into canonical records: newest non-null wins, per-platform offers."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest

from agents.ingestion.merge import content_changed, merge_into, merge_submitted
from agents.ingestion.normalize import NormalizedItem
from schemas.content import CanonicalContent
from tests.unit.ingestion_factories import T0, at, content, item

CID = uuid.UUID(int=42)
SUB_US = {"availability_type": "subscription", "regions": ["US"]}


def netflix(**overrides: Any) -> NormalizedItem:
    data: dict[str, Any] = {
        "platform": "netflix",
        "platform_item_id": "80",
        "title": "The Matrix",
        "year": 1999,
        "runtime": "2h 16m",
        "description": "A hacker learns the truth.",
        "rating": 8.7,
        "rating_count": 1000,
        "popularity": 50,
        "external_ids": {"imdb": "tt0133093"},
        "availability": [SUB_US],
        "keywords": ["hacker", "Simulation"],
        "source_updated_at": at(1),
    }
    data.update(overrides)
    return item(**data)


def hulu(**overrides: Any) -> NormalizedItem:
    data: dict[str, Any] = {
        "platform": "hulu",
        "platform_item_id": "h-1",
        "title": "Matrix, The",
        "year": 1999,
        "external_ids": {"eidr": "10.5240/7791-8534-2C23-9030-8610-5", "tmdb": 603},
        "availability": [{"availability_type": "subscription", "regions": ["us", "ca"]}],
        "keywords": ["simulation", "kung fu"],
        "popularity": 80,
        "source_updated_at": at(2),
    }
    data.update(overrides)
    return item(**data)


def merged(*items: NormalizedItem, genres: list[str] | None = None) -> CanonicalContent:
    record: CanonicalContent | None = None
    for it in items:
        record = merge_into(record, it, CID, ["action"] if genres is None else genres)
    assert record is not None
    return record


def test_new_record_from_one_item() -> None:
    record = merged(netflix(), genres=["science_fiction", "action"])
    assert record.canonical_id == CID
    assert (record.title, record.release_year, record.runtime_minutes) == ("The Matrix", 1999, 136)
    assert record.genres == ["action", "science_fiction"]
    assert record.source_platforms == ["netflix"]
    assert record.external_ids.platform_ids == {"netflix": "80"}
    assert record.external_ids.imdb == "tt0133093"
    assert record.updated_at == netflix().source_updated_at
    assert record.keywords == ["hacker", "Simulation"]
    assert [a.platform for a in record.availability] == ["netflix"]
    assert record.alternate_titles == []


def test_fallback_genre_only_when_the_record_would_have_none() -> None:
    assert merged(netflix(), genres=[]).genres == ["drama"]
    assert merged(netflix(content_type="documentary"), genres=[]).genres == ["documentary"]
    record = merge_into(merged(netflix(), genres=["comedy"]), hulu(), CID, [])
    assert record.genres == ["comedy"]


def test_second_platform_unions_ids_platforms_offers_and_keywords() -> None:
    record = merged(netflix(), hulu())
    assert record.source_platforms == ["hulu", "netflix"]
    ids = record.external_ids
    assert (ids.imdb, ids.tmdb) == ("tt0133093", "603")
    assert ids.eidr == "10.5240/7791-8534-2C23-9030-8610-5"
    assert ids.platform_ids == {"hulu": "h-1", "netflix": "80"}
    assert [(a.platform, a.regions) for a in record.availability] == [
        ("hulu", ["CA", "US"]),
        ("netflix", ["US"]),
    ]
    assert record.keywords == ["hacker", "kung fu", "Simulation"]
    assert record.popularity_score == 80
    assert record.updated_at == hulu().source_updated_at


def test_variant_titles_are_kept_as_alternates() -> None:
    disney = hulu(platform="disney_plus", title="The matrix", source_updated_at=at(3))
    record = merged(netflix(), hulu(title="MATRIX"), disney)
    # The newest title wins; the others stay findable, one spelling per case-insensitive title.
    assert record.title == "The matrix"
    assert record.alternate_titles == ["MATRIX"]


def test_availability_is_replaced_only_for_the_items_platform() -> None:
    record = merged(netflix(), hulu())
    update = netflix(
        availability=[
            {"availability_type": "rent", "price_cents": 399, "currency": "USD", "regions": ["GB"]}
        ],
        source_updated_at=at(3),
    )
    after = merge_into(record, update, CID, ["action"])
    assert [(a.platform, a.availability_type.value, a.regions) for a in after.availability] == [
        ("hulu", "subscription", ["CA", "US"]),
        ("netflix", "rental", ["GB"]),
    ]
    gone = merge_into(after, netflix(availability=[], source_updated_at=at(4)), CID, ["action"])
    assert [a.platform for a in gone.availability] == ["hulu"]
    assert gone.source_platforms == ["hulu", "netflix"]


def test_nulls_never_clobber_values() -> None:
    record = merged(netflix())
    update = netflix(
        description=None, runtime=None, rating=None, year=None, source_updated_at=at(5)
    )
    after = merge_into(record, update, CID, ["action"])
    assert after.description == "A hacker learns the truth."
    assert (after.runtime_minutes, after.average_rating, after.release_year) == (136, 8.7, 1999)


def test_newest_source_wins_for_values() -> None:
    after = merged(
        netflix(), hulu(description="Neo wakes up.", runtime=138, rating=9.0, rating_count=5)
    )
    assert (after.description, after.runtime_minutes) == ("Neo wakes up.", 138)
    assert (after.average_rating, after.rating_count) == (9.0, 5)


def test_an_older_source_only_fills_what_is_missing() -> None:
    record = merged(netflix(description=None, maturity_rating=None))
    older = hulu(
        description="Older text",
        maturity_rating="R",
        runtime=999,
        rating=1.0,
        source_updated_at=at(0),
    )
    after = merge_into(record, older, CID, ["action"])
    assert after.description == "Older text"
    assert after.maturity_rating == "R"
    assert (after.runtime_minutes, after.average_rating) == (136, 8.7)
    assert after.updated_at == netflix().source_updated_at


def test_content_type_stays_as_first_resolved() -> None:
    after = merged(netflix(), hulu(content_type="documentary"))
    assert after.content_type == "movie"


def test_merge_order_does_not_matter_for_distinct_clocks() -> None:
    a = netflix(credits=["Keanu Reeves"], images={"poster": "https://a/p.jpg"})
    b = hulu(
        description="Neo wakes up.",
        credits=["Carrie-Anne Moss"],
        images={"backdrop": "https://b/b.jpg"},
    )
    assert merged(a, b) == merged(b, a)


@pytest.mark.parametrize("repeat", [1, 2, 3])
def test_merging_the_same_item_again_changes_nothing(repeat: int) -> None:
    once = merged(netflix(), hulu())
    again = merged(netflix(), hulu(), *([hulu()] * repeat))
    assert again == once
    assert not content_changed(once, again, ignore=())


def test_refusing_a_foreign_record() -> None:
    with pytest.raises(ValueError, match="cannot merge"):
        merge_into(merged(netflix()), hulu(), uuid.UUID(int=7), ["action"])


def test_content_changed() -> None:
    record = merged(netflix())
    assert content_changed(None, record)
    assert not content_changed(record, record.model_copy())
    bumped = merge_into(record, netflix(source_updated_at=at(9)), CID, ["action"])
    assert bumped.updated_at > record.updated_at
    assert not content_changed(record, bumped)  # a newer clock alone is no change
    assert content_changed(record, bumped, ignore=())
    described = merge_into(record, netflix(description="New", source_updated_at=at(9)), CID, [])
    assert content_changed(record, described)
    offers = merge_into(record, netflix(availability=[], source_updated_at=at(9)), CID, [])
    assert content_changed(record, offers)
    genre = merge_into(record, netflix(source_updated_at=at(9)), CID, ["comedy"])
    assert content_changed(record, genre)


def test_offer_order_in_a_feed_is_not_a_change() -> None:
    two = [
        {"availability_type": "rent", "price_cents": 399, "currency": "USD", "regions": ["US"]},
        {"availability_type": "buy", "price_cents": 1499, "currency": "USD", "regions": ["US"]},
    ]
    first = merged(netflix(availability=two))
    second = merge_into(
        first, netflix(availability=two[::-1], source_updated_at=at(9)), CID, ["action"]
    )
    assert not content_changed(first, second)


def test_merged_record_is_valid_and_serializable() -> None:
    record = merged(netflix(), hulu())
    assert CanonicalContent.model_validate_json(record.model_dump_json()) == record
    assert record.updated_at > T0


def test_a_trusted_record_fills_what_it_names_and_keeps_what_it_leaves_empty() -> None:
    offer = {"platform": "netflix", "availability_type": "subscription", "regions": ["US"]}
    held = content(
        title="Feed Title",
        description="From the feed.",
        runtime_minutes=100,
        availability=[offer],
        external_ids={"platform_ids": {"netflix": "n1"}},
        source_platforms=["netflix"],
    )
    newer = content(title="Curated", genres=["drama"], updated_at=T0 + timedelta(hours=1))
    merged = merge_submitted(held, newer, fed={"netflix"})
    assert (merged.title, merged.genres, merged.description) == (
        "Curated",
        ["drama"],
        "From the feed.",
    )
    assert merged.runtime_minutes == 100 and merged.availability == held.availability
    assert merged.external_ids.platform_ids == {"netflix": "n1"}
    assert merged.alternate_titles == ["Feed Title"] and merged.updated_at == newer.updated_at
    # Not newer: nothing changes (a tie keeps the first applied).
    assert merge_submitted(held, newer.model_copy(update={"updated_at": T0}), fed=()) == held
    # A fed platform's offers are the feed's; another platform's are the trusted record's.
    offers = [
        {**offer, "regions": ["FR"]},
        {"platform": "kanopy", "availability_type": "free", "regions": ["CA"]},
    ]
    named = content(availability=offers, updated_at=T0 + timedelta(hours=1))
    merged = merge_submitted(held, named, fed={"netflix"})
    assert {(a.platform, tuple(a.regions)) for a in merged.availability} == {
        ("netflix", ("US",)),
        ("kanopy", ("CA",)),
    }
