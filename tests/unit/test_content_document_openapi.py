"""GET /api/v1/content/{id} hands the read model's bytes through, so FastAPI documented its
200 as `{}`: a client generated from the OpenAPI document knew nothing of the main read. The
schema declared now must accept what the read model really serves (to_document's output)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import jsonschema
import orjson
from fastapi import FastAPI

from agents.readmodel.store import to_document
from gateway.routes import content_read
from schemas.content import CanonicalContent

NOW = datetime(2026, 12, 7, 6, 0, tzinfo=UTC)


def validator() -> jsonschema.Draft202012Validator:
    app = FastAPI()
    app.include_router(content_read.router)
    document = app.openapi()
    answer = document["paths"]["/api/v1/content/{content_id}"]["get"]["responses"]["200"]
    schema = answer["content"]["application/json"]["schema"]
    assert schema, "the 200 of GET /api/v1/content/{content_id} has no schema"
    root: dict[str, Any] = {**schema, "components": document["components"]}
    return jsonschema.Draft202012Validator(root, format_checker=jsonschema.FormatChecker())


def served(**changes: Any) -> dict[str, Any]:
    title = CanonicalContent.model_validate(
        {
            "canonical_id": uuid.uuid4(),
            "content_type": "movie",
            "title": "Heat",
            "genres": ["crime"],
            "release_year": 1995,
            "availability": [
                {
                    "platform": "netflix",
                    "availability_type": "subscription",
                    "regions": ["US"],
                }
            ],
            "updated_at": NOW,
        }
    )
    row = {
        "doc": title.model_dump_json(),
        "data_quality_score": 0.8,
        "enriched_at": NOW,
        "updated_at": NOW,
        **changes,
    }
    return orjson.loads(to_document(row))  # type: ignore[no-any-return]


def test_the_served_document_matches_its_openapi_schema() -> None:
    check = validator()
    for document in (served(), served(data_quality_score=None, enriched_at=None)):
        assert [e.message for e in check.iter_errors(document)] == []


def test_the_schema_names_the_fields_and_refuses_a_document_without_them() -> None:
    check = validator()
    document = served()
    del document["stored_at"], document["title"]
    messages = " ".join(e.message for e in check.iter_errors(document))
    assert "'stored_at' is a required property" in messages
    assert "'title' is a required property" in messages
