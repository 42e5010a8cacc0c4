"""Time buckets, habit weights, device runtime rules, moods, and how a title fits the moment."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from agents.sona.context import (
    Context,
    RuntimePreference,
    bucket_share,
    build_context,
    context_fit,
    context_of,
    habit_of,
    habit_weight,
    runtime_preference,
    time_bucket,
)
from schemas.sona import RecommendationsRequested, TimeBucket
from schemas.sync import DeviceType

EVENING_VIEWER = tuple(5 if 18 <= h < 24 else (1 if 6 <= h < 12 else 0) for h in range(24))


def at(hour: int, minute: int = 0, second: int = 0) -> datetime:
    return datetime(2024, 5, 1, hour, minute, second, tzinfo=UTC)


@pytest.mark.parametrize(
    ("when", "bucket"),
    [
        (at(0), TimeBucket.night),
        (at(5, 59, 59), TimeBucket.night),
        (at(6), TimeBucket.morning),
        (at(11, 59, 59), TimeBucket.morning),
        (at(12), TimeBucket.afternoon),
        (at(17, 59, 59), TimeBucket.afternoon),
        (at(18), TimeBucket.evening),
        (at(23, 59, 59), TimeBucket.evening),
    ],
)
def test_buckets_at_their_boundaries(when: datetime, bucket: TimeBucket) -> None:
    assert build_context(at=when).time_bucket is bucket
    assert time_bucket(when.hour) is bucket


def test_the_bucket_is_read_on_the_users_clock() -> None:
    # 17:30 UTC is 19:30 in UTC+2: evening for the user, afternoon in UTC.
    utc = at(17, 30)
    assert build_context(at=utc).time_bucket is TimeBucket.afternoon
    assert build_context(at=utc, tz=timezone(timedelta(hours=2))).time_bucket is TimeBucket.evening
    sent_with_offset = datetime(2024, 5, 1, 19, 30, tzinfo=timezone(timedelta(hours=2)))
    assert build_context(at=sent_with_offset).time_bucket is TimeBucket.evening


def test_hours_outside_the_day_are_refused() -> None:
    with pytest.raises(ValueError, match="0-23"):
        time_bucket(24)


def test_bucket_share_of_the_hourly_pattern() -> None:
    assert bucket_share(EVENING_VIEWER, TimeBucket.evening) == pytest.approx(30 / 36)
    assert bucket_share(EVENING_VIEWER, TimeBucket.morning) == pytest.approx(6 / 36)
    assert bucket_share(EVENING_VIEWER, TimeBucket.night) == 0.0
    assert bucket_share((0,) * 24, TimeBucket.night) is None
    with pytest.raises(ValueError, match="24 slots"):
        bucket_share((1,) * 23, TimeBucket.night)


def test_habit_weight_is_full_in_the_busiest_bucket_and_half_where_never_watched() -> None:
    assert habit_weight(EVENING_VIEWER, TimeBucket.evening) == 1.0
    assert habit_weight(EVENING_VIEWER, TimeBucket.night) == 0.5
    assert habit_weight(EVENING_VIEWER, TimeBucket.morning) == pytest.approx(0.5 + 0.5 * 6 / 30)
    assert habit_weight((0,) * 24, TimeBucket.night) == 1.0


def test_habit_of_a_bucket_holding_an_even_share_or_more() -> None:
    assert habit_of(EVENING_VIEWER, TimeBucket.evening).habitual
    assert not habit_of(EVENING_VIEWER, TimeBucket.morning).habitual  # 6/36 < 6/24
    assert habit_of(None, TimeBucket.evening) == habit_of((0,) * 24, TimeBucket.evening)
    assert not habit_of(None, TimeBucket.evening).habitual


def test_a_tv_prefers_thirty_minutes_or_more() -> None:
    tv = runtime_preference(DeviceType.tv)
    assert tv == RuntimePreference(min_minutes=30, max_minutes=None)
    assert not tv.accepts(29)
    assert tv.accepts(30)
    assert tv.accepts(180)


@pytest.mark.parametrize("device", [DeviceType.phone, DeviceType.tablet])
def test_phones_and_tablets_prefer_an_hour_or_less(device: DeviceType) -> None:
    mobile = runtime_preference(device)
    assert mobile == RuntimePreference(min_minutes=None, max_minutes=60)
    assert mobile.accepts(22)
    assert mobile.accepts(60)
    assert not mobile.accepts(61)


@pytest.mark.parametrize("device", [DeviceType.web, DeviceType.desktop, None])
def test_other_devices_have_no_runtime_preference(device: DeviceType | None) -> None:
    preference = runtime_preference(device)
    assert preference.unbounded
    assert preference.accepts(1) and preference.accepts(600)


def test_an_unknown_runtime_passes_the_predicate() -> None:
    assert runtime_preference(DeviceType.tv).accepts(None)
    assert runtime_preference(DeviceType.phone).accepts(None)


def test_moods_map_to_genres_through_the_shared_table() -> None:
    assert build_context(at=at(20), mood="scared").mood_genres == ("horror", "thriller")
    assert build_context(at=at(20), mood=" Cheerful ").mood_genres == (
        "comedy",
        "family",
        "animation",
    )
    # docs/RULES.md: "any other mood: drama, comedy".
    assert build_context(at=at(20), mood="grumpy").mood_genres == ("drama", "comedy")
    assert build_context(at=at(20)).mood_genres == ()


def test_regions_are_upper_case_alpha_2() -> None:
    assert build_context(at=at(20), region="us").region == "US"
    # As ingestion stores the United Kingdom's offers.
    assert build_context(at=at(20), region="uk").region == "GB"
    request = RecommendationsRequested(
        user_id="u1", region="uk", at=datetime(2024, 5, 1, tzinfo=UTC), reply_channel="reply.1"
    )
    assert request.region == "GB"
    with pytest.raises(ValueError, match="alpha-2"):
        build_context(at=at(20), region="USA")


def test_context_from_a_request() -> None:
    request = RecommendationsRequested(
        user_id="u1",
        device_type="phone",
        mood="Scared",
        region="de",
        at=datetime(2024, 5, 1, 7, 15, tzinfo=timezone(timedelta(hours=2))),
        reply_channel="reply.1",
    )
    context = context_of(request)
    assert context == Context(
        time_bucket=TimeBucket.morning,
        device_type=DeviceType.phone,
        mood="scared",
        region="DE",
    )
    assert context.echo().model_dump() == {
        "time_bucket": "morning",
        "device_type": "phone",
        "mood": "scared",
        "region": "DE",
    }


def test_a_title_that_fits_mood_device_and_habit_scores_one_with_its_reasons() -> None:
    context = build_context(at=at(20), device_type="tv", mood="scared")
    fit = context_fit(context, ("Horror",), 100, habit_of(EVENING_VIEWER, context.time_bucket))

    assert fit.score == 1.0
    assert fit.reasons == (
        "matches mood: scared",
        "a good length for your TV",
        "fits your evening viewing",
    )


def test_a_title_that_misses_the_mood_and_runtime_scores_zero() -> None:
    context = build_context(at=at(20), device_type="tv", mood="scared")
    fit = context_fit(context, ("romance",), 22, habit_of(EVENING_VIEWER, context.time_bucket))
    assert fit.score == 0.0
    assert fit.reasons == ()


def test_fit_is_weighed_by_the_habit_of_the_bucket() -> None:
    context = build_context(at=at(3), device_type="phone")
    fit = context_fit(context, ("comedy",), 25, habit_of(EVENING_VIEWER, context.time_bucket))
    # Fits the phone, but the user never watches at night: half weight, no habit reason.
    assert fit.score == 0.5
    assert fit.reasons == ("short enough for your phone",)


def test_an_unknown_runtime_is_half_a_fit() -> None:
    context = build_context(at=at(20), device_type="tv")
    assert context_fit(context, ("drama",), None).score == 0.5


def test_nothing_to_fit_gives_no_context_score() -> None:
    context = build_context(at=at(20), device_type="web")
    fit = context_fit(context, ("drama",), 90, habit_of(EVENING_VIEWER, context.time_bucket))
    assert fit.score is None
    assert fit.reasons == ()
