"""Request bodies parsed by the route itself: JSON only (415 otherwise), validated by
pydantic-core straight from the bytes, errors in FastAPI's shape (422, each field and reason;
malformed JSON names its line and column), and the schema in the OpenAPI document.

Routes on the fast lane (gateway/fast_lane.py) take the raw `Request`, so FastAPI's body
machinery does not run for them on either lane; this is what keeps both lanes identical.
"""

from __future__ import annotations

from typing import Any, TypeVar

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError
from starlette.exceptions import HTTPException

M = TypeVar("M", bound=BaseModel)
# Models of bodies documented by openapi_body(), added to the document's components.
BODY_MODELS: dict[str, type[BaseModel]] = {}

JSON_TYPES = ("application/json",)


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
        return model.model_validate_json(raw)
    except ValidationError as exc:
        # loc "body" first, as FastAPI reports body fields; gateway/errors.py strips it again.
        raise RequestValidationError(
            [{**err, "loc": ("body", *err["loc"])} for err in exc.errors(include_url=False)]
        ) from None


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
        return document

    app.openapi = openapi  # type: ignore[method-assign]
