"""Two items of one platform item in one batch: both are accepted, one is stored. The others
are told so (a `superseded_in_batch` warning naming the item that wins), not just "accepted"."""

from __future__ import annotations

from agreements.catalog_producer import validate_items
from agreements.catalog_warnings import SUPERSEDED_IN_BATCH

CLOCK = "2026-12-01T00:00:00Z"
LATER = "2026-12-02T00:00:00Z"


def item(item_id: str | int, title: str, clock: str = CLOCK) -> dict[str, object]:
    return {
        "platform_item_id": item_id,
        "title": title,
        "content_type": "movie",
        "source_updated_at": clock,
    }


def superseded(batch: list[dict[str, object]]) -> dict[int, str]:
    valid, rejected = validate_items(batch, "netflix")
    assert not rejected
    return {
        checked.index: warning.message
        for checked in valid
        for warning in checked.warnings
        if warning.kind == SUPERSEDED_IN_BATCH
    }


def test_of_a_tie_the_first_is_stored_and_the_second_is_told() -> None:
    warned = superseded([item("a", "Dup A"), item("b", "Other"), item("a", "Dup B")])
    assert list(warned) == [2]
    assert "item 0 of this batch" in warned[2] and "netflix:a" in warned[2]
    assert "same source_updated_at" in warned[2]


def test_the_newest_clock_wins_wherever_it_is_in_the_batch() -> None:
    warned = superseded([item("a", "Old"), item("a", "New", LATER), item("a", "Old again")])
    assert sorted(warned) == [0, 2]
    assert all("item 1 of this batch" in message for message in warned.values())
    assert "a newer source_updated_at" in warned[0]


def test_one_item_id_spelt_as_a_number_and_a_string_is_one_platform_item() -> None:
    assert list(superseded([item(5, "Number"), item("5", "String")])) == [1]


def test_distinct_items_are_not_warned() -> None:
    assert superseded([item("a", "A"), item("b", "B"), item("c", "C", LATER)]) == {}
