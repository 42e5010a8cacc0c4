"""The published topic contracts: the AsyncAPI 3 document, a readable page of it, and the JSON
Schema of each topic version, all generated from the catalog and payload models (topics/).

Public like /openapi.json: they describe what subscribers may read, never data.
"""

from __future__ import annotations

import functools
import json

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from gateway.errors import error_response
from gateway.realtime.socket_asyncapi import with_device_socket
from topics.asyncapi import build_asyncapi
from topics.consumers import load_index
from topics.json_schema import all_schemas
from topics.markdown import topics_markdown
from topics.page import topics_page
from topics.registry import TOPICS

router = APIRouter(tags=["contracts"])

# Both are documents whose own specifications give their shape; stated here is what every one
# served holds (the fields _document and all_schemas always write), not {}.
ASYNCAPI_DOCUMENT = {
    "type": "object",
    "required": ["asyncapi", "info", "channels", "operations", "components"],
    "properties": {
        "asyncapi": {"type": "string", "pattern": "^3\\."},
        "info": {"type": "object"},
        "channels": {"type": "object"},
        "operations": {"type": "object"},
        "components": {"type": "object"},
    },
}
JSON_SCHEMA_DOCUMENT = {
    "type": "object",
    "required": ["$schema", "$id", "type", "properties"],
    "properties": {
        "$schema": {"const": "https://json-schema.org/draft/2020-12/schema"},
        "$id": {"type": "string"},
        "x-topic": {"type": "string"},
    },
}


@functools.cache
def _document(prefix: str, bootstrap: str) -> bytes:
    document = with_device_socket(build_asyncapi(load_index(), prefix=prefix, bootstrap=bootstrap))
    return json.dumps(document, ensure_ascii=False).encode()


@functools.cache
def _page() -> str:
    return topics_page(topics_markdown(load_index()), "/asyncapi.json")


@functools.cache
def _schemas() -> dict[tuple[str, int], bytes]:
    return {
        key: json.dumps(schema, ensure_ascii=False).encode()
        for key, schema in all_schemas(list(TOPICS)).items()
    }


@router.get(
    "/asyncapi.json",
    summary="AsyncAPI 3 document of every topic",
    response_class=Response,
    responses={
        200: {
            "description": "the AsyncAPI 3 document (its own specification says the rest)",
            "content": {"application/json": {"schema": ASYNCAPI_DOCUMENT}},
        }
    },
)
async def asyncapi_document(request: Request) -> Response:
    kafka = request.app.state.settings.kafka
    return Response(_document(kafka.topic_prefix, kafka.bootstrap), media_type="application/json")


@router.get(
    "/asyncapi", summary="The topic contracts as a readable page", response_class=HTMLResponse
)
async def asyncapi_page() -> HTMLResponse:
    return HTMLResponse(_page())


@router.get(
    "/asyncapi/schemas/{topic}/v{version}.json",
    summary="JSON Schema (draft 2020-12) of one topic version's envelope",
    response_class=Response,
    responses={
        200: {
            "description": "a JSON Schema (draft 2020-12) of the topic version's envelope",
            "content": {"application/schema+json": {"schema": JSON_SCHEMA_DOCUMENT}},
        },
        404: {"description": "no such topic, or no such version of it"},
    },
)
async def topic_schema(request: Request, topic: str, version: int) -> Response:
    schemas = _schemas()
    body = schemas.get((topic, version))
    if body is None:
        versions = sorted(v for t, v in schemas if t == topic)
        reason = (
            {"field": "version", "reason": f"{topic} has versions {versions}"}
            if versions
            else {"field": "topic", "reason": f"no topic {topic!r} in the catalog"}
        )
        return error_response(
            404, "not_found", f"no schema for {topic} v{version}", request, [reason]
        )
    return Response(body, media_type="application/schema+json")
