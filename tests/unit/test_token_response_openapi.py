"""POST /api/v1/auth/token passes the auth agent's answer through, so FastAPI documented its 200
as `{}`: a client generated from the OpenAPI document knew no field of the tokens. The schema
documented now must accept what every grant answers (grants.token_response)."""

from __future__ import annotations

from typing import Any

import jsonschema
from fastapi import FastAPI

from agents.auth.grants import token_response
from core.config import AuthSettings
from gateway.auth import token_routes


def schema() -> dict[str, Any]:
    app = FastAPI()
    app.include_router(token_routes.router)
    answer = app.openapi()["paths"]["/api/v1/auth/token"]["post"]["responses"]["200"]
    return answer["content"]["application/json"]["schema"]  # type: ignore[no-any-return]


def test_the_documented_tokens_are_what_a_grant_answers() -> None:
    documented = schema()
    assert documented, "the 200 of POST /api/v1/auth/token has no schema"
    body = token_response("a.b.c", "refresh-1", AuthSettings(), "watchlist:read").body
    jsonschema.Draft202012Validator(documented).validate(body)
    assert set(documented["required"]) == set(body)
