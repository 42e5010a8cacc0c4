"""Availability rows, per-platform diffs and expiry windows."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest

from agents.ingestion.availability import (
    AvailabilityRow,
    diff_availability,
    expiring,
    rows,
    slots,
)
from schemas.content import AvailabilityType, PlatformAvailability
from tests.unit.ingestion_factories import T0

CID = uuid.UUID(int=5)


def offer(platform: str = "netflix", **overrides: Any) -> PlatformAvailability:
    data: dict[str, Any] = {
        "platform": platform,
        "availability_type": "subscription",
        "regions": ["US"],
        "deep_link": f"{platform}://title/1",
        "web_url": f"https://{platform}.com/watch/1",
    }
    data.update(overrides)
    return PlatformAvailability.model_validate(data)


def rent(platform: str = "prime_video", price: int = 399) -> PlatformAvailability:
    return offer(platform, availability_type="rental", price_cents=price, currency="USD")


def test_rows_flatten_offers_per_region() -> None:
    until = T0 + timedelta(days=3)
    flat = rows(CID, [offer(regions=["us", "GB", "ca"], available_until=until), offer(regions=[])])
    assert [(r.platform, r.region) for r in flat] == [
        ("netflix", "CA"),
        ("netflix", "GB"),
        ("netflix", "US"),
    ]
    first = flat[0]
    assert first.content_id == CID
    assert first.availability_type is AvailabilityType.subscription
    assert (first.deep_link, first.web_fallback) == (
        "netflix://title/1",
        "https://netflix.com/watch/1",
    )
    assert (first.expires_at, first.available_from) == (until, None)
    assert (first.price_cents, first.currency) == (None, None)


def test_rental_and_purchase_in_one_region_are_two_rows() -> None:
    buy = offer("prime_video", availability_type="purchase", price_cents=1499, currency="USD")
    flat = rows(CID, [rent(), buy])
    assert [(r.region, r.availability_type.value, r.price_cents) for r in flat] == [
        ("US", "purchase", 1499),
        ("US", "rental", 399),
    ]


def test_no_change_is_an_empty_diff() -> None:
    before = [offer(regions=["US", "CA"])]
    after = [offer(regions=["ca", "us"])]
    assert diff_availability(before, after, "netflix").empty


def test_new_region_appears_removed_region_expires() -> None:
    before, after = [offer(regions=["US", "CA"])], [offer(regions=["US", "GB"])]
    diff = diff_availability(before, after, "netflix")
    assert [s.region for s in diff.appeared] == ["GB"]
    assert [s.region for s in diff.expired] == ["CA"]
    assert diff.changed == ()


def test_empty_region_list_expires_every_region() -> None:
    diff = diff_availability([offer(regions=["US", "CA"])], [offer(regions=[])], "netflix")
    assert [s.region for s in diff.expired] == ["CA", "US"]
    assert diff.appeared == ()
    gone = diff_availability([offer(regions=["US"])], [], "netflix")
    assert [s.region for s in gone.expired] == ["US"]


def test_price_or_date_changes_are_changes() -> None:
    diff = diff_availability([rent(price=399)], [rent(price=499)], "prime_video")
    assert [(old.price_cents, new.price_cents) for old, new in diff.changed] == [(399, 499)]
    until = T0 + timedelta(days=10)
    later = diff_availability([offer()], [offer(available_until=until)], "netflix")
    assert later.changed[0][1].expires_at == until


def test_switching_from_subscription_to_rental_is_one_expiry_and_one_appearance() -> None:
    diff = diff_availability([offer("prime_video")], [rent()], "prime_video")
    assert [s.availability_type.value for s in diff.expired] == ["subscription"]
    assert [s.availability_type.value for s in diff.appeared] == ["rental"]


def test_diff_looks_at_one_platform_only() -> None:
    before = [offer("netflix"), offer("hulu", regions=["US"])]
    after = [offer("netflix"), offer("hulu", regions=["CA"])]
    assert diff_availability(before, after, "netflix").empty
    hulu = diff_availability(before, after, "hulu")
    assert ([s.region for s in hulu.appeared], [s.region for s in hulu.expired]) == (["CA"], ["US"])


def test_duplicate_feed_lines_collapse() -> None:
    assert len(slots([offer(), offer()])) == 1


def _row(days: float | None, region: str = "US", content_id: uuid.UUID = CID) -> AvailabilityRow:
    expires = None if days is None else T0 + timedelta(days=days)
    return AvailabilityRow(
        content_id=content_id,
        platform="netflix",
        region=region,
        availability_type=AvailabilityType.subscription,
        price_cents=None,
        currency=None,
        deep_link=None,
        web_fallback=None,
        available_from=None,
        expires_at=expires,
    )


@pytest.mark.parametrize(
    ("days", "window"),
    [
        (0.5, 1),
        (1.0, 1),
        (1.01, 3),
        (2, 3),
        (3, 3),
        (6.5, 7),
        (7, 7),
        (7.01, None),
        (30, None),
        (0, None),
        (-1, None),
        (None, None),
    ],
)
def test_each_row_lands_in_the_smallest_window_reached(
    days: float | None, window: int | None
) -> None:
    notices = expiring([_row(days)], T0)
    assert [n.window_days for n in notices] == ([] if window is None else [window])


def test_custom_windows_and_validation() -> None:
    assert [n.window_days for n in expiring([_row(10)], T0, windows=(14, 2))] == [14]
    assert [n.window_days for n in expiring([_row(1.5)], T0, windows=[2, 14])] == [2]
    with pytest.raises(ValueError):
        expiring([_row(1)], T0, windows=())
    with pytest.raises(ValueError):
        expiring([_row(1)], T0, windows=(7, 0))


def test_dedupe_key_names_content_offer_and_window() -> None:
    other = uuid.UUID(int=6)
    notices = expiring([_row(2, "US"), _row(2, "CA"), _row(6, "US", other)], T0)
    keys = [n.dedupe_key for n in notices]
    assert len(set(keys)) == 3
    assert f"{CID}:netflix:US:subscription:3d" in keys
    # The same row checked again later, still in the same window: the same key (emitted once).
    again = expiring([_row(2, "US")], T0 + timedelta(hours=12))
    assert again[0].dedupe_key == f"{CID}:netflix:US:subscription:3d"
    # Once it crosses into a smaller window it gets a new key: one more notice.
    closer = expiring([_row(2, "US")], T0 + timedelta(days=1, hours=12))
    assert closer[0].dedupe_key == f"{CID}:netflix:US:subscription:1d"


def test_notices_are_sorted_by_expiry() -> None:
    notices = expiring([_row(6, "US"), _row(0.5, "GB"), _row(2, "CA")], T0)
    assert [n.region for n in notices] == ["GB", "CA", "US"]
    assert notices[0].expires_at == T0 + timedelta(days=0.5)
