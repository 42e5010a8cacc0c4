"""A JSON Schema (draft 2020-12) of the envelope for every payload version of every topic.

Generated from the pydantic models, so it cannot disagree with what the agents decode. Two
deliberate differences from those models:

- The schemas are *open*: pydantic's `additionalProperties: false` is dropped. The
  compatibility gate (topics/compatibility.py) lets a version gain optional fields, so a
  subscriber who validates with the schema of version N must keep accepting records of version
  N written later; our own agents are upgraded before the producers (docs/TOPICS.md).
- `event_type` and `version` are pinned with `const`, so a schema accepts exactly its version.

Rules the models enforce in code (a rental needs a price, `available_until` after
`available_from`) cannot be said in JSON Schema; the schemas are what a record must at least be.
"""

from __future__ import annotations

import copy
import inspect
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic.json_schema import models_json_schema

from schemas.envelope import Envelope, Payload
from topics.registry import TopicSpec

DIALECT = "https://json-schema.org/draft/2020-12/schema"
JsonSchema = dict[str, Any]

ENVELOPE_DESCRIPTIONS = {
    "event_id": "unique per event; a redelivered or replayed record keeps it (deduplicate on it)",
    "event_type": "the topic's event type",
    "version": "the payload's schema version",
    "source": "who wrote the record: gateway, a worker group, a command",
    "time": "when the event was created (ISO 8601 with offset)",
    "key": "the record key as text (the topic's key, e.g. a canonical id)",
    "correlation_id": "the request that caused it, carried through every event it leads to",
    "payload": "the event itself",
}


def schema_id(topic: str, version: int) -> str:
    return f"urn:media-gateway:topic:{topic}:v{version}"


def envelope_of(model: type[Payload]) -> type[Envelope[Any]]:
    return Envelope[model]  # type: ignore[valid-type]


def open_content(node: Any) -> Any:
    """A copy without `additionalProperties: false` (schemas of dict values are kept)."""
    if isinstance(node, dict):
        return {
            k: open_content(v)
            for k, v in node.items()
            if not (k == "additionalProperties" and v is False)
        }
    if isinstance(node, list):
        return [open_content(v) for v in node]
    return node


def _pin(envelope: JsonSchema, model: type[Payload]) -> None:
    props = envelope["properties"]
    props["event_type"] = {"type": "string", "const": model.event_type}
    props["version"] = {"type": "integer", "const": model.version}
    for name, text in ENVELOPE_DESCRIPTIONS.items():
        if name in props and "$ref" not in props[name]:
            props[name]["description"] = text
    # Every producer writes every envelope field (`correlation_id` as null when there is none):
    # the defaults of the model are the producer's business, never missing on the wire.
    envelope["required"] = list(props)
    envelope["title"] = f"{model.event_type} v{model.version}"
    envelope["description"] = inspect.cleandoc(model.__doc__ or "") or model.event_type


def version_schema(spec: TopicSpec, model: type[Payload]) -> JsonSchema:
    """The standalone draft 2020-12 schema of one version's envelope (its types in `$defs`)."""
    raw = open_content(envelope_of(model).model_json_schema(mode="validation"))
    _pin(raw, model)
    defs = raw.pop("$defs", {})
    return {
        "$schema": DIALECT,
        "$id": schema_id(spec.name, model.version),
        **raw,
        "x-topic": spec.name,
        "x-key": spec.key,
        "$defs": dict(sorted(defs.items())),
    }


def topic_schemas(spec: TopicSpec) -> dict[int, JsonSchema]:
    """Every readable version of a topic, by version."""
    return {model.version: version_schema(spec, model) for model in spec.payloads}


def all_schemas(topics: list[TopicSpec]) -> dict[tuple[str, int], JsonSchema]:
    return {
        (spec.name, version): schema
        for spec in topics
        if spec.payload is not None
        for version, schema in topic_schemas(spec).items()
    }


def component_name(topic: str, version: int) -> str:
    return f"{topic.replace('.', '_')}_v{version}"


def components(topics: list[TopicSpec], ref_prefix: str) -> JsonSchema:
    """Every version's envelope (named by component_name) and every type they use, by name.

    Refs point at `{ref_prefix}{name}` (e.g. "#/components/schemas/").
    """
    entries = [(spec, model) for spec in topics for model in spec.payloads]
    refs, shared = models_json_schema(
        [(envelope_of(model), "validation") for _, model in entries],
        ref_template=ref_prefix + "{model}",
    )
    schemas: JsonSchema = open_content(shared.get("$defs", {}))
    for spec, model in entries:
        ref = refs[(envelope_of(model), "validation")]["$ref"]
        name = ref.removeprefix(ref_prefix)
        # The same envelope class may serve two topics; each gets its own pinned copy.
        own = component_name(spec.name, model.version)
        envelope = copy.deepcopy(schemas[name])
        _pin(envelope, model)
        schemas[own] = envelope
    for _, model in entries:
        generic = refs[(envelope_of(model), "validation")]["$ref"].removeprefix(ref_prefix)
        schemas.pop(generic, None)
    return dict(sorted(schemas.items()))


# -- A readable digest of a schema, for docs/TOPICS.md and the gateway's HTML page ------------


@dataclass(frozen=True)
class Field:
    name: str
    type: str
    required: bool
    notes: str


def _ref_name(ref: str) -> str:
    return ref.rsplit("/", 1)[-1]


def type_text(node: Mapping[str, Any]) -> str:
    """A short type: `string (uuid)`, `list of PlatformAvailability`, `ContentType`, ..."""
    if "$ref" in node:
        return _ref_name(node["$ref"])
    if "const" in node:
        return f"= {node['const']!r}".replace("'", '"')
    if "anyOf" in node:
        parts = [type_text(n) for n in node["anyOf"]]
        non_null = [p for p in parts if p != "null"]
        text = " or ".join(non_null) or "null"
        return f"{text} or null" if len(non_null) < len(parts) else text
    if "enum" in node:
        return "one of " + ", ".join(str(v) for v in node["enum"])
    kind = node.get("type", "any")
    if kind == "array":
        return f"list of {type_text(node.get('items', {}))}"
    if kind == "object" and isinstance(node.get("additionalProperties"), dict):
        return f"map of {type_text(node['additionalProperties'])}"
    if "format" in node:
        return f"{kind} ({node['format']})"
    return str(kind)


def _notes(node: Mapping[str, Any]) -> str:
    bits = []
    for key, label in (
        ("minLength", "min length"),
        ("maxLength", "max length"),
        ("minItems", "min items"),
        ("pattern", "pattern"),
        ("minimum", ">="),
        ("exclusiveMinimum", ">"),
        ("maximum", "<="),
    ):
        for part in [node, *node.get("anyOf", [])]:
            if key in part:
                shown = f"`{part[key]}`" if key == "pattern" else part[key]
                bits.append(f"{label} {shown}")
    if "default" in node and node["default"] not in (None, [], {}):
        bits.append(f"default {node['default']}")
    if node.get("description"):
        bits.append(node["description"])
    return "; ".join(bits)


def fields_of(node: Mapping[str, Any]) -> list[Field]:
    required = set(node.get("required", []))
    return [
        Field(name, type_text(prop), name in required, _notes(prop))
        for name, prop in node.get("properties", {}).items()
    ]


def named_types(schema: Mapping[str, Any]) -> Iterator[tuple[str, Mapping[str, Any]]]:
    """The `$defs` (or components) of a schema that are objects or enums, by name."""
    yield from sorted(schema.get("$defs", {}).items())
