"""Parental controls on notifications (agreements/notification_controls.py): a notification,
in the inbox or as a realtime message, passes a profile's limits exactly when its title does
(agreements/parental_controls.refusal); one without its title's facts (raised before they
were carried) never passes limits; a digest keeps only what passes, and goes when none does;
every other message, and every message without limits, passes untouched. On PubNub, whose
channel every device of the account hears, an alert goes whole exactly when every profile of
the account may see it, and otherwise as a ping that names it without its title."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import orjson
from hypothesis import given
from hypothesis import strategies as st

from agents.notifications import rules
from agreements.genres import CANONICAL_GENRES
from agreements.notification_controls import (
    notification_allowed,
    pubnub_message,
    visible_body,
)
from agreements.parental_controls import refusal
from schemas.accounts import Profile, ProfileKind, ProfileLimits
from schemas.content import MaturityRating
from schemas.notifications import AlertKind, Notification
from schemas.sync import (
    HLC,
    NotificationDigestMessage,
    NotificationMessage,
    NotificationPingMessage,
    ProgressMessage,
)

NOW = datetime(2026, 12, 1, tzinfo=UTC)
KIDS = ProfileLimits(content_rating_limit=MaturityRating.PG, blocked_genres=["horror"])
GENRES = st.lists(st.sampled_from(CANONICAL_GENRES), max_size=4, unique=True)
RATINGS = st.sampled_from([*MaturityRating, None])
LIMITS = st.builds(
    ProfileLimits,
    content_rating_limit=st.sampled_from([*MaturityRating, None]),
    blocked_genres=st.lists(st.sampled_from(CANONICAL_GENRES), max_size=5, unique=True),
)


def note(rating: MaturityRating | None, genres: list[str] | None, title: str = "T") -> Notification:
    return Notification(
        notification_id=uuid.uuid4(),
        kind=AlertKind.arrived,
        content_id=uuid.uuid4(),
        title=title,
        content_rating=rating,
        genres=genres,
        platform="netflix",
        region="US",
        offer_types=["subscription"],
        created_at=NOW,
    )


@given(RATINGS, GENRES, LIMITS)
def test_a_notification_passes_exactly_when_its_title_does(
    rating: MaturityRating | None, genres: list[str], limits: ProfileLimits
) -> None:
    n = note(rating, genres)
    expected = not limits.restricts or refusal(rating, genres, limits) is None
    assert notification_allowed(n, limits) is expected
    body = NotificationMessage(notification=n).model_dump_json().encode()
    assert (visible_body(body, limits) == body) is expected
    assert (visible_body(body, limits) is None) is not expected


@given(RATINGS, GENRES)
def test_without_limits_everything_passes_unchanged(
    rating: MaturityRating | None, genres: list[str]
) -> None:
    n = note(rating, genres)
    body = NotificationMessage(notification=n).model_dump_json().encode()
    for limits in (None, ProfileLimits()):
        assert notification_allowed(n, limits)
        assert visible_body(body, limits) is body


def test_unknown_facts_never_pass_limits() -> None:
    legacy = note(None, None)
    only_genres = ProfileLimits(blocked_genres=["horror"])
    assert not notification_allowed(legacy, KIDS)
    assert not notification_allowed(legacy, only_genres)
    # Known to have no genres and unrated: passes a genre-only limit, not a rating limit.
    assert notification_allowed(note(None, []), only_genres)
    assert not notification_allowed(note(None, []), KIDS)
    # A stored item from before the change: its JSON has no such keys at all.
    old = NotificationMessage(notification=legacy).model_dump(mode="json")
    del old["notification"]["content_rating"], old["notification"]["genres"]
    assert visible_body(orjson.dumps(old), KIDS) is None


def test_a_digest_keeps_what_passes_and_goes_when_nothing_does() -> None:
    ok, r_rated, horror = (
        note(MaturityRating.G, ["family"]),
        note(MaturityRating.R, []),
        note(MaturityRating.PG, ["horror"]),
    )
    body = NotificationDigestMessage(notifications=[r_rated, ok, horror]).model_dump_json()
    kept = visible_body(body.encode(), KIDS)
    assert kept is not None
    message = NotificationDigestMessage.model_validate_json(kept)
    assert [n.notification_id for n in message.notifications] == [ok.notification_id]
    refused = NotificationDigestMessage(notifications=[r_rated, horror]).model_dump_json()
    assert visible_body(refused.encode(), KIDS) is None
    whole = NotificationDigestMessage(notifications=[ok]).model_dump_json().encode()
    assert visible_body(whole, KIDS) == whole


def test_other_messages_pass_even_when_they_mention_notifications() -> None:
    body = orjson.dumps({"kind": "watchlist", "title": '"notification"'})
    assert visible_body(body, KIDS) is body


def test_the_agent_fills_in_the_titles_facts() -> None:
    facts = rules.title_facts("Saw", "R", ["horror", "thriller", "", 7])
    assert facts == rules.TitleFacts("Saw", MaturityRating.R, ["horror", "thriller"])
    assert rules.title_facts("X", "not a rating", None).content_rating is None
    alert = rules.Alert(AlertKind.arrived, uuid.uuid4(), "netflix", "US", ())
    made = rules.notification("alice", alert, facts, NOW, NOW)
    assert (made.content_rating, made.genres) == (MaturityRating.R, ["horror", "thriller"])
    assert not notification_allowed(made, KIDS)


def profile(limits: ProfileLimits, kind: ProfileKind = ProfileKind.kids) -> Profile:
    return Profile(profile_id=f"p{uuid.uuid4().hex[:6]}", kind=kind, limits=limits)


PARENT = Profile(profile_id="parent", kind=ProfileKind.adult)
# The title facts a ping could leak, spelled as they would appear in its JSON.
FACTS = ("title", "content_id", "content_rating", "genres", "platform", "region")


def assert_ping_of(sent: object, notes: list[Notification]) -> None:
    assert isinstance(sent, NotificationPingMessage)
    wire = sent.model_dump_json()
    assert not any(f'"{fact}"' in wire for fact in FACTS)
    assert orjson.loads(wire) == {
        "kind": "notification_ping",
        "notifications": [
            {"notification_id": str(n.notification_id), "kind": n.kind.value} for n in notes
        ],
    }


@given(RATINGS, GENRES, st.lists(LIMITS, max_size=3))
def test_pubnub_carries_an_alert_whole_exactly_when_every_profile_may_see_it(
    rating: MaturityRating | None, genres: list[str], limits: list[ProfileLimits]
) -> None:
    n = note(rating, genres)
    profiles = [PARENT, *(profile(lim) for lim in limits)]
    message = NotificationMessage(notification=n)
    everyone = all(notification_allowed(n, lim) for lim in limits)
    sent = pubnub_message(message, profiles)
    if everyone:
        assert sent is message
    else:
        assert_ping_of(sent, [n])


def test_pubnub_pings_a_digest_with_any_refused_entry_and_when_profiles_are_unknown() -> None:
    ok, r_rated = note(MaturityRating.G, ["family"]), note(MaturityRating.R, ["horror"])
    kids = [PARENT, profile(KIDS)]
    assert_ping_of(
        pubnub_message(NotificationDigestMessage(notifications=[ok, r_rated]), kids),
        [ok, r_rated],
    )
    whole = NotificationDigestMessage(notifications=[ok])
    assert pubnub_message(whole, kids) is whole
    # An account without limited profiles (or without any) hears everything whole.
    for profiles in ([], [PARENT], [profile(ProfileLimits(), ProfileKind.adult)]):
        single = NotificationMessage(notification=r_rated)
        assert pubnub_message(single, profiles) is single
    # Profiles that could not be read: even an alert every limit allows is pinged.
    assert_ping_of(pubnub_message(NotificationMessage(notification=ok), None), [ok])
    # An alert whose facts are unknown is refused by any limit, so it pings.
    legacy = note(None, None)
    assert_ping_of(pubnub_message(NotificationMessage(notification=legacy), kids), [legacy])


def test_pubnub_carries_other_messages_unchanged_whatever_the_profiles() -> None:
    progress = ProgressMessage(
        content_id=uuid.uuid4(),
        position_seconds=1.0,
        duration_seconds=100.0,
        state="playing",
        timestamp=HLC(physical_us=1),
        device_id="tv-1",
    )
    assert pubnub_message(progress, None) is progress
    assert pubnub_message(progress, [profile(KIDS)]) is progress
