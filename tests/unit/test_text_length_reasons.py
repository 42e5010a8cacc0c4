"""A text field over its length bound is told in characters. Found by hand: an ingested item
with a 200,000-character description was refused with "Value should have at most 20000 items
after validation, not 200000" (pydantic counts a constrained `Text` as a sequence), on the
ingest routes, `mgw ingest` and the dead-letter reasons alike."""

from __future__ import annotations

from typing import Any

from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError

from agents.framework.runtime import describe_validation_error
from agreements.catalog_producer import validate_items
from gateway.errors import field_errors
from schemas.ingestion import RawCatalogItem

ITEM: dict[str, Any] = {
    "platform_item_id": "long",
    "title": "Long",
    "content_type": "movie",
    "source_updated_at": "2026-12-01T00:00:00Z",
    "description": "x" * 20_001,
    "external_ids": {"gracenote": "g" * 65},
}


def test_an_ingested_item_names_the_field_and_counts_characters() -> None:
    _, [rejected] = validate_items([ITEM], "netflix")
    reasons = {e.field: e.reason for e in rejected.errors}
    assert reasons["description"] == "String should have at most 20000 characters, not 20001"
    assert reasons["external_ids.gracenote"] == "String should have at most 64 characters, not 65"


def test_the_gateway_and_the_dead_letter_reasons_say_characters_too() -> None:
    try:
        RawCatalogItem.model_validate({**ITEM, "platform": "netflix"})
    except ValidationError as exc:
        error = exc
    described = describe_validation_error(error)
    assert "description: String should have at most 20000 characters, not 20001" in described
    fields = field_errors(RequestValidationError(error.errors()))
    assert {
        "field": "description",
        "reason": "String should have at most 20000 characters, not 20001",
    } in fields
    assert "items" not in described
