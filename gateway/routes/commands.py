"""Remote commands: one of the user's devices (X-Device-ID) asks another (the path's device) to
play, pause, seek, ... (a RemoteCommandIssued on sync.commands).

Needs `devices:command`, on one's own user id only: a user cannot command another user's
devices (403), and device ids are looked up among the caller's own devices. The answer is 202
with the command id once the broker has the command; the command router then delivers it to
the target device and the outcome (delivered, or expired / device_offline / not_supported) to
the sender, as a command_result on the user's notifications channel. Parameters out of their
range are refused here, 422 naming the field (agreements/command_parameters.py).
"""

from __future__ import annotations

import uuid
from datetime import datetime

from fastapi import APIRouter, Request, Response, status
from pydantic import BaseModel

from gateway.accepted import accepted
from gateway.auth.dependencies import own_user
from gateway.device_operations import CommandRequest, self_command
from gateway.device_operations import send_command as send_command_of
from gateway.device_ownership import FROM_HEADER, FROM_PATH, require_own_devices
from gateway.idempotency import operation_id
from gateway.json_body import json_body, openapi_body
from gateway.request_parameters import (
    ACTING_DEVICE,
    DEVICE_ID,
    USER_ID,
)
from gateway.routes.user_routes import (
    device_checked,
    documented,
    responses_with_rules,
)
from schemas.sync import wire_time

router = APIRouter(prefix="/api/v1/users/{user_id}/devices", tags=["commands"])


class CommandAccepted(BaseModel):
    event_id: str
    topic: str
    partition: int
    offset: int
    command_id: uuid.UUID
    expires_at: datetime


@router.post(
    "/{device_id}/commands",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=CommandAccepted,
    responses=device_checked(
        responses_with_rules(
            "a `device_id` equal to X-Device-ID (a device does not command itself); a "
            "parameter out of its range (`volume_set` level outside 0-1, a negative `seek` "
            "position or `load_content` start, `cast_to` naming the commanded device), "
            "the field `command.<parameter>`"
        )
    ),
    openapi_extra=documented(
        USER_ID,
        DEVICE_ID,
        device=ACTING_DEVICE,
        write=True,
        extra=openapi_body(CommandRequest, "the command (JSON tag `type`) and its time to live"),
    ),
)
async def send_command(request: Request) -> Response:
    _, user_id = await own_user(request, "devices:command")
    target = DEVICE_ID.read(request)
    source = ACTING_DEVICE.read(request)
    body = await json_body(request, CommandRequest)
    if source == target:
        raise self_command(("path", "device_id"), target)
    # Sender and target, in one Redis round trip.
    await require_own_devices(request, user_id, {source or "": FROM_HEADER, target: FROM_PATH})
    # A retry with the same Idempotency-Key is the same command: the router decides it once.
    published, issued = await send_command_of(
        request.app, user_id, source, target, body, operation_id(request)
    )
    return accepted(
        published, command_id=str(issued.command_id), expires_at=wire_time(issued.expires_at)
    )
