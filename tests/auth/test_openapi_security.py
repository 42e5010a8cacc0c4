"""The OpenAPI document's security requirements hold what each route does: every operation
declares one, and calling it without a credential is a 401 exactly when the requirement says a
credential is needed; a bad credential is a 401 wherever one is read (required or optional),
and ignored where the requirement is public. Both lanes (fast lane on and off), in-process on
the session's broker and Redis.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from core.config import RateLimitSettings, Settings
from gateway.openapi_security import API_KEY, BEARER, SCHEMES, needs_credential
from tests.auth.helpers import bearer, random_ip, running_gateway

METHODS = ("get", "put", "post", "delete", "patch")
# A value each path parameter accepts, so that a refusal is about the credential.
PATH_VALUES = {
    "content_id": str(uuid.uuid4()),
    "user_id": "user-openapi",
    "device_id": "tv-1",
    "platform": "netflix",
    "item_id": "item-1",
    "topic": "content.raw",
    "version": "1",
    "code": "unauthorized",
    "profile_id": "kid",
    "key_id": "0123456789ab",
    "notification_id": str(uuid.uuid4()),
}
BAD_TOKEN = bearer("not.a.token")


@pytest.fixture(params=[True, False], ids=["fast lane", "FastAPI router"])
async def gateway(
    request: pytest.FixtureRequest, settings: Settings, topics_created: None
) -> AsyncIterator[FastAPI]:
    local = settings.model_copy(
        update={
            # On: the rate limiter is what reads a credential on the routes open to anyone.
            "rate_limit": RateLimitSettings(enabled=True),
            "gateway": settings.gateway.model_copy(
                update={"fast_lane": request.param, "lookup_on_miss": False}
            ),
        }
    )
    async with running_gateway(local) as (app, _):
        yield app


def operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method, path, operation)
        for path, item in document["paths"].items()
        for method, operation in item.items()
        if method in METHODS
    ]


def concrete(path: str) -> str:
    for name, value in PATH_VALUES.items():
        path = path.replace(f"{{{name}}}", value)
    assert "{" not in path, f"give the test a value for the parameters of {path}"
    return path


async def call(app: FastAPI, method: str, path: str, headers: dict[str, str]) -> httpx.Response:
    # From an address of its own each time: anonymous limits (5/s) never answer first.
    transport = httpx.ASGITransport(app, client=(random_ip(), 40000))
    # A body of the right media type where one is taken: a refusal is then never a 415.
    body = {"json": {}} if method in ("put", "post", "patch") else {}
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
        return await client.request(method, concrete(path), headers=headers, timeout=10, **body)


def test_the_document_declares_both_schemes(settings: Settings) -> None:
    from gateway.app import create_app

    document = create_app(settings).openapi()
    schemes = document["components"]["securitySchemes"]
    assert schemes == SCHEMES
    assert schemes[BEARER] == {**schemes[BEARER], "type": "http", "scheme": "bearer"}
    assert (schemes[API_KEY]["in"], schemes[API_KEY]["name"]) == ("header", "X-API-Key")
    for method, path, operation in operations(document):
        assert "security" in operation, f"{method.upper()} {path} declares no security"
        for requirement in operation["security"]:
            assert set(requirement) <= set(schemes), (method, path, requirement)


async def test_each_operation_refuses_exactly_when_it_says_it_needs_a_credential(
    gateway: FastAPI,
) -> None:
    document = gateway.openapi()
    checked: dict[str, int] = {"required": 0, "optional": 0, "public": 0}
    wrong: list[str] = []
    for method, path, operation in operations(document):
        security = operation["security"]
        kind = "required" if needs_credential(security) else "optional" if security else "public"
        checked[kind] += 1
        anonymous = await call(gateway, method, path, {})
        if (anonymous.status_code == 401) != (kind == "required"):
            wrong.append(f"{method.upper()} {path} ({kind}): {anonymous.status_code} anonymous")
        bad = await call(gateway, method, path, BAD_TOKEN)
        if (bad.status_code == 401) != (kind != "public"):
            wrong.append(f"{method.upper()} {path} ({kind}): {bad.status_code} with a bad token")
    assert not wrong, "\n".join(wrong)
    # Each kind exists, so each branch above was exercised.
    assert all(checked.values()), checked
