"""Each topic version's JSON Schema is a valid draft 2020-12 schema that accepts the envelopes
our producers put on the broker and rejects broken ones.

The envelopes are published through the real publisher to the session's broker and read back
from it, so what is checked is what a subscriber receives.
"""

from __future__ import annotations

import copy
import uuid
from typing import Any

import jsonschema
import orjson
import pytest

from core.publisher import Publisher
from tests.conftest import Isolated
from tests.contracts.examples import example
from tests.helpers import read_topic
from topics.json_schema import DIALECT, all_schemas, version_schema
from topics.registry import TOPICS, TopicSpec

Json = dict[str, Any]


def validator(spec: TopicSpec, version: int) -> jsonschema.Draft202012Validator:
    model = next(m for m in spec.payloads if m.version == version)
    schema = version_schema(spec, model)
    return jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker())


def test_every_schema_is_a_valid_draft_2020_12_schema() -> None:
    schemas = all_schemas(list(TOPICS))
    assert {topic for topic, _ in schemas} == {spec.name for spec in TOPICS}
    for (topic, version), schema in schemas.items():
        assert schema["$schema"] == DIALECT
        assert schema["$id"].endswith(f":{topic}:v{version}")
        jsonschema.Draft202012Validator.check_schema(schema)


def test_an_invalid_schema_is_caught() -> None:
    schema = copy.deepcopy(all_schemas(list(TOPICS))[(TOPICS[0].name, 1)])
    schema["properties"]["version"]["type"] = "integr"
    with pytest.raises(jsonschema.SchemaError):
        jsonschema.Draft202012Validator.check_schema(schema)


def _payload_field(envelope: Json, spec: TopicSpec) -> tuple[str, Any]:
    """A required payload field and its value (to remove or retype)."""
    schema = version_schema(spec, spec.payload)  # type: ignore[arg-type]
    ref = schema["properties"]["payload"]["$ref"].rsplit("/", 1)[-1]
    required = schema["$defs"][ref]["required"]
    name = required[0]
    return name, envelope["payload"][name]


def broken_variants(envelope: Json, spec: TopicSpec) -> dict[str, Json]:
    out: dict[str, Json] = {}
    field, current = _payload_field(envelope, spec)
    variants = {
        f"payload.{field} missing": lambda e: e["payload"].pop(field),
        f"payload.{field} retyped": lambda e: e["payload"].update(
            {field: 12345 if isinstance(current, str | dict | list) else ["x"]}
        ),
        "version of another": lambda e: e.update(version=e["version"] + 1),
        "event_type of another topic": lambda e: e.update(event_type="something.else"),
        "event_id missing": lambda e: e.pop("event_id"),
        "event_id not a uuid": lambda e: e.update(event_id="not-a-uuid"),
        "payload missing": lambda e: e.pop("payload"),
        "key empty": lambda e: e.update(key=""),
        "time not a date-time": lambda e: e.update(time="yesterday"),
    }
    for name, breakage in variants.items():
        broken = copy.deepcopy(envelope)
        breakage(broken)
        out[name] = broken
    return out


@pytest.fixture
async def published(isolated: Isolated) -> dict[str, list[Json]]:
    """One example envelope per topic, published and read back from the broker (topics of the
    test's own prefix, so nothing else is on them)."""
    settings = isolated.settings
    publisher = Publisher(settings.kafka, source="contract-test")
    await publisher.start()
    run = uuid.uuid4().hex[:8]
    keys = {spec.name: f"contract-{run}-{spec.name}" for spec in TOPICS}
    try:
        for spec in TOPICS:
            await publisher.publish(spec, example(spec, spec.payload), keys[spec.name])  # type: ignore[arg-type]
    finally:
        await publisher.stop()
    found: dict[str, list[Json]] = {}
    for spec in TOPICS:
        records = await read_topic(
            settings.kafka.bootstrap, spec.full_name(settings.kafka.topic_prefix)
        )
        found[spec.name] = [
            orjson.loads(r.value) for r in records if r.key == keys[spec.name].encode()
        ]
    return found


async def test_schemas_accept_envelopes_from_the_broker_and_reject_broken_ones(
    published: dict[str, list[Json]],
) -> None:
    for spec in TOPICS:
        (envelope,) = published[spec.name]
        assert spec.payload is not None
        check = validator(spec, spec.payload.version)
        errors = [e.message for e in check.iter_errors(envelope)]
        assert not errors, f"{spec.name}: a real envelope is rejected: {errors}"
        # Open: a field added later within the version does not break a subscriber's check.
        assert check.is_valid({**envelope, "payload": {**envelope["payload"], "added": 1}})
        for name, broken in broken_variants(envelope, spec).items():
            assert not check.is_valid(broken), f"{spec.name}: accepts an envelope with {name}"
