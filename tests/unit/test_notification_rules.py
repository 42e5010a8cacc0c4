"""The pure rules of watchlist alerts: which alerts an event raises, whom they concern, under
which id, and when quiet hours let them through (agents/notifications/rules.py, quiet.py)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from agents.notifications import bursts, rules
from agents.notifications.quiet import release_at
from agreements.sync_realtime import CLAIM_TTL_S
from schemas.content import AvailabilityChanged, AvailabilityRow, AvailabilityType, ContentExpiring
from schemas.notifications import AlertKind, NotificationPreferences, QuietHours

TITLE = uuid.UUID(int=7)
NOW = datetime(2026, 12, 6, 20, 0, tzinfo=UTC)


def row(region: str, kind: AvailabilityType = AvailabilityType.subscription) -> AvailabilityRow:
    return AvailabilityRow(platform="netflix", region=region, availability_type=kind)


def prefs(**kw: object) -> NotificationPreferences:
    base: dict[str, object] = {"services": ["netflix"], "region": "US"}
    return NotificationPreferences.model_validate({**base, **kw})


def test_rows_that_appeared_raise_one_arrived_alert_per_region() -> None:
    event = AvailabilityChanged(
        canonical_id=TITLE,
        platform="netflix",
        appeared=[row("US"), row("US", AvailabilityType.rental), row("FR")],
        changed=[row("DE")],
    )
    alerts = rules.alerts_of_change(event)
    assert [(a.kind, a.region, a.offer_types) for a in alerts] == [
        (AlertKind.arrived, "FR", (AvailabilityType.subscription,)),
        (AlertKind.arrived, "US", (AvailabilityType.rental, AvailabilityType.subscription)),
    ]


def test_an_expiry_notice_raises_leaving_soon_for_its_offer() -> None:
    notice = ContentExpiring(
        canonical_id=TITLE,
        platform="netflix",
        region="US",
        expires_at=NOW,
        window_days=7,
        availability_type=AvailabilityType.subscription,
    )
    [alert] = rules.alerts_of_expiry(notice)
    assert alert.kind is AlertKind.leaving_soon
    assert alert.offer_types == (AvailabilityType.subscription,)
    assert alert.expires_at == NOW


def test_an_alert_reaches_only_users_whose_preferences_want_it() -> None:
    [alert] = rules.alerts_of_change(
        AvailabilityChanged(canonical_id=TITLE, platform="netflix", appeared=[row("US")])
    )
    assert rules.for_user(alert, prefs()) == alert
    assert rules.for_user(alert, prefs(region="FR")) is None
    assert rules.for_user(alert, prefs(services=["hulu"])) is None
    assert rules.for_user(alert, prefs(alerts=["leaving_soon"])) is None
    assert rules.for_user(alert, prefs(offer_types=["rental"])) is None


def test_services_are_named_as_the_catalog_names_platforms() -> None:
    """Found by hand: `"services": ["prime"]` was stored as `prime` (search reads it as
    prime_video), so no Prime Video offer ever alerted that user, silently; `Disney+` was a
    422 though search and every feed accept it. Services now go through the one alias rule."""
    assert prefs(services=["prime", "Disney+", "Netflix", "netflix"]).services == [
        "disney_plus",
        "netflix",
        "prime_video",
    ]
    [alert] = rules.alerts_of_change(
        AvailabilityChanged(canonical_id=TITLE, platform="prime_video", appeared=[row("US")])
    )
    assert rules.for_user(alert, prefs(services=["prime"])) == alert
    with pytest.raises(ValidationError, match="services"):
        prefs(services=["???"])


def test_offer_types_are_narrowed_to_the_users() -> None:
    [alert] = rules.alerts_of_change(
        AvailabilityChanged(
            canonical_id=TITLE,
            platform="netflix",
            appeared=[row("US"), row("US", AvailabilityType.rental)],
        )
    )
    narrowed = rules.for_user(alert, prefs(offer_types=["subscription"]))
    assert narrowed is not None and narrowed.offer_types == (AvailabilityType.subscription,)


def test_one_id_per_user_title_platform_kind_and_window() -> None:
    [alert] = rules.alerts_of_change(
        AvailabilityChanged(canonical_id=TITLE, platform="netflix", appeared=[row("US")])
    )
    first = rules.notification("alice", alert, "Dune", NOW, NOW)
    # The same cause handled again later: the same notification.
    again = rules.notification("alice", alert, "Dune", NOW, datetime(2027, 1, 1, tzinfo=UTC))
    assert first.notification_id == again.notification_id
    assert rules.notification("bob", alert, "Dune", NOW, NOW).notification_id != (
        first.notification_id
    )
    later = datetime.fromtimestamp(NOW.timestamp() + rules.NOTIFY_WINDOW_DAYS * 86_400, tz=UTC)
    assert rules.window_of(later) == rules.window_of(NOW) + 1
    assert rules.notification("alice", alert, "Dune", later, later).notification_id != (
        first.notification_id
    )


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        # 20:00 UTC is 21:00 in Paris (winter): before 22:00, deliver now.
        (datetime(2026, 12, 6, 20, 0, tzinfo=UTC), None),
        # 23:30 Paris: held until 07:00 Paris the next day, 06:00 UTC.
        (datetime(2026, 12, 6, 22, 30, tzinfo=UTC), datetime(2026, 12, 7, 6, 0, tzinfo=UTC)),
        # 03:00 Paris: held until 07:00 Paris that day.
        (datetime(2026, 12, 7, 2, 0, tzinfo=UTC), datetime(2026, 12, 7, 6, 0, tzinfo=UTC)),
        # 07:00 Paris sharp: the span is over.
        (datetime(2026, 12, 7, 6, 0, tzinfo=UTC), None),
    ],
)
def test_quiet_hours_across_midnight_in_local_time(
    now: datetime, expected: datetime | None
) -> None:
    quiet = QuietHours(start="22:00", end="07:00")
    assert release_at(now, "Europe/Paris", quiet) == expected


def test_quiet_hours_within_a_day_and_none() -> None:
    quiet = QuietHours(start="13:00", end="14:00")
    at = datetime(2026, 12, 6, 13, 30, tzinfo=UTC)
    assert release_at(at, "UTC", quiet) == datetime(2026, 12, 6, 14, 0, tzinfo=UTC)
    assert release_at(at, "UTC", None) is None


def test_preferences_refuse_unknown_fields_zones_and_kinds() -> None:
    for bad in (
        {"region": "usa"},
        {"time_zone": "Mars/Olympus"},
        {"alerts": ["everything"]},
        {"quiet_hours": {"start": "22:00:30", "end": "07:00"}},
        {"quiet_hours": {"start": "24:00", "end": "07:00"}},
        {"colour": "red"},
    ):
        with pytest.raises(ValidationError):
            prefs(**bad)


def priced(region: str, cents: int | None, kind: AvailabilityType) -> AvailabilityRow:
    return AvailabilityRow(
        platform="netflix",
        region=region,
        availability_type=kind,
        price_cents=cents,
        currency="USD" if cents is not None else None,
    )


def test_a_lower_price_raises_price_drop_and_a_higher_one_nothing() -> None:
    rental = AvailabilityType.rental
    event = AvailabilityChanged(
        canonical_id=TITLE,
        platform="netflix",
        changed=[priced("US", 299, rental), priced("FR", 599, rental)],
        previous=[priced("US", 399, rental), priced("FR", 499, rental)],
    )
    assert [(a.kind, a.region) for a in rules.alerts_of_change(event)] == [
        (AlertKind.price_drop, "US")
    ]
    # An event written before `previous` existed: no price is known, no alert.
    legacy = event.model_copy(update={"previous": []})
    assert rules.alerts_of_change(legacy) == []


def test_a_burst_is_held_to_the_end_of_its_slot_and_quiet_hours_win_when_later() -> None:
    at = datetime(2026, 12, 6, 20, 3, 20, tzinfo=UTC)
    slot = datetime(2026, 12, 6, 20, 10, tzinfo=UTC)
    assert bursts.held_until(at, bursts.BURST - 1, None) is None
    assert bursts.held_until(at, bursts.BURST, None) == slot
    later = datetime(2026, 12, 7, 6, 0, tzinfo=UTC)
    assert bursts.held_until(at, bursts.BURST, later) == later
    assert bursts.held_until(at, 0, later) == later
    # Every alert of the burst waits for the same instant.
    assert bursts.slot_end(datetime(2026, 12, 6, 20, 9, 59, tzinfo=UTC)) == slot


def test_a_digest_id_is_fixed_by_what_it_holds() -> None:
    a, b = uuid.uuid4(), uuid.uuid4()
    assert bursts.digest_id([a, b]) == bursts.digest_id([b, a]) != bursts.digest_id([a])


def test_an_episode_of_a_later_season_raises_new_season_for_its_series_once_per_season() -> None:
    series = uuid.UUID(int=99)
    event = AvailabilityChanged(canonical_id=TITLE, platform="netflix", appeared=[row("US")])
    assert rules.alerts_of_new_season(event, series, 1) == []
    assert rules.alerts_of_new_season(event, series, None) == []
    [alert] = rules.alerts_of_new_season(event, series, 2)
    assert (alert.kind, alert.content_id, alert.season_number) == (
        AlertKind.new_season,
        series,
        2,
    )
    # The season is the window: weeks apart, the same notification.
    later = datetime.fromtimestamp(NOW.timestamp() + 30 * 86_400, tz=UTC)
    first = rules.notification("alice", alert, "S", NOW, NOW)
    assert rules.notification("alice", alert, "S", later, later).notification_id == (
        first.notification_id
    )
    assert first.season_number == 2


def test_a_preferences_region_follows_the_one_region_rule() -> None:
    # As offers and searches spell it: a user in 'uk' hears of titles a feed sent for UK.
    assert [prefs(region=r).region for r in ("us", " uk ", "Gb", "EL")] == ["US", "GB", "GB", "GR"]
    for bad in ("USA", "u", "Ä1", ""):
        with pytest.raises(ValidationError, match="ISO 3166-1 alpha-2"):
            prefs(region=bad)


def test_a_marked_page_is_resent_to_devices_only_while_its_claims_hold() -> None:
    stored = datetime(2026, 12, 7, 6, 0, tzinfo=UTC)
    assert rules.devices_may_be_resent(stored, stored)
    assert rules.devices_may_be_resent(stored, stored + timedelta(minutes=9))
    # The claims of its first sends (taken after the page was stored) may be gone.
    assert not rules.devices_may_be_resent(stored, stored + timedelta(seconds=CLAIM_TTL_S))
    assert not rules.devices_may_be_resent(stored, stored + timedelta(hours=2))
