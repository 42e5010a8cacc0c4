"""Devices: a user's apps register themselves, send heartbeats (and what they play), leave; the
device list with online/offline is read from the Redis read model.

Registering, heartbeats and removal need `devices:write`, the list `devices:read`. A device is
online for 60 s after its last heartbeat (a registration counts as one); presence changes reach
the user's other devices on their devices channel.
"""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter, Request, Response, status
from pydantic import BaseModel, ConfigDict, Field

from agreements.sync_documents import DevicesDocument
from core.publisher import Publisher
from gateway.accepted import Accepted, accepted
from gateway.auth.dependencies import own_user
from gateway.bounds import device_limit
from gateway.device_operations import Heartbeat, send_heartbeat
from gateway.device_ownership import (
    FROM_PATH,
    note_membership,
    require_own_device,
)
from gateway.idempotency import operation_id
from gateway.json_body import json_body, openapi_body, optional_body
from gateway.request_parameters import (
    DEVICE_ID,
    USER_ID,
)
from gateway.routes.user_routes import (
    READ_RESPONSES,
    RESPONSES,
    device_checked,
    documented,
)
from gateway.sync_clock import operation_stamp
from gateway.sync_lookup import json_document, read_view
from schemas.envelope import Payload
from schemas.sync import (
    ONLINE_TIMEOUT_S,
    DeviceCapabilities,
    DeviceInfo,
    DevicePlatform,
    DeviceRegistered,
    DeviceRemoved,
    DeviceType,
    SyncView,
)
from topics.registry import (
    SYNC_DEVICE_REMOVALS,
    SYNC_DEVICES,
    TopicSpec,
)

router = APIRouter(prefix="/api/v1/users/{user_id}/devices", tags=["devices"])


class DeviceRegistration(BaseModel):
    """docs/RULES.md's DeviceInfo without the id (it is in the path)."""

    model_config = ConfigDict(extra="forbid")

    device_type: DeviceType
    platform: DevicePlatform
    capabilities: DeviceCapabilities = Field(default_factory=DeviceCapabilities)
    app_version: str = Field(min_length=1, max_length=64)
    device_name: str = Field(min_length=1, max_length=200)


async def _publish(request: Request, topic: TopicSpec, event: Payload, user_id: str) -> Response:
    publisher: Publisher = request.app.state.publisher
    published = await publisher.publish(topic, event, key=user_id, event_id=operation_id(request))
    return accepted(published)


@router.put(
    "/{device_id}",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=Accepted,
    responses={
        **RESPONSES,
        409: {
            "description": "`device_limit_reached`: a device not yet registered, and the user "
            "already has SYNC_MAX_DEVICES_PER_USER (20) devices; or `idempotency_in_flight`"
        },
    },
    openapi_extra=documented(
        USER_ID,
        DEVICE_ID,
        write=True,
        extra=openapi_body(DeviceRegistration, "the device's details; re-send when they change"),
    ),
)
async def register_device(request: Request) -> Response:
    _, user_id = await own_user(request, "devices:write")
    device_id = DEVICE_ID.read(request)
    details = await json_body(request, DeviceRegistration)
    refused = await device_limit(request, user_id, device_id)
    if refused is not None:
        return refused
    event = DeviceRegistered(
        user_id=user_id,
        device=DeviceInfo(device_id=device_id, **details.model_dump()),
        timestamp=await operation_stamp(request, user_id),
    )
    answer = await _publish(request, SYNC_DEVICES, event, user_id)
    # Known at once, not when the agent applies it: the device's next request may follow now.
    await note_membership(request, user_id, device_id, event.timestamp, registered=True)
    return answer


@router.post(
    "/{device_id}/heartbeat",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=Accepted,
    responses=device_checked(RESPONSES),
    openapi_extra=documented(
        USER_ID,
        DEVICE_ID,
        write=True,
        extra=openapi_body(
            Heartbeat, f"send one at least every {ONLINE_TIMEOUT_S} s", required=False
        ),
    ),
)
async def heartbeat(request: Request) -> Response:
    _, user_id = await own_user(request, "devices:write")
    device_id = DEVICE_ID.read(request)
    body = await optional_body(request, Heartbeat)
    await require_own_device(request, user_id, device_id, FROM_PATH)
    return accepted(
        await send_heartbeat(request.app, user_id, device_id, body, operation_id(request))
    )


@router.delete(
    "/{device_id}",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=Accepted,
    responses=device_checked(RESPONSES),
    openapi_extra=documented(USER_ID, DEVICE_ID, write=True),
)
async def remove_device(request: Request) -> Response:
    _, user_id = await own_user(request, "devices:write")
    device_id = DEVICE_ID.read(request)
    # Removing a device that is not registered (never, or already removed) is refused like any
    # other use of it: 403 unknown_device, not 404 (docs/SYNC.md).
    await require_own_device(request, user_id, device_id, FROM_PATH)
    event = DeviceRemoved(
        user_id=user_id, device_id=device_id, timestamp=await operation_stamp(request, user_id)
    )
    answer = await _publish(request, SYNC_DEVICE_REMOVALS, event, user_id)
    # Refused from now on, not only once the agent applied the removal.
    await note_membership(request, user_id, device_id, event.timestamp, registered=False)
    return answer


@router.get(
    "",
    responses={
        200: {"model": DevicesDocument, "description": "the devices, with presence as of now"},
        **READ_RESPONSES,
    },
    openapi_extra=documented(USER_ID),
)
async def list_devices(request: Request) -> Response:
    _, user_id = await own_user(request, "devices:read")
    document = DevicesDocument.model_validate_json(
        await read_view(request, SyncView.devices, user_id)
    )
    # Presence as of this read: the stored document knows only when each device was last seen.
    now = datetime.now(UTC)
    devices = [
        d.model_copy(update={"is_online": (now - d.last_seen).total_seconds() <= ONLINE_TIMEOUT_S})
        for d in document.devices
    ]
    fresh = document.model_copy(update={"devices": devices})
    return json_document(fresh.model_dump_json().encode())
