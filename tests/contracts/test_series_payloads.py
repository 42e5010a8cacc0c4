"""The series fields reach the content topics as an additive change of version 1: the gate
accepts them, and a subscriber built on the schema released before them (kept in
tests/contracts/before_series/) reads the new records unchanged, while records written before
them still decode (docs/TOPICS.md, "Versions and the compatibility gate")."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from pathlib import Path

import jsonschema
import orjson

from schemas.content import CanonicalContent, ContentIngested, SeriesMetadata
from schemas.envelope import decode, encode, wrap
from schemas.ingestion import CatalogItemReceived, RawCatalogItem
from topics.compatibility import RELEASED_ROOT, breaking_changes, load_released

BEFORE = Path(__file__).parent / "before_series"
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def before(topic: str) -> dict:
    return json.loads((BEFORE / f"{topic}.v1.json").read_text())


def episode_envelope() -> bytes:
    series_id = uuid.uuid4()
    content = CanonicalContent(
        canonical_id=uuid.uuid4(),
        content_type="episode",
        title="Pilot",
        genres=["comedy"],
        series=SeriesMetadata(
            parent_id=series_id,
            season_id=uuid.uuid4(),
            season_number=1,
            episode_number=1,
            absolute_number=1,
        ),
        updated_at=T0,
    )
    return encode(wrap(ContentIngested(content=content), key=str(content.canonical_id), source="t"))


def raw_episode_envelope() -> bytes:
    item = RawCatalogItem.model_validate(
        {
            "platform": "netflix",
            "platform_item_id": "e1",
            "title": "Pilot",
            "content_type": "episode",
            "series_title": "The Office",
            "series_ids": {"imdb": "tt0386676", "tmdb": "2316"},
            "parent_id": "70136120",
            "season_number": 1,
            "episode_number": 1,
            "absolute_number": 1,
            "source_updated_at": T0.isoformat(),
        }
    )
    return encode(wrap(CatalogItemReceived(item=item), key=item.record_key, source="t"))


def test_the_series_fields_are_additive_within_version_1() -> None:
    released = load_released(RELEASED_ROOT)
    for topic in ("content.ingested", "content.raw"):
        assert breaking_changes(before(topic), released[(topic, 1)]) == []
    series = released[("content.ingested", 1)]["$defs"]["SeriesMetadata"]["properties"]
    assert {"season_id", "absolute_number", "parent_id"} <= set(series)
    item = released[("content.raw", 1)]["$defs"]["RawCatalogItem"]["properties"]
    assert {"series_title", "series_ids", "parent_id", "season_number", "absolute_number"} <= set(
        item
    )


def test_a_subscriber_on_the_schema_before_series_reads_the_new_records() -> None:
    for topic, envelope in (
        ("content.ingested", episode_envelope()),
        ("content.raw", raw_episode_envelope()),
    ):
        old = jsonschema.Draft202012Validator(
            before(topic), format_checker=jsonschema.FormatChecker()
        )
        errors = [e.message for e in old.iter_errors(orjson.loads(envelope))]
        assert errors == [], (topic, errors)
        assert orjson.loads(envelope)["version"] == 1


def test_records_written_before_series_still_decode() -> None:
    data = orjson.loads(episode_envelope())
    data["payload"]["content"]["series"] = {"season_count": 3, "episode_count": 30}
    read = decode(orjson.dumps(data), ContentIngested)
    assert read.payload.content.series == SeriesMetadata(season_count=3, episode_count=30)
    raw = orjson.loads(raw_episode_envelope())
    for name in ("series_title", "series_ids", "parent_id", "absolute_number"):
        raw["payload"]["item"].pop(name)
    item = decode(orjson.dumps(raw), CatalogItemReceived).payload.item
    assert item.series_title is None and item.season_number == 1
