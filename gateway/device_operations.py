"""What a device does, whichever transport it comes by: a heartbeat, a progress report, a remote
command. The HTTP routes (gateway/routes/devices.py, progress.py, commands.py) and the device
WebSocket (gateway/realtime/socket.py) validate with the same models and call the same
functions, so an operation becomes the same event on the same topic either way.

Each function takes what its transport has already checked (the caller owns the user id, the
device ids are the user's) and the operation's event id (from Idempotency-Key over HTTP, random
over the socket), and returns where the broker put the event. Refusals are
RequestValidationError naming the field, as the HTTP routes answer them (422).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, Field, model_validator

from agreements.command_parameters import parameter_problem
from core.publisher import Published, Publisher
from gateway.request_parameters import invalid
from gateway.sync_clock import app_stamp
from schemas.sync import (
    COMMAND_TTL_S,
    HLC,
    DeviceHeartbeat,
    NowPlaying,
    PlaybackState,
    ProgressUpdate,
    RemoteCommand,
    RemoteCommandIssued,
)
from schemas.time_zone import TimeZoneName
from topics.registry import SYNC_COMMANDS, SYNC_DEVICE_HEARTBEATS, SYNC_PROGRESS

# Where a refused field is, per transport: ("body",) over HTTP, the frame's own path over the
# socket.
Loc = tuple[str, ...]


class Heartbeat(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # What the device plays now; absent or null: nothing.
    now_playing: NowPlaying | None = None


class ProgressReport(BaseModel):
    model_config = ConfigDict(extra="forbid")

    position_seconds: float = Field(ge=0, allow_inf_nan=False)
    duration_seconds: float = Field(gt=0, allow_inf_nan=False)
    state: PlaybackState
    # The device's own stamp, for reports queued while it was offline; else the gateway's.
    timestamp: HLC | None = None
    time_zone: TimeZoneName | None = Field(
        default=None,
        description="the device's zone: an IANA name (Europe/Paris) or an offset (+01:00); "
        "recommendations learn the user's viewing hours on their own clock",
    )

    @model_validator(mode="after")
    def _within_duration(self) -> ProgressReport:
        if self.position_seconds > self.duration_seconds:
            raise ValueError(
                f"position_seconds ({self.position_seconds}) is past the end of the title "
                f"(duration_seconds {self.duration_seconds})"
            )
        return self


class CommandRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    command: RemoteCommand
    # How long the command may wait to be delivered; docs/RULES.md's 5 s unless said otherwise.
    ttl_seconds: int = Field(default=COMMAND_TTL_S, ge=1, le=300)


def _publisher(app: Any) -> Publisher:
    publisher: Publisher = app.state.publisher
    return publisher


async def send_heartbeat(
    app: Any, user_id: str, device_id: str, body: Heartbeat, event_id: uuid.UUID
) -> Published:
    event = DeviceHeartbeat(
        user_id=user_id,
        device_id=device_id,
        timestamp=await app_stamp(app, user_id),
        now_playing=body.now_playing,
    )
    return await _publisher(app).publish(
        SYNC_DEVICE_HEARTBEATS, event, key=user_id, event_id=event_id
    )


async def report_progress(
    app: Any,
    user_id: str,
    content_id: uuid.UUID,
    device_id: str | None,
    report: ProgressReport,
    event_id: uuid.UUID,
    body_loc: Loc = ("body",),
) -> tuple[Published, ProgressUpdate]:
    update = ProgressUpdate(
        user_id=user_id,
        content_id=content_id,
        position_seconds=report.position_seconds,
        duration_seconds=report.duration_seconds,
        state=report.state,
        timestamp=await app_stamp(app, user_id, report.timestamp, (*body_loc, "timestamp")),
        device_id=device_id,
        time_zone=report.time_zone,
    )
    published = await _publisher(app).publish(SYNC_PROGRESS, update, key=user_id, event_id=event_id)
    return published, update


def self_command(target_loc: Loc, target: str) -> RequestValidationError:
    return invalid(target_loc, "a device does not send commands to itself", target)


async def send_command(
    app: Any,
    user_id: str,
    source: str | None,
    target: str,
    body: CommandRequest,
    command_id: uuid.UUID,
    target_loc: Loc = ("path", "device_id"),
    body_loc: Loc = ("body",),
) -> tuple[Published, RemoteCommandIssued]:
    if source == target:
        raise self_command(target_loc, target)
    problem = parameter_problem(body.command, target)
    if problem is not None:
        raise invalid((*body_loc, "command", problem.field), problem.reason, problem.value)
    issued = RemoteCommandIssued(
        command_id=command_id,
        user_id=user_id,
        source_device_id=source or "",
        target_device_id=target,
        command=body.command,
        issued_at=datetime.now(UTC),
        ttl_seconds=body.ttl_seconds,
    )
    published = await _publisher(app).publish(
        SYNC_COMMANDS, issued, key=user_id, event_id=command_id
    )
    return published, issued
