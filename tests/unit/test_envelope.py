"""wrap / encode / decode of the record envelope, with content.ingested as the payload."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

import orjson
import pytest
from pydantic import ValidationError

from schemas.content import CanonicalContent, ContentIngested
from schemas.envelope import Envelope, Payload, decode, encode, wrap

CONTENT_ID = uuid.UUID("6f1c2d3e-4a5b-4c6d-8e7f-8091a2b3c4d5")
UPDATED_AT = datetime(2024, 5, 1, 12, 30, tzinfo=UTC)


def content_data(**overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "canonical_id": str(CONTENT_ID),
        "content_type": "movie",
        "title": "Arrival",
        "genres": ["science fiction", "drama"],
        "updated_at": UPDATED_AT.isoformat(),
    }
    data.update(overrides)
    return data


def ingested(**overrides: Any) -> ContentIngested:
    return ContentIngested(content=CanonicalContent.model_validate(content_data(**overrides)))


def encoded_dict(**envelope_overrides: Any) -> dict[str, Any]:
    envelope = wrap(ingested(), key=str(CONTENT_ID), source="catalog", correlation_id="req-1")
    data = orjson.loads(encode(envelope))
    data.update(envelope_overrides)
    return data


def test_wrap_fills_the_envelope_from_the_payload() -> None:
    before = datetime.now(UTC)
    envelope = wrap(ingested(), key=str(CONTENT_ID), source="catalog", correlation_id="req-1")

    assert envelope.event_type == "content.ingested"
    assert envelope.version == 1
    assert envelope.source == "catalog"
    assert envelope.key == str(CONTENT_ID)
    assert envelope.correlation_id == "req-1"
    assert envelope.event_id.version == 4
    assert before <= envelope.time <= datetime.now(UTC)
    assert envelope.time.utcoffset() == timedelta(0)


def test_wrap_gives_each_event_its_own_id_unless_told() -> None:
    given = uuid.uuid4()

    first = wrap(ingested(), key="k", source="s")
    second = wrap(ingested(), key="k", source="s")
    chosen = wrap(ingested(), key="k", source="s", event_id=given)

    assert first.event_id != second.event_id
    assert chosen.event_id == given
    assert first.correlation_id is None


def test_round_trip_keeps_every_field() -> None:
    original = wrap(
        ingested(description="Linguist meets heptapods.", release_year=2016),
        key=str(CONTENT_ID),
        source="catalog",
        correlation_id="req-7",
    )

    decoded = decode(encode(original), ContentIngested)

    assert decoded.event_id == original.event_id
    assert decoded.time == original.time
    assert decoded.key == original.key
    assert decoded.correlation_id == "req-7"
    assert decoded.source == "catalog"
    assert isinstance(decoded.payload, ContentIngested)
    assert decoded.payload == original.payload
    assert decoded.payload.content.canonical_id == CONTENT_ID
    assert decoded.payload.content.updated_at == UPDATED_AT
    assert decoded == original


def test_encode_writes_plain_json() -> None:
    envelope = wrap(ingested(), key="k", source="catalog")

    data = orjson.loads(encode(envelope))

    assert data["event_type"] == "content.ingested"
    assert data["version"] == 1
    assert data["event_id"] == str(envelope.event_id)
    assert data["payload"]["content"]["canonical_id"] == str(CONTENT_ID)
    assert data["payload"]["content"]["genres"] == ["science fiction", "drama"]
    assert data["correlation_id"] is None


@pytest.mark.parametrize("raw", [b"{not json", b"", b"\xff\xfe", b'{"event_type": '])
def test_decode_rejects_invalid_json(raw: bytes) -> None:
    with pytest.raises(ValidationError) as excinfo:
        decode(raw, ContentIngested)

    # agents.framework.runtime dead-letters these as "undecodable" by this error type.
    assert excinfo.value.errors()[0]["type"] == "json_invalid"


def test_decode_rejects_json_that_is_not_an_object() -> None:
    with pytest.raises(ValidationError):
        decode(b"[1, 2, 3]", ContentIngested)


@pytest.mark.parametrize("field", ["canonical_id", "content_type", "title", "genres", "updated_at"])
def test_decode_rejects_payload_missing_a_required_field(field: str) -> None:
    data = encoded_dict()
    del data["payload"]["content"][field]

    with pytest.raises(ValidationError) as excinfo:
        decode(orjson.dumps(data), ContentIngested)

    [error] = excinfo.value.errors()
    assert error["type"] == "missing"
    assert error["loc"] == ("payload", "content", field)


def test_decode_rejects_payload_failing_validation() -> None:
    data = encoded_dict()
    data["payload"]["content"]["genres"] = []

    with pytest.raises(ValidationError) as excinfo:
        decode(orjson.dumps(data), ContentIngested)

    assert excinfo.value.errors()[0]["loc"] == ("payload", "content", "genres")


def test_decode_rejects_unknown_envelope_field() -> None:
    with pytest.raises(ValidationError):
        decode(orjson.dumps(encoded_dict(surprise=True)), ContentIngested)


def test_decode_rejects_event_type_of_another_topic() -> None:
    raw = orjson.dumps(encoded_dict(event_type="content.deleted"))

    with pytest.raises(ValueError, match="does not belong on this topic") as excinfo:
        decode(raw, ContentIngested)

    assert not isinstance(excinfo.value, ValidationError)
    assert "content.deleted" in str(excinfo.value)


def test_decode_rejects_a_version_newer_than_the_consumer_knows() -> None:
    raw = orjson.dumps(encoded_dict(version=ContentIngested.version + 1))

    with pytest.raises(ValueError, match="newer than this consumer understands") as excinfo:
        decode(raw, ContentIngested)

    assert not isinstance(excinfo.value, ValidationError)


def test_decode_accepts_an_older_version() -> None:
    class ContentIngestedV2(Payload):
        event_type: ClassVar[str] = "content.ingested"
        version: ClassVar[int] = 2
        content: CanonicalContent

    decoded = decode(orjson.dumps(encoded_dict()), ContentIngestedV2)

    assert decoded.version == 1
    assert decoded.payload.content.title == "Arrival"


@pytest.mark.parametrize(
    "overrides",
    [
        {"version": 0},
        {"key": ""},
        {"source": ""},
        {"correlation_id": "x" * 129},
        {"event_id": "nope"},
    ],
)
def test_decode_rejects_bad_envelope_fields(overrides: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        decode(orjson.dumps(encoded_dict(**overrides)), ContentIngested)


def test_mixed_naive_and_aware_window_is_a_validation_error_not_a_crash() -> None:
    # A TypeError here would escape the consumer's (ValidationError, ValueError) handling.
    data = encoded_dict()
    data["payload"]["content"]["availability"] = [
        {
            "platform": "netflix",
            "availability_type": "subscription",
            "available_from": "2024-01-01T00:00:00Z",
            "available_until": "2024-02-01T00:00:00",
        }
    ]

    with pytest.raises(ValidationError):
        decode(orjson.dumps(data), ContentIngested)


def test_envelope_is_immutable() -> None:
    envelope = wrap(ingested(), key="k", source="s")

    with pytest.raises(ValidationError):
        envelope.key = "other"  # type: ignore[misc]
    assert isinstance(envelope, Envelope)


def test_a_record_that_is_no_envelope_is_named_by_its_missing_fields() -> None:
    # It was dead-lettered as "event_type None does not belong on this topic", which sent the
    # operator looking for another topic's producer instead of one that sends no envelope.
    with pytest.raises(ValidationError) as excinfo:
        decode(orjson.dumps({"hello": 1}), ContentIngested)

    missing = {e["loc"][0] for e in excinfo.value.errors() if e["type"] == "missing"}
    assert {"event_type", "version", "payload"} <= missing
