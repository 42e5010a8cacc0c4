"""TEMPORARY stand-in for gateway/device_ownership.py (being written on another branch): deleted
when that lands. Same signature: 403 unknown_device unless the user's device list holds it."""

from __future__ import annotations

import orjson
from fastapi import Request

from gateway.auth.errors import Forbidden, challenge
from gateway.sync_lookup import read_view
from schemas.sync import SyncView


class UnknownDevice(Forbidden):
    code = "unknown_device"


async def require_own_device(request: Request, user_id: str, device_id: str) -> None:
    document = orjson.loads(await read_view(request, SyncView.devices, user_id))
    if device_id not in {d["device_id"] for d in document.get("devices", [])}:
        detail = f"device {device_id!r} is not registered to user {user_id!r}"
        raise UnknownDevice(detail, challenge("insufficient_scope", detail), "unknown_device")
