"""Request bodies parsed by the route itself: JSON only (415 otherwise), validated by
pydantic-core straight from the bytes, errors in FastAPI's shape (422, each field and reason;
malformed JSON names its line and column), and the schema in the OpenAPI document.

Routes on the fast lane (gateway/fast_lane.py) take the raw `Request`, so FastAPI's body
machinery does not run for them on either lane; this is what keeps both lanes identical.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, TypeVar

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError
from starlette.exceptions import HTTPException

from gateway.body_schema import state_what_bodies_accept
from schemas.storable import DOCUMENTED_FORMS

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


async def optional_body(request: Request, model: type[M]) -> M:
    """The JSON body as `model`, or `model()` when the request has no body at all."""
    if not request.headers.get("content-type") and not await request.body():
        return model()
    return await json_body(request, model)


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


def openapi_body(
    model: type[BaseModel], description: str = "", *, required: bool = True
) -> dict[str, Any]:
    """`openapi_extra` that documents a JSON body of `model` (its schema is added to the
    document's components by `install_body_schemas`); one not `required` may be left out
    (`optional_body`)."""
    BODY_MODELS[model.__name__] = model
    body: dict[str, Any] = {
        "required": required,
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
        state_what_bodies_accept(schemas, BODY_MODELS.values())
        return document

    app.openapi = openapi  # type: ignore[method-assign]
