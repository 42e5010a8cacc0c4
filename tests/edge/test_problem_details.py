"""Every error is an RFC 9457 problem: unknown paths, wrong methods, bad input, the body limit,
an unexpected exception (a 500 naming no cause), and the OpenAPI document says so."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from loguru import logger

from core.config import Settings
from gateway.app import create_app
from gateway.problems import MEDIA_TYPE, TYPES
from tests.auth.helpers import bearer, random_ip, user_token

GATEWAY = Path(__file__).resolve().parents[2] / "gateway"
SECRET = "s3cr3t-in-the-exception"


@pytest.fixture
async def gateway(settings: Settings) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    app = create_app(settings)

    async def boom() -> None:
        raise RuntimeError(SECRET)

    # A route that fails unexpectedly, as a bug would.
    app.add_api_route("/boom", boom, include_in_schema=False)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app, client=(random_ip(), 40000))
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
            yield app, client


def assert_problem(response: httpx.Response, status: int, code: str, path: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == MEDIA_TYPE
    body = response.json()
    assert body["type"] == f"/problems/{code}"
    assert body["title"] == TYPES[code].title
    assert body["status"] == status
    assert body["detail"]
    assert body["instance"] == path
    assert body["error"] == code
    assert body["request_id"] == response.headers["X-Request-ID"]
    return body


async def test_unknown_path_wrong_method_and_bad_input_are_problems(
    gateway: tuple[FastAPI, httpx.AsyncClient], settings: Settings
) -> None:
    _, http = gateway
    missing = await http.get("/no/such/path")
    # Says what was asked and where the routes are, not only Starlette's "Not Found".
    assert assert_problem(missing, 404, "not_found", "/no/such/path")["detail"] == (
        "nothing is served at GET /no/such/path; every route is listed in the OpenAPI "
        "document, /openapi.json (/docs)"
    )
    wrong = await http.post("/api/v1/users/alice/watchlist")
    assert assert_problem(wrong, 405, "method_not_allowed", "/api/v1/users/alice/watchlist")[
        "detail"
    ] == ("POST is not served on this path; it serves GET, HEAD")
    token = bearer(user_token(settings, scopes=["content:write"]))
    bad = await http.post("/api/v1/content", json={"title": 3}, headers=token)
    body = assert_problem(bad, 422, "validation_failed", "/api/v1/content")
    assert body["fields"] and all(set(f) == {"field", "reason"} for f in body["fields"])
    anonymous = await http.post("/api/v1/content", json={})
    assert_problem(anonymous, 401, "unauthorized", "/api/v1/content")
    assert anonymous.headers["WWW-Authenticate"].startswith("Bearer")


async def test_the_body_limit_answers_a_problem(settings: Settings) -> None:
    small = settings.model_copy(
        update={"gateway": settings.gateway.model_copy(update={"max_body_bytes": 100})}
    )
    app = create_app(small)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app, client=(random_ip(), 40000))
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as http:
            big = await http.post("/api/v1/content", content=b"x" * 500)
    assert_problem(big, 413, "payload_too_large", "/api/v1/content")


async def test_a_500_names_no_cause_and_logs_the_traceback_with_the_request_id(
    gateway: tuple[FastAPI, httpx.AsyncClient],
) -> None:
    _, http = gateway
    logged: list[str] = []
    sink = logger.add(lambda m: logged.append(str(m)), level="ERROR")
    try:
        failed = await http.get("/boom", headers={"X-Request-ID": "req-500-test"})
    finally:
        logger.remove(sink)
    body = assert_problem(failed, 500, "internal_error", "/boom")
    assert body["request_id"] == "req-500-test"
    assert SECRET not in failed.text and "RuntimeError" not in failed.text
    (record,) = [line for line in logged if "req-500-test" in line]
    assert "Traceback" in record and SECRET in record


async def test_every_type_resolves_to_its_documentation(
    gateway: tuple[FastAPI, httpx.AsyncClient],
) -> None:
    _, http = gateway
    index = await http.get("/problems")
    assert index.status_code == 200
    assert {entry["error"] for entry in index.json()} == set(TYPES)
    missing = (await http.get("/nowhere")).json()
    page = await http.get(missing["type"])
    assert page.status_code == 200
    assert page.json()["title"] == missing["title"] and page.json()["description"]
    unknown = await http.get(f"/problems/{uuid.uuid4().hex}")
    assert unknown.json()["error"] == "not_found"


async def test_every_error_response_of_the_document_is_a_problem(
    gateway: tuple[FastAPI, httpx.AsyncClient],
) -> None:
    _, http = gateway
    document = (await http.get("/openapi.json")).json()
    assert document["components"]["schemas"]["Problem"]["properties"]["error"]["enum"] == sorted(
        TYPES
    )
    operations = 0
    for path, item in document["paths"].items():
        for method, operation in item.items():
            responses = operation["responses"]
            assert "500" in responses, f"{method} {path}"
            for status, response in responses.items():
                if status[0] in "45":
                    schema = response["content"][MEDIA_TYPE]["schema"]
                    assert schema == {"$ref": "#/components/schemas/Problem"}, (method, path)
            operations += 1
    assert operations > 25


def test_the_table_has_every_code_the_gateway_answers_with() -> None:
    """A code used without an entry would have a type that resolves to nothing."""
    used: set[str] = set()
    patterns = (
        r"(?:error_response|problem_bytes|problem_event|problem)\(\s*[^,]+,\s*\"([a-z_]+)\"",
        r"_raw_response\(\s*\d+,\s*b\"[^\"]*\",\s*\"([a-z_]+)\"",
        r"^\s+code = \"([a-z_]+)\"",
        r"^\s+\d{3}: \"([a-z_]+)\",",
    )
    for source in GATEWAY.rglob("*.py"):
        text = source.read_text()
        for pattern in patterns:
            used |= set(re.findall(pattern, text, flags=re.MULTILINE))
    assert len(used) > 20
    assert used <= set(TYPES), used - set(TYPES)


def test_the_contract_lists_every_code() -> None:
    contract = (GATEWAY.parent / "docs" / "HTTP_CONTRACT.md").read_text()
    listed = set(re.findall(r"^\| `([a-z_]+)` \|", contract, flags=re.MULTILINE))
    assert listed - {"error"} == set(TYPES)  # less the header row
