"""Request bodies parsed by the route itself: JSON only (415 otherwise), validated by
pydantic-core straight from the bytes, errors in FastAPI's shape (422, each field and reason;
malformed JSON names its line and column), and the schema in the OpenAPI document.

Routes on the fast lane (gateway/fast_lane.py) take the raw `Request`, so FastAPI's body
machinery does not run for them on either lane; this is what keeps both lanes identical.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from types import UnionType
from typing import Annotated, Any, TypeVar, Union, get_args, get_origin

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError
from starlette.exceptions import HTTPException

from schemas.content import PAID_AVAILABILITY, REGION_PATTERN
from schemas.storable import DOCUMENTED_FORMS, storable_text

M = TypeVar("M", bound=BaseModel)
# Models of bodies documented by openapi_body(), added to the document's components.
BODY_MODELS: dict[str, type[BaseModel]] = {}

JSON_TYPES = ("application/json",)
_CONTEXT = {DOCUMENTED_FORMS: True}


def is_json(content_type: str) -> bool:
    media = content_type.split(";", 1)[0].strip().lower()
    return media in JSON_TYPES or (media.startswith("application/") and media.endswith("+json"))


async def json_body(request: Request, model: type[M]) -> M:
    """The body as `model`; 415 for a body that is not JSON, 422 naming each bad field."""
    content_type = request.headers.get("content-type", "")
    if not is_json(content_type):
        raise HTTPException(
            415,
            f"send the body as JSON with Content-Type: application/json "
            f"(got {content_type or 'no Content-Type'!r})",
        )
    raw = await request.body()
    try:
        return parse_strict(raw, model)
    except ValidationError as exc:
        # loc "body" first, as FastAPI reports body fields; gateway/errors.py strips it again.
        raise RequestValidationError(
            [{**err, "loc": ("body", *err["loc"])} for err in exc.errors(include_url=False)]
        ) from None


def parse_strict(raw: bytes, model: type[M]) -> M:
    """`raw` as `model`, each value of the JSON type its schema says.

    Pydantic's lax mode would take 0 for a date-time, "5" for a number and false for an
    integer: the document promises otherwise, so bodies are validated strictly, and times only
    in the forms the document names. The one coercion kept is JSON Schema's own: 1800.0 is an
    integer.
    """
    try:
        return model.model_validate_json(raw, strict=True, context=_CONTEXT)
    except ValidationError as exc:
        if not any(_integral_float(err) for err in exc.errors(include_url=False)):
            raise
        # Rare, so paid only here: the integral floats become integers and the body is read
        # again. The standard library's reader, as it keeps what pydantic's does and orjson
        # refuses (an escaped lone surrogate, which the field's own check then names).
        try:
            rewritten = json.dumps(_integers(json.loads(raw))).encode()
        except ValueError:
            raise exc from None
    return model.model_validate_json(rewritten, strict=True, context=_CONTEXT)


def _is_integral(value: Any) -> bool:
    # Beyond 64 bits no field takes it: leave it a float, for the field to refuse.
    return isinstance(value, float) and value.is_integer() and abs(value) < 2**63


def _integral_float(err: Mapping[str, Any]) -> bool:
    return err["type"] == "int_type" and _is_integral(err.get("input"))


def _integers(value: Any) -> Any:
    if _is_integral(value):
        return int(value)
    if isinstance(value, list):
        return [_integers(v) for v in value]
    if isinstance(value, dict):
        return {k: _integers(v) for k, v in value.items()}
    return value


def openapi_body(model: type[BaseModel], description: str = "") -> dict[str, Any]:
    """`openapi_extra` that documents a JSON body of `model` (its schema is added to the
    document's components by `install_body_schemas`)."""
    BODY_MODELS[model.__name__] = model
    body: dict[str, Any] = {
        "required": True,
        "content": {
            "application/json": {"schema": {"$ref": f"#/components/schemas/{model.__name__}"}}
        },
    }
    if description:
        body["description"] = description
    return {"requestBody": body}


def install_body_schemas(app: FastAPI) -> None:
    """Add the schemas of documented bodies (and the models they use) to app.openapi()."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        document = generate()
        schemas = document.setdefault("components", {}).setdefault("schemas", {})
        for name, model in BODY_MODELS.items():
            schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
            for def_name, definition in schema.pop("$defs", {}).items():
                schemas.setdefault(def_name, definition)
            schemas.setdefault(name, schema)
        state_what_bodies_accept(schemas)
        return document

    app.openapi = openapi  # type: ignore[method-assign]


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


def state_what_bodies_accept(schemas: dict[str, Any]) -> None:
    """Rules the body models enforce but pydantic leaves out of their JSON Schema.

    Here and not in the models: the topics' published schemas come from the same models, and
    their compatibility gate would count each addition as a breaking change of a released
    version, although the decoders have always enforced it.
    """
    for schema in schemas.values():
        for prop in schema.get("properties", {}).values():
            _tag_required(prop, schemas)
    for model in _models_within(BODY_MODELS.values()):
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
