"""The gateway's checks of the per-user bounds of sync: devices per user and watchlist size.

Both read Redis only (the gateway never reads PostgreSQL) and refuse with 409 what would cross
the bound. Devices: the user's device register (agreements/device_register.py, one HGETALL),
which the gateway marks as each registration is accepted, so a burst of registrations is
counted before the agent applied them; while the register is not complete, the devices
document adds what the agent last wrote. The watchlist: its read-model document (one HGET). The
check is a courtesy with a clear answer, not the guarantee: two writes can pass it together, a
document can be a moment old, and a user of whom Redis holds nothing is let through (asking
the sync agent would make every write wait on a lookup). The sync agent, which holds each
user's lock while it merges, enforces the same bound and drops what got past
(agents/sync/batches.py). See docs/OPERATIONS.md#bounds.
"""

from __future__ import annotations

import uuid

import orjson
from fastapi import Request, Response

from agreements.device_register import COMPLETE, is_registered, register_key
from agreements.sync_read_model import read_document
from core.observability.metrics import BOUND_REFUSALS
from gateway.errors import error_response
from schemas.sync import SyncView


async def _document(request: Request, view: SyncView, user_id: str) -> bytes | None:
    app = request.app
    return await read_document(app.state.redis, app.state.settings.redis.key_prefix, view, user_id)


def registered_devices(document: bytes) -> set[str]:
    """The device ids of a devices document (it lists registered devices only)."""
    return {entry["device_id"] for entry in orjson.loads(document)["devices"]}


async def _registered(request: Request, user_id: str) -> set[str]:
    """The user's registered devices as far as Redis knows them."""
    app = request.app
    prefix = app.state.settings.redis.key_prefix
    raw = await app.state.redis.hgetall(register_key(prefix, user_id))
    fields = {_text(name): value for name, value in raw.items()}
    complete = fields.pop(COMPLETE, None) is not None
    devices = {name for name, value in fields.items() if is_registered(value)}
    if not complete:
        document = await _document(request, SyncView.devices, user_id)
        if document is not None:
            removed = set(fields) - devices
            devices |= registered_devices(document) - removed
    return devices


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


async def device_limit(request: Request, user_id: str, device_id: str) -> Response | None:
    """409 `device_limit_reached` when `device_id` is new and the user has the most devices."""
    cap = request.app.state.settings.sync.max_devices_per_user
    devices = await _registered(request, user_id)
    if device_id in devices or len(devices) < cap:
        return None
    BOUND_REFUSALS.labels(bound="devices_per_user", where="gateway").inc()
    return error_response(
        409,
        "device_limit_reached",
        f"user {user_id} already has {len(devices)} registered devices (at most {cap}); "
        "remove one first",
        request,
        fields=[{"field": "device_id", "reason": f"a new device past the limit of {cap}"}],
    )


# The document is this code base's own compact JSON (pydantic), one `content_id` per entry: the
# size and the membership are read from the bytes, without parsing a 5,000-title list.
_ENTRY = b'"content_id":"'


def watchlist_size(document: bytes) -> int:
    return document.count(_ENTRY)


def on_watchlist(document: bytes, content_id: uuid.UUID) -> bool:
    return _ENTRY + str(content_id).encode() + b'"' in document


async def watchlist_limit(request: Request, user_id: str, content_id: uuid.UUID) -> Response | None:
    """409 `watchlist_full` when the title is not on a list that already holds the most."""
    cap = request.app.state.settings.sync.max_watchlist_size
    document = await _document(request, SyncView.watchlist, user_id)
    if document is None:
        return None
    size = watchlist_size(document)
    if size < cap or on_watchlist(document, content_id):
        return None
    BOUND_REFUSALS.labels(bound="watchlist_size", where="gateway").inc()
    return error_response(
        409,
        "watchlist_full",
        f"the watchlist of {user_id} holds {size} titles (at most {cap}); remove one first",
        request,
        fields=[{"field": "content_id", "reason": f"a new title past the limit of {cap}"}],
    )
