"""Remote commands: one of the user's devices (X-Device-ID) asks another (the path's device) to
play, pause, seek, ... (a RemoteCommandIssued on sync.commands).

Needs `devices:command`, on one's own user id only: a user cannot command another user's
devices (403), and device ids are looked up among the caller's own devices. The answer is 202
with the command id once the broker has the command; the command router then delivers it to
the target device and the outcome (delivered, or expired / device_offline / not_supported /
invalid_parameters) to the sender, as a command_result on the user's notifications channel.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from fastapi import APIRouter, Request, Response, status
from pydantic import BaseModel, ConfigDict, Field

from core.publisher import Publisher
from gateway.accepted import accepted
from gateway.auth.dependencies import own_user
from gateway.device_ownership import FROM_HEADER, FROM_PATH, require_own_devices
from gateway.idempotency import operation_id
from gateway.json_body import json_body, openapi_body
from gateway.request_parameters import (
    ACTING_DEVICE,
    DEVICE_ID,
    USER_ID,
    invalid,
)
from gateway.routes.user_routes import (
    device_checked,
    documented,
    responses_with_rules,
)
from schemas.sync import COMMAND_TTL_S, RemoteCommand, RemoteCommandIssued, wire_time
from topics.registry import SYNC_COMMANDS

router = APIRouter(prefix="/api/v1/users/{user_id}/devices", tags=["commands"])


class CommandRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    command: RemoteCommand
    # How long the command may wait to be delivered; docs/RULES.md's 5 s unless said otherwise.
    ttl_seconds: int = Field(default=COMMAND_TTL_S, ge=1, le=300)


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
            "a `device_id` equal to X-Device-ID (a device does not command itself)"
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
        raise invalid(("path", "device_id"), "a device does not send commands to itself", target)
    # Sender and target, in one Redis round trip.
    await require_own_devices(request, user_id, {source or "": FROM_HEADER, target: FROM_PATH})
    # A retry with the same Idempotency-Key is the same command: the router decides it once.
    command_id = operation_id(request)
    issued = RemoteCommandIssued(
        command_id=command_id,
        user_id=user_id,
        source_device_id=source or "",
        target_device_id=target,
        command=body.command,
        issued_at=datetime.now(UTC),
        ttl_seconds=body.ttl_seconds,
    )
    publisher: Publisher = request.app.state.publisher
    published = await publisher.publish(SYNC_COMMANDS, issued, key=user_id, event_id=command_id)
    return accepted(
        published, command_id=str(issued.command_id), expires_at=wire_time(issued.expires_at)
    )
