"""Every 2xx answer of the OpenAPI document says what its body is.

Routes that build their Response by hand (JSONResponse, a Redis value passed through, a stream)
were documented by FastAPI as `{}`: a client generated from the document knew nothing of them
(device codes, the JWKS, OpenID discovery, readiness, the event stream, ...). The walk below
fails on any such answer; the checks after it hold the hand-written schemas to what the code
really answers, so a schema cannot drift into a wrong one either.
"""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import jsonschema
import orjson
import pytest
import redis.asyncio as aioredis
from fastapi import FastAPI

from agents.auth.keys import new_key
from agreements.auth_state import jwks_key, sync_keys, version_key
from core.config import Settings, settings_with
from core.observability.health import ComponentResult, aggregate
from gateway.app import create_app
from gateway.auth import token_routes
from gateway.realtime.events import StreamRequest
from gateway.realtime.lifecycle import EXPIRED
from gateway.realtime.sse import EVENT_DATA, STREAM_CONTENT, end_event, problem_event
from gateway.routes import contracts

# 2xx answers that truly have no body, and why.
NO_BODY = {
    # RFC 7009 section 2.2: the revocation endpoint answers 200 with an empty body.
    ("post", "/api/v1/auth/revoke"),
}
STREAM = "/api/v1/users/{user_id}/stream"
REDIS_URL = "redis://127.0.0.1:6379/0"


def settings(**env: str) -> Settings:
    return settings_with(
        {
            "MGW_ENV_FILE": "/nonexistent/.env",
            "MGW_STACK_FILE": "none",
            "AUTH_JWT_SECRET": "openapi-answers-0123456789abcdef0123456789abcdef",
            **env,
        }
    )


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    return create_app(settings()).openapi()


def answers(document: dict[str, Any]) -> list[tuple[str, str, str, dict[str, Any]]]:
    return [
        (method, path, status, answer)
        for path, item in document["paths"].items()
        for method, operation in item.items()
        for status, answer in operation.get("responses", {}).items()
        if status.startswith("2")
    ]


def undocumented(document: dict[str, Any]) -> list[str]:
    """Each 2xx answer, by media type, whose body has no schema (or has none at all)."""
    missing: list[str] = []
    for method, path, status, answer in answers(document):
        where = f"{method.upper()} {path} {status}"
        content = answer.get("content")
        if not content:
            if status != "204" and (method, path) not in NO_BODY:
                missing.append(f"{where}: no content")
            continue
        missing.extend(
            f"{where} {media}: {{}}" for media, m in content.items() if not m.get("schema")
        )
    return missing


def test_every_2xx_answer_has_a_schema(document: dict[str, Any]) -> None:
    assert len(answers(document)) > 40, "the walk found too few answers to mean anything"
    assert undocumented(document) == []


def test_the_walk_catches_an_answer_documented_as_empty(document: dict[str, Any]) -> None:
    broken = orjson.loads(orjson.dumps(document))
    broken["paths"]["/health/ready"]["get"]["responses"]["200"]["content"] = {
        "application/json": {"schema": {}}
    }
    del broken["paths"]["/health/live"]["get"]["responses"]["200"]["content"]
    assert sorted(undocumented(broken)) == [
        "GET /health/live 200: no content",
        "GET /health/ready 200 application/json: {}",
    ]


def test_no_body_lists_only_answers_without_content(document: dict[str, Any]) -> None:
    # An entry whose route gained a body (or went away) must leave the allow-list.
    for method, path in NO_BODY:
        assert "content" not in document["paths"][path][method]["responses"]["200"]


def schema_of(document: dict[str, Any], method: str, path: str, status: str = "200") -> Any:
    content = document["paths"][path][method]["responses"][status]["content"]
    schema = content["application/json"]["schema"]
    root = {**schema, "components": document["components"]}
    return jsonschema.Draft202012Validator(root, format_checker=jsonschema.FormatChecker())


def test_the_stream_is_documented_as_an_event_stream_only(document: dict[str, Any]) -> None:
    content = document["paths"][STREAM]["get"]["responses"]["200"]["content"]
    assert list(content) == ["text/event-stream"]
    assert content == orjson.loads(orjson.dumps(STREAM_CONTENT))
    example = content["text/event-stream"]["example"]
    assert example.startswith("retry: ") and "\nevent: ready\ndata: {" in example


def test_the_stream_events_data_match_what_the_stream_writes() -> None:
    request = StreamRequest("u-1", "tv-1", frozenset({"sync"}), None)
    written = {
        "expired": end_event(EXPIRED, request, 1_765_090_000.0),
        "revoked": end_event("revoked", request, None),
        "problem": problem_event(request, 503, "service_unavailable", "shutting down"),
    }
    for name, frame in written.items():
        lines = frame.decode().strip().split("\n")
        assert lines[-2] == f"event: {name}"
        data = orjson.loads(lines[-1].removeprefix("data: "))
        jsonschema.Draft202012Validator(EVENT_DATA[name]).validate(data)


def test_the_readiness_report_matches_its_schema(document: dict[str, Any]) -> None:
    check = schema_of(document, "get", "/health/ready")
    refused = schema_of(document, "get", "/health/ready", "503")
    results = [
        ComponentResult("redis", True, 1.2, True, details={"version": "7"}),
        ComponentResult("qdrant", False, 3.0, False, "no answer within 2 s"),
    ]
    status, body = aggregate(results)
    assert status == 200
    assert [e.message for e in check.iter_errors(body)] == []
    status, body = aggregate([ComponentResult("kafka", False, 2.0, True, "refused")])
    assert status == 503
    assert [e.message for e in refused.iter_errors(body)] == []
    assert list(check.iter_errors({"status": "fine"})) != []


def test_the_contract_documents_match_their_schemas(document: dict[str, Any]) -> None:
    asyncapi = document["paths"]["/asyncapi.json"]["get"]["responses"]["200"]["content"]
    jsonschema.Draft202012Validator(asyncapi["application/json"]["schema"]).validate(
        orjson.loads(contracts._document("p", "127.0.0.1:9092"))
    )
    path = "/asyncapi/schemas/{topic}/v{version}.json"
    media = document["paths"][path]["get"]["responses"]["200"]["content"]
    check = jsonschema.Draft202012Validator(media["application/schema+json"]["schema"])
    for body in contracts._schemas().values():
        check.validate(orjson.loads(body))


async def ask(app: FastAPI, path: str) -> Any:
    transport = httpx.ASGITransport(app)
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
        answer = await client.get(path)
    assert answer.status_code == 200, answer.text
    return answer.json()


async def test_discovery_and_the_key_set_match_their_schemas(document: dict[str, Any]) -> None:
    app = FastAPI()
    app.include_router(token_routes.router)
    prefix = f"mgwtest-openapi-{uuid.uuid4().hex[:8]}"
    app.state.settings = settings(REDIS_KEY_PREFIX=prefix)
    redis = aioredis.from_url(REDIS_URL)
    app.state.redis = redis
    try:
        key = new_key()
        await sync_keys(redis, prefix, {key.kid: {**key.public_jwk, "exp_after": 1}})
        key_set = await ask(app, "/.well-known/jwks.json")
        discovery = await ask(app, "/.well-known/openid-configuration")
    finally:
        await redis.delete(jwks_key(prefix), version_key(prefix))
        await redis.aclose()
    assert [k["kid"] for k in key_set["keys"]] == [key.kid]
    for path, body in (("/.well-known/jwks.json", key_set),
                       ("/.well-known/openid-configuration", discovery)):  # fmt: skip
        check = schema_of(document, "get", path)
        assert [e.message for e in check.iter_errors(body)] == []
        assert list(check.iter_errors({})) != [], f"{path}: a schema that refuses nothing"
