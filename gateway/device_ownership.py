"""Device ownership: a request that names a device (X-Device-ID, a command's target, a
heartbeat, a removal, a stream) must name a device registered to the path's user, or it is a
403 `unknown_device`. A registration itself is the exception (it is how a device becomes known).

The check reads the user's device register in Redis (agreements/device_register.py) with one
HMGET: the hot path (progress, commands, on the fast lane) pays one Redis round trip. Only when
the register is not loaded (it expired with the read model, or Redis lost it) does it read the
devices document (gateway/sync_lookup.py), which asks the sync agent on a miss; the agent's
answer loads the register too, so the next request is on the hot path again.

Registration and removal are 202-async: the gateway marks the device in the register as soon as
the broker accepted the event (`note_membership`), so the device can act the
moment its registration is answered, and is refused the moment its removal is. docs/SYNC.md.
"""

from __future__ import annotations

import redis.asyncio as aioredis
from fastapi import Request
from loguru import logger
from redis.exceptions import RedisError

from agreements.device_register import (
    COMPLETE,
    MARK_SCRIPT,
    is_registered,
    mark_arguments,
    register_key,
)
from agreements.sync_documents import DevicesDocument
from core.observability.metrics import DEVICE_CHECKS
from gateway.sync_lookup import read_view
from schemas.sync import HLC, SyncView

# The OpenAPI answer of every operation that checks ownership (gateway/routes/user_routes.py).
UNKNOWN_DEVICE = (
    "`unknown_device`: a device it names (X-Device-ID, or the path's) is not registered to "
    "this user (never registered, or removed)"
)
# Where a device id came from, as `fields` names it (as a 422 names its fields).
FROM_HEADER = "header.X-Device-ID"
FROM_PATH = "path.device_id"


class UnknownDevice(Exception):
    """A device that is not registered to the user: 403 `unknown_device`, naming where it came
    from (gateway/errors.py)."""

    def __init__(self, user_id: str, device_id: str, field: str) -> None:
        self.device_id = device_id
        self.field = field
        super().__init__(
            f"device {device_id!r} ({field}) is not registered to user {user_id!r} (never "
            f"registered, or removed); register it first with PUT /api/v1/users/{user_id}/"
            f"devices/{device_id}"
        )


async def require_own_device(
    request: Request, user_id: str, device_id: str, field: str = FROM_HEADER
) -> None:
    """403 `unknown_device` unless `device_id` is a device registered to `user_id`; `field`
    says where the request named it (the problem's `fields`)."""
    await require_own_devices(request, user_id, {device_id: field})


async def require_own_devices(request: Request, user_id: str, named: dict[str, str]) -> None:
    """Each device of `named` (device id -> the field that named it, e.g. "header.X-Device-ID")
    registered to `user_id`, checked in one Redis round trip; the first one that is not is a
    403 `unknown_device` naming its field."""
    app = request.app
    prefix = app.state.settings.redis.key_prefix
    ids = list(named)
    values = await app.state.redis.hmget(register_key(prefix, user_id), [*ids, COMPLETE])
    values, complete = values[:-1], values[-1] is not None
    undecided: list[str] = []
    for device_id, value in zip(ids, values, strict=True):
        if value is not None:
            if not is_registered(value):
                raise _refused(user_id, device_id, named[device_id])
        elif complete:
            raise _refused(user_id, device_id, named[device_id])
        else:
            undecided.append(device_id)
    if undecided:
        # The register is not loaded: the devices document decides (the agent's on a miss).
        DEVICE_CHECKS.labels("register_not_loaded").inc()
        document = DevicesDocument.model_validate_json(
            await read_view(request, SyncView.devices, user_id)
        )
        listed = {d.device_id for d in document.devices}
        for device_id in undecided:
            if device_id not in listed:
                raise _refused(user_id, device_id, named[device_id])
    DEVICE_CHECKS.labels("owned").inc()


def _refused(user_id: str, device_id: str, field: str) -> UnknownDevice:
    DEVICE_CHECKS.labels("unknown_device").inc()
    return UnknownDevice(user_id, device_id, field)


async def note_membership(
    request: Request, user_id: str, device_id: str, stamp: HLC, registered: bool
) -> None:
    """After the broker accepted a registration (or a removal): mark it in the register at
    once. A failure here is logged, not answered: the event is accepted, and the sync agent
    writes the same mark when it applies it."""
    app = request.app
    try:
        await mark(
            app.state.redis,
            app.state.settings.redis.key_prefix,
            user_id,
            device_id,
            stamp,
            registered,
        )
    except (RedisError, OSError) as exc:
        logger.warning(
            "device {} of {} accepted but not marked in the register (the agent will): {!r}",
            device_id,
            user_id,
            exc,
        )


async def mark(
    redis: aioredis.Redis, prefix: str, user_id: str, device_id: str, stamp: HLC, registered: bool
) -> None:
    """The gateway's write: one device's membership, unless a newer one is held."""
    await redis.register_script(MARK_SCRIPT)(
        keys=[register_key(prefix, user_id)],
        args=mark_arguments(False, {device_id: (stamp, registered)}),
    )
