"""Remote command routing rules: may this command go to its target device, and if not, why.

Checks run in docs/RULES.md's order and the first failure is the answer: expired, target unknown or
offline, target not remote controllable, cast_to prerequisites, then parameter ranges. Bad
parameters are a routing outcome, not a broken record, so the schema lets them through.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from agents.sync.presence import ONLINE_TIMEOUT_S, DeviceState
from agreements.command_parameters import parameter_problem
from schemas.sync import (
    CastTo,
    CommandErrorCode,
    CommandResult,
    CommandStatus,
    RemoteCommandIssued,
    wire_time,
)


@dataclass(frozen=True, slots=True)
class CommandError:
    code: CommandErrorCode
    # Written for the developer of the issuing app: what went wrong and what to do about it.
    message: str


def is_expired(command: RemoteCommandIssued, now: datetime) -> bool:
    """Past issued_at + ttl; at exactly that instant the command is still good."""
    return command.expires_at < now


def _unreachable(device: DeviceState | None, device_id: str) -> CommandError:
    if device is None:
        return CommandError(
            CommandErrorCode.device_offline,
            f"device {device_id!r} is not registered to this account",
        )
    return CommandError(
        CommandErrorCode.device_offline,
        f"device {device_id!r} is offline: no heartbeat since {wire_time(device.last_seen)} "
        f"(a device is offline {ONLINE_TIMEOUT_S} s after its last heartbeat)",
    )


def _cast_error(
    cast: CastTo, target: DeviceState, devices: Mapping[str, DeviceState], now: datetime
) -> CommandError | None:
    if not target.info.capabilities.can_cast:
        return CommandError(
            CommandErrorCode.not_supported,
            f"device {target.device_id!r} cannot cast to other devices",
        )
    cast_target = devices.get(cast.target_device_id)
    if cast_target is None or not cast_target.online(now):
        return _unreachable(cast_target, cast.target_device_id)
    return None


def _parameter_error(command: RemoteCommandIssued) -> CommandError | None:
    problem = parameter_problem(command.command, command.target_device_id)
    if problem is None:
        return None
    return CommandError(CommandErrorCode.invalid_parameters, problem.reason)


def validate(
    command: RemoteCommandIssued,
    target: DeviceState | None,
    devices: Mapping[str, DeviceState],
    now: datetime,
) -> CommandError | None:
    """None when the command may be delivered to `target`; otherwise the first reason not.

    `target` is the command's target device (None when the user has no such device) and
    `devices` all of the user's devices by id, where a cast_to looks up its cast target.
    """
    if target is not None and target.device_id != command.target_device_id:
        raise ValueError(
            f"command for {command.target_device_id!r} checked against {target.device_id!r}"
        )
    if is_expired(command, now):
        return CommandError(
            CommandErrorCode.expired,
            f"command expired at {wire_time(command.expires_at)}, {command.ttl_seconds} s "
            "after it was issued, before it could be delivered; issue it again",
        )
    if target is None or not target.online(now):
        return _unreachable(target, command.target_device_id)
    if not target.info.capabilities.remote_controllable:
        return CommandError(
            CommandErrorCode.not_supported,
            f"device {target.device_id!r} ({target.info.device_name}) does not accept remote "
            "commands",
        )
    if isinstance(command.command, CastTo):
        error = _cast_error(command.command, target, devices, now)
        if error is not None:
            return error
    return _parameter_error(command)


def decide(
    command: RemoteCommandIssued, devices: Mapping[str, DeviceState], now: datetime
) -> CommandResult:
    """The router's answer: validate against the user's devices and say so as a CommandResult."""
    error = validate(command, devices.get(command.target_device_id), devices, now)
    return CommandResult(
        command_id=command.command_id,
        user_id=command.user_id,
        source_device_id=command.source_device_id,
        target_device_id=command.target_device_id,
        status=CommandStatus.delivered if error is None else CommandStatus.rejected,
        error=None if error is None else error.code,
        message=(
            f"{command.command.type} sent to device {command.target_device_id!r}"
            if error is None
            else error.message
        ),
        decided_at=now,
    )
