"""Request bodies take only what their OpenAPI schema says, and the document says all it can."""

from __future__ import annotations

import uuid
from typing import Any

import orjson
import pytest
from pydantic import ValidationError

from gateway.body_schema import NO_NUL, NO_NUL_NOT_BLANK, state_what_bodies_accept
from gateway.json_body import BODY_MODELS, parse_strict
from schemas.content import CanonicalContent
from tests.edge.fuzz_rules import refused_by_documented_rule


def content(**fields: Any) -> bytes:
    body = {
        "canonical_id": str(uuid.uuid4()),
        "content_type": "movie",
        "title": "Heat",
        "genres": ["drama"],
        "updated_at": "2026-11-01T00:00:00Z",
        **fields,
    }
    return orjson.dumps(body)


def refused(raw: bytes) -> dict[str, str]:
    with pytest.raises(ValidationError) as caught:
        parse_strict(raw, CanonicalContent)
    return {".".join(map(str, e["loc"])): e["msg"] for e in caught.value.errors()}


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"updated_at": 0}, "updated_at"),  # a number for a date-time
        ({"updated_at": "0.5"}, "updated_at"),  # pydantic would read a Unix time
        ({"updated_at": "2026-11-01T00:00:00"}, "updated_at"),  # no offset: not RFC 3339
        ({"release_date": "1700000000"}, "release_date"),
        ({"release_year": "1999"}, "release_year"),  # a string for an integer
        ({"release_year": True}, "release_year"),
        ({"release_year": 1999.5}, "release_year"),
        ({"popularity_score": "5"}, "popularity_score"),
    ],
)
def test_values_of_another_json_type_or_form_are_refused(
    fields: dict[str, Any], field: str
) -> None:
    assert field in refused(content(**fields))


def test_what_json_schema_calls_valid_is_taken() -> None:
    got = parse_strict(
        content(
            release_year=1999.0,  # JSON Schema: an integer
            popularity_score=3,  # an integer is a number
            release_date="1999-06-01",
            updated_at="2026-11-01T10:00:00.123456789+02:00",
        ),
        CanonicalContent,
    )
    assert got.release_year == 1999 and isinstance(got.release_year, int)
    assert got.popularity_score == 3.0
    assert got.release_date is not None and got.release_date.isoformat() == "1999-06-01"
    assert got.updated_at.utcoffset() is not None


def test_an_integral_float_too_large_for_any_field_is_refused_not_a_crash() -> None:
    assert "release_year" in refused(content(release_year=1e300))


def test_topic_decoding_stays_lenient() -> None:
    # The documented forms are a rule of the HTTP contract: records on topics (and older
    # ones in PostgreSQL) are read as before.
    got = CanonicalContent.model_validate_json(content(updated_at="2026-11-01T00:00:00"))
    assert got.updated_at.tzinfo is None


def document() -> dict[str, Any]:
    schemas: dict[str, Any] = {}
    for name, model in BODY_MODELS.items():
        schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
        schemas.update(schema.pop("$defs", {}))
        schemas[name] = schema
    state_what_bodies_accept(schemas, BODY_MODELS.values())
    return schemas


def test_the_document_states_the_rules_pydantic_leaves_out() -> None:
    import gateway.app  # noqa: F401  registers every route's body model

    schemas = document()
    props = schemas["CanonicalContent"]["properties"]
    assert props["title"]["pattern"] == NO_NUL_NOT_BLANK  # trimmed, then at least 1 char
    assert props["source_platforms"]["items"]["pattern"] == "^[a-z0-9_]+$"
    imdb = schemas["ExternalIds"]["properties"]["imdb"]["anyOf"][0]
    assert imdb["pattern"] == r"^tt\d{5,10}$"
    assert schemas["ExternalIds"]["properties"]["platform_ids"]["propertyNames"]["pattern"]
    character = schemas["Credit"]["properties"]["character"]
    assert any(b.get("pattern") == NO_NUL for b in character.get("anyOf", [character]))
    availability = schemas["PlatformAvailability"]
    assert availability["allOf"][0]["then"]["required"] == ["price_cents", "currency"]
    # A command is told apart by `type`: the document must not call it optional.
    assert "type" in schemas["Play"]["required"]


@pytest.mark.parametrize(
    ("operation", "body", "excused"),
    [
        (
            "GET /api/v1/search",
            {"fields": [{"field": "query.rating_min/rating_max", "reason": "rating_range: x"}]},
            True,
        ),
        (
            "PUT /api/v1/users/{user_id}/watchlist/{content_id}",
            {"fields": [{"field": "timestamp", "reason": "is 9 s ahead of the server's clock"}]},
            True,
        ),
        # The same words on another field, or another field beside them, stay findings.
        (
            "GET /api/v1/search",
            {"fields": [{"field": "query.genres", "reason": "rating_range"}]},
            False,
        ),
        (
            "GET /api/v1/search",
            {
                "fields": [
                    {"field": "query.rating_min/rating_max", "reason": "rating_range: x"},
                    {"field": "query.q", "reason": "required"},
                ]
            },
            False,
        ),
        ("POST /api/v1/ingest/{platform}/items", {"accepted": 0, "results": [{}]}, True),
        ("POST /api/v1/content", {"fields": []}, False),
    ],
)
def test_only_rules_the_document_states_in_words_excuse_a_refusal(
    operation: str, body: dict[str, Any], excused: bool
) -> None:
    assert refused_by_documented_rule(operation, 422, body) is excused
    assert not refused_by_documented_rule(operation, 400, body)
