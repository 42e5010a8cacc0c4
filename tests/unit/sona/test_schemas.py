"""The SONA payloads: validation, and a trip through the envelope."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from pydantic import ValidationError

from schemas.envelope import decode, encode, wrap
from schemas.sona import (
    AdapterTrained,
    ContentDismissed,
    ContentRated,
    Recommendation,
    RecommendationContext,
    RecommendationsRequested,
    RecommendationsResponse,
    TimeBucket,
)
from schemas.sync import DeviceType
from schemas.time_zone import zone_of

CONTENT = uuid.UUID("6f1c2d3e-4a5b-4c6d-8e7f-8091a2b3c4d5")
NOW = datetime(2024, 5, 1, 20, 0, tzinfo=UTC)


def request(**overrides: Any) -> RecommendationsRequested:
    data: dict[str, Any] = {
        "user_id": "u1",
        "at": "2024-05-01T20:00:00+02:00",
        "reply_channel": "sona.reply.abc",
    }
    data.update(overrides)
    return RecommendationsRequested.model_validate(data)


def test_a_request_keeps_the_clients_offset_and_normalizes_its_fields() -> None:
    parsed = request(device_type="tv", mood=" Scared ", region="us")
    assert parsed.at.utcoffset() == timedelta(hours=2)
    assert parsed.at.hour == 20
    assert parsed.device_type is DeviceType.tv
    assert parsed.mood == "scared"
    assert parsed.region == "US"
    assert parsed.limit == 20


@pytest.mark.parametrize(
    "bad",
    [
        {"region": "USA"},
        {"region": "Ü1"},
        {"limit": 21},
        {"limit": 0},
        {"device_type": "fridge"},
        {"at": "2024-05-01T20:00:00"},
        {"reply_channel": ""},
        {"surprise": 1},
    ],
)
def test_bad_requests_are_refused(bad: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        request(**bad)


def test_ratings_are_one_to_five_with_an_aware_timestamp() -> None:
    rated = ContentRated(user_id="u1", content_id=CONTENT, rating=5, timestamp=NOW)
    assert rated.event_type == "sona.content.rated"
    for rating in (0, 6):
        with pytest.raises(ValidationError):
            ContentRated(user_id="u1", content_id=CONTENT, rating=rating, timestamp=NOW)
    with pytest.raises(ValidationError):
        ContentRated(user_id="u1", content_id=CONTENT, rating=3, timestamp=datetime(2024, 5, 1, 20))


def test_a_response_holds_at_most_twenty_recommendations() -> None:
    recs = [
        Recommendation(canonical_id=uuid.uuid4(), title="T", score=0.5, reasons=["r"])
        for _ in range(21)
    ]
    context = RecommendationContext(time_bucket=TimeBucket.evening)
    ok = RecommendationsResponse(
        user_id="u1", recommendations=recs[:20], generated_at=NOW, context=context
    )
    assert ok.adapter_version is None
    with pytest.raises(ValidationError):
        RecommendationsResponse(
            user_id="u1", recommendations=recs, generated_at=NOW, context=context
        )


def test_adapter_trained_names_the_default_adapter() -> None:
    trained = AdapterTrained(user_id="u1", adapter_version=3, training_iterations=5)
    assert trained.adapter_name == "default"
    assert trained.version == 1  # the schema's version, not the adapter's
    with pytest.raises(ValidationError):
        AdapterTrained(user_id="u1", adapter_name="other", adapter_version=3, training_iterations=5)
    with pytest.raises(ValidationError):
        AdapterTrained(user_id="u1", adapter_version=0, training_iterations=5)


@pytest.mark.parametrize(
    "payload",
    [
        ContentRated(user_id="u1", content_id=CONTENT, rating=4, timestamp=NOW),
        ContentDismissed(user_id="u1", content_id=CONTENT, timestamp=NOW),
        RecommendationsRequested(
            user_id="u1",
            device_type=DeviceType.phone,
            mood="happy",
            region="FR",
            at=datetime(2024, 5, 1, 7, 0, tzinfo=timezone(timedelta(hours=-5))),
            limit=10,
            reply_channel="c",
        ),
        RecommendationsResponse(
            user_id="u1",
            recommendations=[
                Recommendation(canonical_id=CONTENT, title="Arrival", score=0.8, reasons=["x"])
            ],
            generated_at=NOW,
            adapter_version=2,
            context=RecommendationContext(
                time_bucket=TimeBucket.morning, device_type=DeviceType.phone, region="FR"
            ),
        ),
        AdapterTrained(user_id="u1", adapter_version=1, training_iterations=5),
    ],
)
def test_payloads_survive_the_envelope(payload: Any) -> None:
    raw = encode(wrap(payload, key="u1", source="sona"))
    back = decode(raw, type(payload))
    assert back.payload == payload
    assert back.event_type == payload.event_type


@pytest.mark.parametrize("name", ["America", "America/Indiana", "Etc", "Mars/Olympus", "+15:00"])
def test_a_time_zone_the_database_does_not_list_is_refused_by_name(name: str) -> None:
    # "America" is a directory of the database: opening it raised IsADirectoryError (a 500).
    with pytest.raises(ValueError, match="unknown time zone"):
        zone_of(name)


@pytest.mark.parametrize(
    ("name", "offset_h"), [("Europe/Paris", 1), ("America/New_York", -5), ("-05:30", -5.5)]
)
def test_zone_names_and_offsets_give_the_local_clock(name: str, offset_h: float) -> None:
    winter = datetime(2026, 1, 15, 12, tzinfo=UTC)
    offset = winter.astimezone(zone_of(name)).utcoffset()
    assert offset is not None and offset.total_seconds() == offset_h * 3600
