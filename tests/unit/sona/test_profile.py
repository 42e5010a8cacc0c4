"""Profile updates: decay, dismissals, genre affinities, hourly and device counts, and the
preference vector's independence from arrival order."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta, timezone

import numpy as np
import pytest

from agents.sona.lora import DimensionMismatch
from agents.sona.profile import (
    DismissEvent,
    UserProfile,
    WatchEvent,
    apply_dismiss,
    apply_watch,
    decay,
    event_weight,
    fold_taste,
    local_hour,
)
from agents.sona.taste import DISMISS_WEIGHT
from agents.sona.training import Viewing, engagement_label
from schemas.sync import DeviceType
from tests.unit.sona.factories import DIM, basis, random_unit, unit

T0 = datetime(2024, 5, 1, 20, 30, tzinfo=UTC)
# completion 1.0, rating 5, rewatch: engagement 0.9
LOVED = Viewing(completion=1.0, rating=5, rewatch=True)


def watch(at=T0, viewing=LOVED, genres=("comedy",), device=DeviceType.tv) -> WatchEvent:
    return WatchEvent(content_id="c", genres=genres, at=at, viewing=viewing, device_type=device)


def dismiss(at=T0, genres=("horror",)) -> DismissEvent:
    return DismissEvent(content_id="d", genres=genres, at=at)


def loved(profile: UserProfile, vector, at=T0) -> UserProfile:
    """A viewing engaged with at 0.9 folded into the taste."""
    return fold_taste(profile, vector, 0.9, at)


def dismissed(profile: UserProfile, vector, at=T0) -> UserProfile:
    return fold_taste(profile, vector, DISMISS_WEIGHT, at)


def test_decay_is_five_percent_per_thirty_days() -> None:
    assert decay(timedelta(0)) == 1.0
    assert decay(timedelta(days=30)) == pytest.approx(0.95)
    assert decay(timedelta(days=60)) == pytest.approx(0.9025)
    assert decay(timedelta(days=15)) == pytest.approx(0.95**0.5)
    # A timestamp from the future (a fast client clock) counts as brand new, not as a boost.
    assert decay(timedelta(days=-10)) == 1.0


def test_event_weight_is_decay_times_engagement() -> None:
    assert event_weight(0.9, T0, T0 + timedelta(days=30)) == pytest.approx(0.855)
    assert event_weight(0.9, T0, T0) == pytest.approx(0.9)


def test_one_viewing_makes_its_vector_the_preference() -> None:
    vector = random_unit(np.random.default_rng(0))
    profile = loved(UserProfile.empty(DIM), vector)

    np.testing.assert_allclose(profile.preference, vector, atol=1e-6)
    assert profile.preference.dtype == np.float32
    assert np.linalg.norm(profile.preference) == pytest.approx(1.0)


def test_an_older_viewing_weighs_less() -> None:
    profile = UserProfile.empty(DIM)
    profile = loved(profile, basis(0), at=T0)
    profile = loved(profile, basis(1), at=T0 + timedelta(days=30))

    # 0.95 x 0.9 e0 + 0.9 e1, normalized.
    expected = unit(0.95 * basis(0) + basis(1))
    np.testing.assert_allclose(profile.preference, expected, atol=1e-6)


def test_a_dismissal_pushes_the_preference_away_from_the_title() -> None:
    profile = loved(UserProfile.empty(DIM), basis(0))
    profile = dismissed(profile, basis(1))

    # 0.9 e0 - 0.5 e1, normalized.
    expected = unit(0.9 * basis(0) - 0.5 * basis(1))
    np.testing.assert_allclose(profile.preference, expected, atol=1e-6)
    assert profile.preference[1] < 0


def test_a_dismissal_decays_like_a_viewing() -> None:
    profile = dismissed(UserProfile.empty(DIM), basis(1), at=T0)
    profile = loved(profile, basis(0), at=T0 + timedelta(days=60))

    expected = unit(0.9 * basis(0) - 0.5 * 0.9025 * basis(1))
    np.testing.assert_allclose(profile.preference, expected, atol=1e-6)


def test_a_short_view_counts_when_and_where_but_not_genres() -> None:
    start = apply_watch(UserProfile.empty(DIM), watch())
    after = apply_watch(start, watch(viewing=Viewing(completion=0.1), device=DeviceType.phone))

    assert after.genre_affinities == start.genre_affinities
    assert after.hourly[20] == 2
    assert dict(after.device_mix) == {"tv": 1, "phone": 1}
    assert after.events_applied == 2


def test_genre_affinity_is_a_moving_average_of_engagement() -> None:
    profile = UserProfile.empty(DIM)
    profile = apply_watch(profile, watch(genres=("Comedy", "family")))
    assert dict(profile.genre_affinities) == pytest.approx({"comedy": 0.09, "family": 0.09})

    # engagement 0.2: 0.9 x 0.09 + 0.1 x 0.2
    weak = Viewing(completion=0.3, rating=1)
    profile = apply_watch(profile, watch(viewing=weak, genres=("comedy",)))
    assert profile.genre_affinities["comedy"] == pytest.approx(0.101)
    assert profile.genre_affinities["family"] == pytest.approx(0.09)

    # A dismissal is zero engagement with its genres: 0.9 x 0.101.
    profile = apply_dismiss(profile, dismiss(genres=("comedy",)))
    assert profile.genre_affinities["comedy"] == pytest.approx(0.0909)


def test_the_hourly_slot_is_the_local_hour() -> None:
    paris = timezone(timedelta(hours=2))
    at = datetime(2024, 5, 1, 20, 30, tzinfo=paris)
    assert local_hour(at) == 20
    assert local_hour(at, UTC) == 18

    profile = apply_watch(UserProfile.empty(DIM), watch(at=at), tz=UTC)
    assert profile.hourly[18] == 1
    assert sum(profile.hourly) == 1


def test_a_dismissal_is_not_a_viewing() -> None:
    profile = apply_dismiss(UserProfile.empty(DIM), dismiss())
    assert sum(profile.hourly) == 0
    assert dict(profile.device_mix) == {}
    assert profile.events_applied == 1


def test_updates_return_a_new_profile_and_leave_the_old_one_alone() -> None:
    empty = UserProfile.empty(DIM)
    updated = loved(apply_watch(empty, watch()), basis(0))
    assert not empty.taste.any()
    assert not empty.has_history
    assert sum(empty.hourly) == 0
    assert updated.has_history and updated.has_taste
    assert not UserProfile.empty(DIM).preference.any()


def test_vectors_of_another_dimension_raise() -> None:
    with pytest.raises(DimensionMismatch, match=r"dimension 512.*384"):
        loved(UserProfile.empty(DIM), np.ones(512, dtype=np.float32))


def test_naive_timestamps_are_refused() -> None:
    with pytest.raises(ValueError, match="UTC offset"):
        watch(at=datetime(2024, 5, 1, 20, 30))


def test_preference_hourly_and_devices_do_not_depend_on_arrival_order() -> None:
    rng = np.random.default_rng(5)
    devices = [DeviceType.tv, DeviceType.phone, DeviceType.tablet]
    # (event, vector, taste weight): what the handlers fold for each title.
    events = []
    for i in range(30):
        at = T0 + timedelta(days=float(rng.uniform(0, 400)), hours=float(rng.uniform(0, 24)))
        if i % 5 == 4:
            events.append((dismiss(at=at), random_unit(rng), DISMISS_WEIGHT))
        else:
            viewing = Viewing(
                completion=float(rng.uniform(0, 1)),
                rating=int(rng.integers(1, 6)),
                rewatch=bool(rng.integers(0, 2)),
            )
            event = watch(at=at, viewing=viewing, device=devices[i % 3])
            events.append((event, random_unit(rng), engagement_label(viewing)))

    def fold(ordered: list) -> UserProfile:
        profile = UserProfile.empty(DIM)
        for event, vector, weight in ordered:
            if isinstance(event, DismissEvent):
                profile = apply_dismiss(profile, event)
            else:
                profile = apply_watch(profile, event)
            if weight is not None:
                profile = fold_taste(profile, vector, weight, event.at)
        return profile

    # Views under 30 % carry no taste, so they do not move the reference time.
    tasteful = [(e, v, w) for e, v, w in events if w is not None]
    newest = max(e.at for e, _, _ in tasteful)
    in_time_order = fold(sorted(events, key=lambda e: e[0].at))
    shuffled = events[:]
    random.Random(1).shuffle(shuffled)
    for other in (fold(events[::-1]), fold(shuffled)):
        np.testing.assert_allclose(other.preference, in_time_order.preference, atol=1e-6)
        assert other.taste_as_of == in_time_order.taste_as_of == newest
        assert other.hourly == in_time_order.hourly
        assert other.device_mix == in_time_order.device_mix
        assert other.events_applied == in_time_order.events_applied == 30

    # ... and equals the formula evaluated directly, at any "now": only the direction counts.
    now = newest + timedelta(days=90)
    direct = np.zeros(DIM)
    for event, vector, weight in tasteful:
        direct += event_weight(weight, event.at, now) * vector
    np.testing.assert_allclose(in_time_order.preference, unit(direct), atol=1e-6)
