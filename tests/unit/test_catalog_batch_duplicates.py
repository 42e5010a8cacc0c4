"""What a producer is told of a batch beyond each item's own schema: two items of one platform
item (both accepted, one stored: the others get a `superseded_in_batch` warning naming the
winner), a clock far in the future (rejected: it would win for good), a title of only
invisible characters (rejected: it was stored as a title nobody can see)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

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


def test_a_clock_more_than_a_day_ahead_is_rejected_naming_the_field() -> None:
    now = datetime(2026, 12, 7, 6, 0, tzinfo=UTC)
    batch = [
        item("soon", "Skewed", "2026-12-07T20:00:00"),  # local time read as UTC: kept
        item("typo", "Typo", "2062-12-01T00:00:00Z"),
    ]
    valid, rejected = validate_items(batch, "netflix", now=now)
    assert [checked.index for checked in valid] == [0]
    (refused,) = rejected
    assert refused.index == 1 and refused.errors[0].field == "source_updated_at"
    assert "more than a day ahead" in refused.errors[0].reason


@pytest.mark.parametrize("title", ["\u200b\u200b", "\u200e \ufeff", "\u2060"])
def test_a_title_of_only_invisible_characters_is_rejected(title: str) -> None:
    valid, rejected = validate_items([item("zw", title)], "netflix")
    assert not valid
    (error,) = rejected[0].errors
    assert error.field == "title" and "no visible character" in error.reason


def test_zero_width_joiners_inside_a_visible_title_are_kept() -> None:
    family = "Family \U0001f468\u200d\U0001f469\u200d\U0001f467"
    valid, _ = validate_items([item("zwj", family)], "netflix")
    assert valid[0].item.title == family


def test_an_invisible_original_title_is_no_original_title() -> None:
    raw = {**item("ot", "Visible"), "original_title": "\u200b"}
    (checked,), _ = validate_items([raw], "netflix")
    assert checked.item.original_title is None
