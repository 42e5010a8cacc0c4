"""Validation rules of CanonicalContent and PlatformAvailability."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import ValidationError

from schemas.content import (
    AvailabilityType,
    CanonicalContent,
    ContentType,
    ExternalIds,
    PlatformAvailability,
)


def content(**overrides: Any) -> CanonicalContent:
    data: dict[str, Any] = {
        "canonical_id": uuid.uuid4(),
        "content_type": "series",
        "title": "Dark",
        "genres": ["thriller"],
        "updated_at": datetime(2024, 1, 1, tzinfo=UTC),
    }
    data.update(overrides)
    return CanonicalContent.model_validate(data)


def availability(**overrides: Any) -> PlatformAvailability:
    data: dict[str, Any] = {"platform": "netflix", "availability_type": "subscription"}
    data.update(overrides)
    return PlatformAvailability.model_validate(data)


def error_messages(excinfo: pytest.ExceptionInfo[ValidationError]) -> str:
    return " | ".join(error["msg"] for error in excinfo.value.errors())


# --- CanonicalContent ---------------------------------------------------------------------


def test_minimal_content_and_defaults() -> None:
    item = content()

    assert item.content_type is ContentType.series
    assert item.genres == ["thriller"]
    assert item.availability == []
    assert item.external_ids == ExternalIds()
    assert item.rating_count == 0
    assert item.description is None


@pytest.mark.parametrize("field", ["canonical_id", "content_type", "title", "genres", "updated_at"])
def test_required_fields(field: str) -> None:
    data = content().model_dump()
    del data[field]

    with pytest.raises(ValidationError) as excinfo:
        CanonicalContent.model_validate(data)

    assert [(e["loc"], e["type"]) for e in excinfo.value.errors()] == [((field,), "missing")]


def test_genres_need_at_least_one() -> None:
    with pytest.raises(ValidationError) as excinfo:
        content(genres=[])

    assert excinfo.value.errors()[0]["loc"] == ("genres",)


@pytest.mark.parametrize(
    ("title", "ok"),
    [("", False), ("   ", False), ("x", True), ("x" * 500, True), ("x" * 501, False)],
)
def test_title_length_1_to_500(title: str, ok: bool) -> None:
    if ok:
        assert content(title=title).title == title
    else:
        with pytest.raises(ValidationError) as excinfo:
            content(title=title)
        assert excinfo.value.errors()[0]["loc"] == ("title",)


def test_title_whitespace_is_stripped() -> None:
    assert content(title="  Dark  ").title == "Dark"


@pytest.mark.parametrize(
    ("year", "ok"), [(1799, False), (1800, True), (2024, True), (2100, True), (2101, False)]
)
def test_release_year_1800_to_2100(year: int, ok: bool) -> None:
    if ok:
        assert content(release_year=year).release_year == year
    else:
        with pytest.raises(ValidationError) as excinfo:
            content(release_year=year)
        assert excinfo.value.errors()[0]["loc"] == ("release_year",)


def test_description_at_most_5000() -> None:
    assert content(description="d" * 5000).description == "d" * 5000
    with pytest.raises(ValidationError) as excinfo:
        content(description="d" * 5001)
    assert excinfo.value.errors()[0]["loc"] == ("description",)


def test_unknown_content_type_rejected() -> None:
    with pytest.raises(ValidationError):
        content(content_type="podcast")


def test_unknown_field_rejected() -> None:
    with pytest.raises(ValidationError) as excinfo:
        content(rating="great")
    assert excinfo.value.errors()[0]["type"] == "extra_forbidden"


def test_content_is_immutable() -> None:
    item = content()
    with pytest.raises(ValidationError):
        item.title = "Other"  # type: ignore[misc]


def test_nested_availability_error_is_located() -> None:
    with pytest.raises(ValidationError) as excinfo:
        content(
            availability=[
                availability().model_dump(),
                {"platform": "hulu", "availability_type": "rental"},
            ]
        )

    assert excinfo.value.errors()[0]["loc"][:2] == ("availability", 1)


@pytest.mark.parametrize(
    ("imdb", "ok"),
    [("tt0111161", True), ("tt12345678", True), ("nm0000001", False), ("tt12", False)],
)
def test_imdb_id_pattern(imdb: str, ok: bool) -> None:
    if ok:
        assert ExternalIds(imdb=imdb).imdb == imdb
    else:
        with pytest.raises(ValidationError):
            ExternalIds(imdb=imdb)


# --- PlatformAvailability: regions --------------------------------------------------------


def test_regions_are_uppercased_deduplicated_and_sorted() -> None:
    item = availability(regions=["us", " gb ", "US", "de", "Gb"])

    assert item.regions == ["DE", "GB", "US"]


def test_regions_follow_the_one_region_rule() -> None:
    # A trusted record spells regions as the feeds' items are stored: UK is GB, EL is GR.
    assert availability(regions=["uk", "GB", "el"]).regions == ["GB", "GR"]


def test_empty_regions_allowed() -> None:
    assert availability(regions=[]).regions == []


@pytest.mark.parametrize("region", ["USA", "U", "", "U1", "12", "ÄB", "äb", "ß", "U-"])
def test_region_must_be_two_ascii_letters(region: str) -> None:
    with pytest.raises(ValidationError) as excinfo:
        availability(regions=["US", region])

    assert "ISO 3166-1 alpha-2" in error_messages(excinfo)


def test_platform_must_be_a_lowercase_slug() -> None:
    assert availability(platform="prime_video").platform == "prime_video"
    with pytest.raises(ValidationError):
        availability(platform="Prime Video")


# --- PlatformAvailability: price ----------------------------------------------------------


@pytest.mark.parametrize("kind", ["rental", "purchase"])
def test_paid_availability_with_price_and_currency(kind: str) -> None:
    item = availability(availability_type=kind, price_cents=399, currency="USD")

    assert item.availability_type is AvailabilityType(kind)
    assert (item.price_cents, item.currency) == (399, "USD")


@pytest.mark.parametrize("kind", ["rental", "purchase"])
@pytest.mark.parametrize("price", [{}, {"price_cents": 399}, {"currency": "USD"}])
def test_paid_availability_needs_price_and_currency(kind: str, price: dict[str, Any]) -> None:
    with pytest.raises(ValidationError) as excinfo:
        availability(availability_type=kind, **price)

    assert f"{kind} needs price_cents and currency" in error_messages(excinfo)


@pytest.mark.parametrize("kind", ["subscription", "free"])
@pytest.mark.parametrize(
    "price", [{"price_cents": 0}, {"currency": "EUR"}, {"price_cents": 999, "currency": "EUR"}]
)
def test_unpaid_availability_must_not_have_a_price(kind: str, price: dict[str, Any]) -> None:
    with pytest.raises(ValidationError) as excinfo:
        availability(availability_type=kind, **price)

    assert f"{kind} has no price" in error_messages(excinfo)


@pytest.mark.parametrize("kind", ["subscription", "free"])
def test_unpaid_availability_without_price(kind: str) -> None:
    item = availability(availability_type=kind)

    assert item.price_cents is None
    assert item.currency is None


@pytest.mark.parametrize(
    "price",
    [
        {"price_cents": -1, "currency": "USD"},
        {"price_cents": 100, "currency": "usd"},
        {"price_cents": 100, "currency": "DOLLAR"},
    ],
)
def test_price_values_are_checked(price: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        availability(availability_type="rental", **price)


# --- PlatformAvailability: window ---------------------------------------------------------

JAN = datetime(2024, 1, 1, tzinfo=UTC)
FEB = datetime(2024, 2, 1, tzinfo=UTC)


def test_window_in_order_is_accepted() -> None:
    item = availability(available_from=JAN, available_until=FEB)

    assert (item.available_from, item.available_until) == (JAN, FEB)


@pytest.mark.parametrize(
    "window",
    [
        {"available_from": JAN},
        {"available_until": FEB},
        {"available_from": JAN, "available_until": JAN},
    ],
)
def test_open_or_empty_windows_are_accepted(window: dict[str, datetime]) -> None:
    item = availability(**window)

    assert item.available_from == window.get("available_from")
    assert item.available_until == window.get("available_until")


def test_until_before_from_is_rejected() -> None:
    with pytest.raises(ValidationError) as excinfo:
        availability(available_from=FEB, available_until=JAN)

    assert "available_until is before available_from" in error_messages(excinfo)


def test_naive_window_is_compared_as_given() -> None:
    with pytest.raises(ValidationError):
        availability(available_from="2024-02-01T00:00:00", available_until="2024-01-01T00:00:00")
    item = availability(available_from="2024-01-01T00:00:00", available_until="2024-02-01T00:00:00")
    assert item.available_until is not None and item.available_until.tzinfo is None


@pytest.mark.parametrize(
    ("start", "end"),
    [
        ("2024-01-01T00:00:00Z", "2024-02-01T00:00:00"),
        ("2024-01-01T00:00:00", "2024-02-01T00:00:00Z"),
    ],
)
def test_mixed_naive_and_aware_window_is_a_validation_error(start: str, end: str) -> None:
    with pytest.raises(ValidationError) as excinfo:
        availability(available_from=start, available_until=end)

    assert "UTC offset" in error_messages(excinfo)
