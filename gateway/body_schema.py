"""What the OpenAPI document says of request bodies beyond pydantic's JSON Schema.

Pydantic leaves some rules of the body models out of the schemas it writes: patterns of
optional strings and of list items and dict keys (around schemas.storable.Text's validator),
U+0000 refused by stored text, the tag a discriminated union needs, a rule across two fields
that JSON Schema can state (`if`/`then`/`else`). The document states them here rather than in
the models: the topics' published schemas come from the same models, and their compatibility
gate would count each addition as a breaking change of a released version, although the
decoders have always enforced it (docs/HTTP_CONTRACT.md).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from types import UnionType
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import BaseModel

from schemas.content import PAID_AVAILABILITY, REGION_PATTERN
from schemas.storable import storable_text

# CanonicalContent.release_date's bounds, 1800-01-01 to 2100-12-31, the way JSON Schema can
# bound a date: by its year.
_RELEASE_DATE = r"^(?:1[89][0-9]{2}|20[0-9]{2}|2100)-"
NO_NUL = r"^[^\x00]*$"
NO_NUL_NOT_BLANK = r"^[^\x00]*[^\x00\s][^\x00]*$"
# PlatformAvailability._check_price: a rental or a purchase has a price, nothing else does.
_PRICED_ONLY_WHEN_PAID: dict[str, Any] = {
    "if": {
        "properties": {"availability_type": {"enum": [t.value for t in PAID_AVAILABILITY]}},
        "required": ["availability_type"],
    },
    "then": {
        "required": ["price_cents", "currency"],
        "properties": {"price_cents": {"type": "integer"}, "currency": {"type": "string"}},
    },
    "else": {"properties": {"price_cents": {"type": "null"}, "currency": {"type": "null"}}},
}


def state_what_bodies_accept(
    schemas: dict[str, Any], body_models: Iterable[type[BaseModel]]
) -> None:
    """Add to the document's `schemas` what `body_models` (and the models within) enforce."""
    for schema in schemas.values():
        for prop in schema.get("properties", {}).values():
            _tag_required(prop, schemas)
    for model in _models_within(body_models):
        _restore_patterns(model, schemas.get(model.__name__, {}))
    release_date = schemas.get("CanonicalContent", {}).get("properties", {}).get("release_date")
    if release_date is not None:
        for branch in release_date["anyOf"]:
            if branch.get("format") == "date":
                branch["pattern"] = _RELEASE_DATE
    availability = schemas.get("PlatformAvailability")
    if availability is not None:
        availability["properties"]["regions"]["items"]["pattern"] = REGION_PATTERN
        availability["allOf"] = [_PRICED_ONLY_WHEN_PAID]


def _tag_required(prop: dict[str, Any], schemas: dict[str, Any]) -> None:
    # A discriminated union needs its tag in the input, whatever default each member has.
    tag = prop.get("discriminator", {}).get("propertyName")
    if tag is None:
        return
    for ref in prop["discriminator"].get("mapping", {}).values():
        member = schemas[ref.rsplit("/", 1)[-1]]
        required = member.setdefault("required", [])
        if tag not in required:
            required.insert(0, tag)


def _models_within(models: Iterable[type[BaseModel]]) -> set[type[BaseModel]]:
    found: set[type[BaseModel]] = set()
    todo = list(models)
    while todo:
        model = todo.pop()
        if model in found:
            continue
        found.add(model)
        for field in model.model_fields.values():
            todo.extend(_model_types(field.annotation))
    return found


def _model_types(annotation: Any) -> Iterator[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        yield annotation
    for arg in get_args(annotation):
        yield from _model_types(arg)


def _restore_patterns(model: type[BaseModel], schema: dict[str, Any]) -> None:
    # A string with its own validator (schemas.storable.Text) loses its pattern in pydantic's
    # JSON Schema when it is optional or inside a list or a dict, though validation applies it;
    # and Text refuses U+0000, which a pattern can say.
    properties = schema.get("properties", {})
    # Strings are trimmed first there, so one of blanks is empty.
    trimmed = bool(model.model_config.get("str_strip_whitespace"))
    for name, field in model.model_fields.items():
        prop = properties.get(field.alias or name)
        if prop is not None:
            _restore(field.annotation, field.metadata, prop, trimmed)


def _restore(annotation: Any, metadata: Iterable[Any], node: dict[str, Any], trimmed: bool) -> None:
    while get_origin(annotation) is Annotated:
        annotation, *more = get_args(annotation)
        metadata = [*metadata, *more]
    pattern = _pattern_of(metadata)
    if pattern is None and any(getattr(m, "func", None) is storable_text for m in metadata):
        pattern = NO_NUL
    branches = node.get("anyOf", [node])
    for branch in branches:
        if pattern is None or branch.get("type", "string") != "string":
            continue
        if pattern == NO_NUL and trimmed and branch.get("minLength", 0) > 0:
            branch.setdefault("pattern", NO_NUL_NOT_BLANK)
        branch.setdefault("pattern", pattern)
    args = [a for a in get_args(annotation) if a is not type(None)]
    origin = get_origin(annotation)
    if origin in (Union, UnionType) and len(args) == 1:
        for branch in branches:
            if branch.get("type") != "null":
                _restore(args[0], (), branch, trimmed)
    elif origin is list and "items" in node:
        _restore(args[0], (), node["items"], trimmed)
    elif origin is dict:
        if "propertyNames" in node:
            _restore(args[0], (), node["propertyNames"], trimmed)
        if isinstance(node.get("additionalProperties"), dict):
            _restore(args[1], (), node["additionalProperties"], trimmed)


def _pattern_of(metadata: Iterable[Any]) -> str | None:
    for item in metadata:
        found = getattr(item, "pattern", None) or _pattern_of(getattr(item, "metadata", ()))
        if found:
            return str(found)
    return None
