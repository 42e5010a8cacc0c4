"""The parameter ranges of a remote command, which the gateway and the command router agree on
(docs/SYNC.md, "Remote commands"): the gateway refuses a command breaking one with a 422 naming
the field, so an app hears of its mistake at once; the router checks again, as commands also
reach `sync.commands` from other producers, and answers those with `invalid_parameters`.

The topic's schema lets such parameters through on purpose: a bad parameter is a routing
outcome the sender is told of, not a broken record for the dead-letter topic.
"""

from __future__ import annotations

from dataclasses import dataclass

from schemas.sync import CastTo, LoadContent, RemoteCommand, Seek, VolumeSet


@dataclass(frozen=True, slots=True)
class ParameterProblem:
    field: str  # of the command object, e.g. "position_seconds"
    value: object
    reason: str  # written for the app's developer: what is wrong and what is allowed


def parameter_problem(command: RemoteCommand, target_device_id: str) -> ParameterProblem | None:
    """The first parameter of `command`, sent to `target_device_id`, out of its range."""
    match command:
        case VolumeSet(level=level) if not 0.0 <= level <= 1.0:
            return ParameterProblem(
                "level",
                level,
                f"volume_set level {level} is outside 0-1 (0 is silent, 1 is full volume)",
            )
        case Seek(position_seconds=position) if position < 0:
            return ParameterProblem(
                "position_seconds",
                position,
                f"seek position_seconds {position} is negative; positions start at 0",
            )
        case LoadContent(start_position=start) if start < 0:
            return ParameterProblem(
                "start_position",
                start,
                f"load_content start_position {start} is negative; positions start at 0",
            )
        case CastTo(target_device_id=cast_target) if cast_target == target_device_id:
            return ParameterProblem(
                "target_device_id",
                cast_target,
                f"cast_to target_device_id {cast_target!r} is the device receiving the "
                "command; name another device to cast to",
            )
    return None
