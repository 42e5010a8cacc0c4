"""Credentials for tests that talk to a gateway of the session (in-process or spawned)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager

import httpx
from fastapi import FastAPI

from core.config import AuthSettings, Settings
from gateway.app import create_app
from gateway.auth.tokens import issue_token


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def user_token(
    auth: AuthSettings | Settings,
    subject: str | None = None,
    scopes: Iterable[str] = ("content:write",),
    tier: str = "enterprise",
    **kwargs: object,
) -> str:
    """A token the session's gateways accept (signed with the session's AUTH_JWT_SECRET).

    Enterprise tier and a fresh subject by default, so a test's own requests never meet
    another test's rate-limit counters.
    """
    if isinstance(auth, Settings):
        auth = auth.auth
    return issue_token(
        auth,
        subject=subject or f"user-{uuid.uuid4().hex[:12]}",
        scopes=scopes,
        tier=tier,
        **kwargs,  # type: ignore[arg-type]
    )


def auth_headers(settings: Settings, scopes: Iterable[str] = ("content:write",)) -> dict[str, str]:
    return bearer(user_token(settings, scopes=scopes))


def random_ip() -> str:
    """A client address of its own, so anonymous requests get a rate-limit bucket of their own."""
    raw = uuid.uuid4().bytes
    return f"10.{raw[0]}.{raw[1]}.{raw[2] or 1}"


@asynccontextmanager
async def running_gateway(
    settings: Settings, client_ip: str | None = None
) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    """The gateway app in this process, its lifespan run, and a client talking ASGI to it."""
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app, client=(client_ip or random_ip(), 40000))
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
            yield app, client


def with_auth(settings: Settings, **updates: object) -> Settings:
    """Settings with some AUTH_* values replaced (validated, so strings become SecretStr)."""
    auth = AuthSettings.model_validate({**settings.auth.model_dump(), **updates})
    return settings.model_copy(update={"auth": auth})


DEVICE_DETAILS = {
    "device_type": "tv",
    "platform": "tizen",
    "app_version": "1.0",
    "device_name": "a test device",
    "capabilities": {"remote_controllable": True},
}


async def register_devices(
    http: httpx.AsyncClient, settings: Settings, user_id: str, *device_ids: str
) -> None:
    """Register devices of `user_id` (with a token of their own holding `devices:write`): every
    request that names a device must name a registered one (403 unknown_device otherwise). The
    gateway knows a device as soon as its registration is accepted, agent or not."""
    headers = bearer(user_token(settings, subject=user_id, scopes=["devices:write"]))
    for device_id in device_ids:
        resp = await http.put(
            f"/api/v1/users/{user_id}/devices/{device_id}", json=DEVICE_DETAILS, headers=headers
        )
        assert resp.status_code == 202, resp.text


async def remove_device(
    http: httpx.AsyncClient, settings: Settings, user_id: str, device_id: str
) -> None:
    """Remove a device of `user_id`: refused from the moment the removal is accepted."""
    headers = bearer(user_token(settings, subject=user_id, scopes=["devices:write"]))
    resp = await http.delete(f"/api/v1/users/{user_id}/devices/{device_id}", headers=headers)
    assert resp.status_code == 202, resp.text
