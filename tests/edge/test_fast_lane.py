"""The fast lane answers exactly as FastAPI's router does, request for request (GATEWAY_FAST_LANE
on and off), on the real broker and Redis: the same statuses, bodies and headers, on literal
paths and on path templates; and it refuses a fast route another route's template could
shadow."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from fastapi import APIRouter, Request, Response
from prometheus_client import REGISTRY

from core.config import GatewaySettings, Settings
from gateway.app import create_app
from gateway.fast_lane import MARKER, fast_routes
from gateway.problems import MEDIA_TYPE
from tests.auth.helpers import (
    auth_headers,
    bearer,
    register_devices,
    remove_device,
    running_gateway,
    user_token,
)
from tests.helpers import catalog_title

# Differ from request to request whatever the lane: ids and where the broker put the event.
VOLATILE_FIELDS = {
    "event_id",
    "offset",
    "partition",
    "request_id",
    # Stamped from the user's clock and made per request, whichever lane.
    "timestamp",
    "unique_tag",
    "command_id",
    "expires_at",
}
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


def test_the_fast_lane_serves_every_route_that_parses_itself(settings: Settings) -> None:
    routes = fast_routes(create_app(settings))
    for method, path in [
        ("POST", "/api/v1/content"),
        ("GET", f"/api/v1/content/{uuid.uuid4()}"),
        ("GET", "/api/v1/search"),
        ("PUT", f"/api/v1/users/u1/watchlist/{uuid.uuid4()}"),
        ("PUT", f"/api/v1/users/u1/progress/{uuid.uuid4()}"),
        ("POST", "/api/v1/users/u1/devices/tv-1/heartbeat"),
        ("POST", "/api/v1/users/u1/devices/tv-1/commands"),
        ("GET", "/api/v1/users/u1/devices"),
    ]:
        assert routes.match(method, path) is not None, (method, path)
    found = routes.match("PUT", "/api/v1/users/u1/devices/tv-1")
    assert found is not None
    route, params = found
    assert route.template == "/api/v1/users/{user_id}/devices/{device_id}"
    assert params == {"user_id": "u1", "device_id": "tv-1"}
    # Routes with FastAPI's own parameters, and paths no route has, are left to FastAPI.
    for method, path in [
        ("POST", "/api/v1/ingest/netflix/items"),
        ("PATCH", "/api/v1/users/u1/devices/tv-1"),
        ("GET", "/api/v1/users/u1/devices/tv-1/extra"),
        ("PUT", "/api/v1/users/u1/watchlist/"),
    ]:
        assert routes.match(method, path) is None, (method, path)


def test_a_fast_route_another_template_could_shadow_is_refused(settings: Settings) -> None:
    app = create_app(settings)
    extra = APIRouter(prefix="/api/v1/users/{user_id}/devices")

    @extra.put("/mine", openapi_extra={MARKER: True})
    async def mine(request: Request) -> Response:  # pragma: no cover - never served
        return Response()

    app.include_router(extra)
    with pytest.raises(ValueError, match="may match the paths of"):
        fast_routes(app)


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


def templated_cases(settings: Settings, user: str, title: uuid.UUID) -> dict[str, dict[str, Any]]:
    """Requests to templated fast routes: accepted, refused at each check, and the misses;
    `title` is one the catalog has (a watchlist add of another is 404)."""
    token = user_token(
        settings,
        subject=user,
        scopes=["watchlist:write", "progress:write", "progress:read", "devices:write"],
    )
    own, device = bearer(token), {"X-Device-ID": "phone-1"}
    progress = {"position_seconds": 10, "duration_seconds": 100, "state": "playing"}
    users = f"/api/v1/users/{user}"
    return {
        "watchlist add": {"method": "PUT", "url": f"{users}/watchlist/{title}", "headers": own},
        "watchlist bad title": {"method": "PUT", "url": f"{users}/watchlist/nope", "headers": own},
        "another user": {
            "method": "PUT",
            "url": f"/api/v1/users/x{user}/watchlist/{title}",
            "headers": own,
        },
        "bad user id": {
            "method": "PUT",
            "url": f"/api/v1/users/a%20b/watchlist/{title}",
            "headers": own,
        },
        "missing scope": {"method": "PUT", "url": f"{users}/watchlist/{title}"},
        "no credential": {"method": "PUT", "url": f"{users}/watchlist/{title}", "headers": {}},
        "progress": {
            "method": "PUT",
            "url": f"{users}/progress/{title}",
            "headers": {**own, **device},
            "json": progress,
        },
        "progress from a removed device": {
            "method": "PUT",
            "url": f"{users}/progress/{title}",
            "headers": {**own, "X-Device-ID": "gone-1"},
            "json": progress,
        },
        "heartbeat of a removed device": {
            "method": "POST",
            "url": f"{users}/devices/gone-1/heartbeat",
            "headers": own,
        },
        "progress without device": {
            "method": "PUT",
            "url": f"{users}/progress/{title}",
            "headers": own,
            "json": progress,
        },
        "progress past the end": {
            "method": "PUT",
            "url": f"{users}/progress/{title}",
            "headers": {**own, **device},
            "json": {**progress, "position_seconds": 101},
        },
        "heartbeat, no body": {
            "method": "POST",
            "url": f"{users}/devices/phone-1/heartbeat",
            "headers": own,
        },
        "heartbeat, not JSON": {
            "method": "POST",
            "url": f"{users}/devices/phone-1/heartbeat",
            "headers": {**own, "Content-Type": "text/plain"},
            "content": b"beat",
        },
        "resume point": {"method": "GET", "url": f"{users}/progress/{uuid.uuid4()}"},
        "method not allowed": {"method": "PATCH", "url": f"{users}/devices/phone-1"},
        "content, no such title": {"method": "GET", "url": f"/api/v1/content/{uuid.uuid4()}"},
        "content, not a UUID": {"method": "GET", "url": "/api/v1/content/not-a-uuid"},
    }


def _device_checks(outcome: str) -> float:
    return REGISTRY.get_sample_value("mgw_device_checks_total", {"outcome": outcome}) or 0.0


async def test_both_lanes_answer_alike_on_path_templates(settings: Settings) -> None:
    # One user for both lanes, so the second lane reads what the first one wrote.
    user = f"lanes-{uuid.uuid4().hex[:8]}"
    quick = settings.model_copy(
        update={
            "gateway": GatewaySettings.model_validate(
                {**settings.gateway.model_dump(), "lookup_on_miss": False}
            )
        }
    )
    cases = templated_cases(settings, user, await catalog_title(settings))
    async with running_gateway(quick) as (_, client):
        # Known to the gateway as soon as accepted: no sync agent runs here.
        await register_devices(client, settings, user, "phone-1", "gone-1")
        await remove_device(client, settings, user, "gone-1")
    refused_before = _device_checks("unknown_device")
    answers: dict[bool, dict[str, tuple[int, Any, dict[str, str]]]] = {}
    for fast in (True, False):
        async with running_gateway(lane(quick, fast)) as (_, client):
            answers[fast] = {}
            for name, case in cases.items():
                headers = case.get("headers", bearer(user_token(settings, subject=user)))
                request = {k: v for k, v in case.items() if k not in ("method", "url", "headers")}
                answer = await client.request(
                    case["method"], case["url"], headers=headers, **request
                )
                answers[fast][name] = normalized(answer)
    for name, fast_answer in answers[True].items():
        assert fast_answer == answers[False][name], name
    statuses = {name: answer[0] for name, answer in answers[True].items()}
    assert statuses == {
        "watchlist add": 202,
        "watchlist bad title": 422,
        "another user": 403,
        "bad user id": 422,
        "missing scope": 403,
        "no credential": 401,
        "progress": 202,
        "progress from a removed device": 403,
        "heartbeat of a removed device": 403,
        "progress without device": 422,
        "progress past the end": 422,
        "heartbeat, no body": 202,
        "heartbeat, not JSON": 415,
        "resume point": 403,
        "method not allowed": 405,
        "content, no such title": 404,
        "content, not a UUID": 422,
    }
    # Two refused cases on each lane, each counted once.
    assert _device_checks("unknown_device") - refused_before == 4
    for name, field in (
        ("progress from a removed device", "header.X-Device-ID"),
        ("heartbeat of a removed device", "path.device_id"),
    ):
        body = answers[True][name][1]
        assert body["error"] == "unknown_device" and body["fields"][0]["field"] == field, name
