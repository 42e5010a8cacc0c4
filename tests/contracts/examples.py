"""A valid payload of every topic, made from its JSON Schema and checked by its pydantic model,
so topics added to the catalog get examples without anyone writing them.

The schema says what each field must be (type, format, enum, bounds, pattern); rules the model
checks in code (an `add` needs a `unique_tag`) are found by trying a few shapes: the required
fields alone, then each optional field added on its own, then every field. A payload no shape
satisfies gets a hand-made example in OVERRIDES.
"""

from __future__ import annotations

import uuid
import warnings
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from hypothesis import strategies as st
from hypothesis.errors import NonInteractiveExampleWarning
from pydantic import ValidationError

from schemas.envelope import Payload
from topics.json_schema import version_schema
from topics.registry import TopicSpec

# event_type -> a valid payload, for models whose rules the shapes below cannot meet.
OVERRIDES: dict[str, Callable[[], Payload]] = {}


def _resolve(node: Mapping[str, Any], root: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(node)
    while "$ref" in out:
        target = root["$defs"][out.pop("$ref").rsplit("/", 1)[-1]]
        out = {**target, **out}
    return out


def _string(node: Mapping[str, Any]) -> str:
    fmt = node.get("format")
    if fmt == "uuid":
        return str(uuid.uuid4())
    if fmt == "date-time":
        return "2026-11-01T12:00:00Z"
    if fmt == "date":
        return "2026-11-01"
    if fmt in ("uri", "url"):
        return "https://example.com/a"
    low, high = node.get("minLength", 1), node.get("maxLength", 10_000)
    if "pattern" in node:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NonInteractiveExampleWarning)
            strategy = st.from_regex(node["pattern"], fullmatch=True)
            return strategy.filter(lambda s: low <= len(s) <= high).example()
    return "x" * max(1, low)


def value(node: Mapping[str, Any], root: Mapping[str, Any], full: bool = False) -> Any:
    """One value the schema node accepts (optional object fields only when `full`)."""
    node = _resolve(node, root)
    if "const" in node:
        return node["const"]
    if "enum" in node:
        return node["enum"][0]
    for key in ("anyOf", "oneOf"):
        if key in node:
            alternatives = [a for a in node[key] if _resolve(a, root).get("type") != "null"]
            return value(alternatives[0], root, full)
    kind = node.get("type")
    if kind == "object":
        return _object(node, root, full, set(node.get("required", [])))
    if kind == "array":
        return [
            value(node.get("items", {}), root, full) for _ in range(max(1, node.get("minItems", 1)))
        ]
    if kind == "string":
        return _string(node)
    if kind == "integer":
        return int(node.get("minimum", node.get("exclusiveMinimum", 0) + 1))
    if kind == "number":
        return node.get("minimum", node.get("exclusiveMinimum", 0) + 0.5)
    if kind == "boolean":
        return False
    return None


def _object(
    node: Mapping[str, Any], root: Mapping[str, Any], full: bool, chosen: set[str]
) -> dict[str, Any]:
    props = node.get("properties", {})
    return {
        name: value(prop, root, full)
        for name, prop in props.items()
        # A tag (`kind`, `type`) with a default still goes in: unions are told apart by it.
        if full or name in chosen or "const" in _resolve(prop, root)
    }


def _shapes(schema: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    ref = schema["properties"]["payload"]["$ref"].rsplit("/", 1)[-1]
    payload = schema["$defs"][ref]
    required = set(payload.get("required", []))
    yield _object(payload, schema, False, required)
    for optional in sorted(set(payload.get("properties", {})) - required):
        yield _object(payload, schema, False, required | {optional})
    yield _object(payload, schema, True, required)


def example(spec: TopicSpec, model: type[Payload]) -> Payload:
    """A valid payload of `model` (a version of `spec`)."""
    if model.event_type in OVERRIDES and model is spec.payload:
        return OVERRIDES[model.event_type]()
    errors = []
    for shape in _shapes(version_schema(spec, model)):
        try:
            return model.model_validate(shape)
        except ValidationError as exc:
            errors.append(str(exc).splitlines()[1:3])
    raise AssertionError(
        f"no example of {model.__name__} ({spec.name}) could be made from its schema: {errors}; "
        "add one to tests/contracts/examples.py OVERRIDES"
    )
