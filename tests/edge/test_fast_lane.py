"""The fast lane answers exactly as FastAPI's router does, request for request (GATEWAY_FAST_LANE
on and off), on the real broker and Redis: the same statuses, bodies and headers."""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from core.config import GatewaySettings, Settings
from gateway.app import create_app
from gateway.fast_lane import fast_routes
from gateway.problems import MEDIA_TYPE
from tests.auth.helpers import auth_headers, running_gateway

# Differ from request to request whatever the lane: ids and where the broker put the event.
VOLATILE_FIELDS = {"event_id", "offset", "partition", "request_id"}
COMPARED_HEADERS = ("content-type", "www-authenticate", "retry-after", "allow")


def record(**overrides: Any) -> dict[str, Any]:
    return {
        "canonical_id": str(uuid.uuid4()),
        "content_type": "movie",
        "title": "Heat",
        "genres": ["crime"],
        "release_year": 1995,
        "updated_at": "2026-11-01T00:00:00Z",
        **overrides,
    }


def cases(settings: Settings) -> dict[str, dict[str, Any]]:
    writer = {**auth_headers(settings), "Content-Type": "application/json"}
    reader = {
        **auth_headers(settings, scopes=("content:read",)),
        "Content-Type": "application/json",
    }
    return {
        "accepted": {"headers": writer, "json": record()},
        "invalid field": {"headers": writer, "json": record(release_year="soon")},
        "missing field": {"headers": writer, "json": {"title": "Heat"}},
        "malformed JSON": {"headers": writer, "content": b'{"title": "Heat",\n  oops}'},
        "not JSON": {"headers": {**writer, "Content-Type": "text/plain"}, "content": b"Heat"},
        "no credential": {"headers": {"Content-Type": "application/json"}, "json": record()},
        "bad token": {
            "headers": {"Authorization": "Bearer nope", "Content-Type": "application/json"},
            "json": record(),
        },
        "missing scope": {"headers": reader, "json": record()},
    }


def normalized(response: httpx.Response) -> tuple[int, Any, dict[str, str]]:
    body: Any = response.content
    if response.headers.get("content-type", "").startswith(("application/json", MEDIA_TYPE)):
        body = response.json()
        if isinstance(body, dict):
            body = {k: v for k, v in body.items() if k not in VOLATILE_FIELDS}
    headers = {h: response.headers[h] for h in COMPARED_HEADERS if h in response.headers}
    assert response.headers.get("x-request-id"), "every answer carries its request id"
    return response.status_code, body, headers


def lane(settings: Settings, fast: bool) -> Settings:
    gateway = GatewaySettings.model_validate({**settings.gateway.model_dump(), "fast_lane": fast})
    return settings.model_copy(update={"gateway": gateway})


def test_the_fast_lane_serves_the_hot_write_route(settings: Settings) -> None:
    routes = fast_routes(create_app(settings))
    assert ("POST", "/api/v1/content") in routes


async def test_both_lanes_answer_alike(settings: Settings) -> None:
    answers: dict[bool, dict[str, tuple[int, Any, dict[str, str]]]] = {}
    for fast in (True, False):
        async with running_gateway(lane(settings, fast)) as (_, client):
            answers[fast] = {
                name: normalized(await client.post("/api/v1/content", **request))
                for name, request in cases(settings).items()
            }
    for name, fast_answer in answers[True].items():
        assert fast_answer == answers[False][name], name
    statuses = {name: answer[0] for name, answer in answers[True].items()}
    assert statuses == {
        "accepted": 202,
        "invalid field": 422,
        "missing field": 422,
        "malformed JSON": 422,
        "not JSON": 415,
        "no credential": 401,
        "bad token": 401,
        "missing scope": 403,
    }
