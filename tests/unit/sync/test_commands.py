"""Remote command validation: every error, in docs/RULES.md's order, with an injected clock."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from agents.sync.commands import CommandError, decide, is_expired, validate
from agents.sync.presence import DeviceState
from schemas.sync import CommandErrorCode, CommandStatus, RemoteCommandIssued
from tests.unit.sync.factories import MOVIE, T0, command, device

PLAY = {"type": "play"}
CAST = {"type": "cast_to", "target_device_id": "tv-2", "content_id": str(MOVIE)}


def check(
    issued: RemoteCommandIssued,
    *devices: DeviceState,
    now_s: float = 1,
) -> CommandError | None:
    by_id = {d.device_id: d for d in devices}
    return validate(
        issued, by_id.get(issued.target_device_id), by_id, T0 + timedelta(seconds=now_s)
    )


def code(error: CommandError | None) -> CommandErrorCode | None:
    return None if error is None else error.code


@pytest.mark.parametrize(
    "body",
    [
        {"type": "play"},
        {"type": "pause"},
        {"type": "stop"},
        {"type": "seek", "position_seconds": 0},
        {"type": "volume_set", "level": 0},
        {"type": "volume_set", "level": 1},
        {"type": "volume_mute"},
        {"type": "volume_unmute"},
        {"type": "load_content", "content_id": str(MOVIE), "start_position": 30},
    ],
)
def test_a_valid_command_to_an_online_controllable_device_passes(body: dict[str, Any]) -> None:
    assert check(command(body), device("tv-1")) is None


def test_expiry_follows_the_injected_clock() -> None:
    issued = command(PLAY)
    assert not is_expired(issued, T0 + timedelta(seconds=5))
    assert is_expired(issued, T0 + timedelta(seconds=5, microseconds=1))
    assert check(issued, device("tv-1", now=T0 + timedelta(seconds=5)), now_s=5) is None
    error = check(issued, device("tv-1", now=T0 + timedelta(seconds=6)), now_s=6)
    assert code(error) is CommandErrorCode.expired
    assert error is not None and "expired at 2024-06-01T20:00:05Z" in error.message


def test_a_longer_ttl_keeps_a_command_good_for_longer() -> None:
    issued = command(PLAY, ttl_seconds=30)
    assert check(issued, device("tv-1", now=T0 + timedelta(seconds=20)), now_s=20) is None


def test_expiry_is_checked_before_everything_else() -> None:
    # Unknown target and bad parameters too, but expiry is the answer.
    issued = command({"type": "volume_set", "level": 7}, target="ghost")
    assert code(check(issued, now_s=10)) is CommandErrorCode.expired


def test_an_unknown_target_is_offline() -> None:
    error = check(command(PLAY, target="tv-9"), device("tv-1"))
    assert code(error) is CommandErrorCode.device_offline
    assert error is not None and "'tv-9' is not registered" in error.message


def test_a_silent_target_is_offline() -> None:
    error = check(command(PLAY), device("tv-1", seen_ago_s=61, now=T0 + timedelta(seconds=1)))
    assert code(error) is CommandErrorCode.device_offline
    assert error is not None and "no heartbeat since" in error.message and "60 s" in error.message


def test_offline_comes_before_not_supported() -> None:
    tv = device("tv-1", seen_ago_s=120, remote_controllable=False)
    assert code(check(command(PLAY), tv)) is CommandErrorCode.device_offline


def test_a_target_that_is_not_remote_controllable_is_not_supported() -> None:
    error = check(command(PLAY), device("tv-1", remote_controllable=False))
    assert code(error) is CommandErrorCode.not_supported
    assert error is not None and "does not accept remote commands" in error.message


def test_not_supported_comes_before_bad_parameters() -> None:
    tv = device("tv-1", remote_controllable=False)
    assert code(check(command({"type": "volume_set", "level": 2}), tv)) is (
        CommandErrorCode.not_supported
    )


def test_cast_needs_a_target_that_can_cast() -> None:
    error = check(command(CAST), device("tv-1", can_cast=False), device("tv-2"))
    assert code(error) is CommandErrorCode.not_supported
    assert error is not None and "cannot cast" in error.message


def test_cast_needs_an_online_cast_target() -> None:
    caster = device("tv-1", can_cast=True)
    unknown = check(command(CAST), caster)
    assert code(unknown) is CommandErrorCode.device_offline
    assert unknown is not None and "'tv-2' is not registered" in unknown.message
    silent = check(command(CAST), caster, device("tv-2", seen_ago_s=90))
    assert code(silent) is CommandErrorCode.device_offline
    assert silent is not None and "'tv-2' is offline" in silent.message
    assert check(command(CAST), caster, device("tv-2")) is None


def test_cast_capability_is_checked_before_the_cast_target() -> None:
    assert code(check(command(CAST), device("tv-1"))) is CommandErrorCode.not_supported


def test_casting_to_the_receiving_device_itself_is_invalid() -> None:
    body = {"type": "cast_to", "target_device_id": "tv-1", "content_id": str(MOVIE)}
    error = check(command(body), device("tv-1", can_cast=True))
    assert code(error) is CommandErrorCode.invalid_parameters


@pytest.mark.parametrize("level", [-0.01, 1.01, 100])
def test_volume_outside_zero_to_one_is_invalid(level: float) -> None:
    error = check(command({"type": "volume_set", "level": level}), device("tv-1"))
    assert code(error) is CommandErrorCode.invalid_parameters
    assert error is not None and "outside 0-1" in error.message


def test_a_negative_seek_or_start_position_is_invalid() -> None:
    seek = check(command({"type": "seek", "position_seconds": -1}), device("tv-1"))
    assert code(seek) is CommandErrorCode.invalid_parameters
    assert seek is not None and "negative" in seek.message
    load = {"type": "load_content", "content_id": str(MOVIE), "start_position": -5}
    assert code(check(command(load), device("tv-1"))) is CommandErrorCode.invalid_parameters


def test_a_target_state_for_another_device_is_a_caller_bug() -> None:
    with pytest.raises(ValueError, match="checked against 'tv-2'"):
        validate(command(PLAY), device("tv-2"), {}, T0)


def test_decide_answers_with_a_typed_result() -> None:
    now = T0 + timedelta(seconds=1)
    devices = {"tv-1": device("tv-1", now=now)}
    delivered = decide(command(PLAY), devices, now)
    assert delivered.status is CommandStatus.delivered and delivered.error is None
    assert delivered.decided_at == now and delivered.command_id == command(PLAY).command_id
    rejected = decide(command({"type": "volume_set", "level": 3}), devices, now)
    assert rejected.status is CommandStatus.rejected
    assert rejected.error is CommandErrorCode.invalid_parameters
    assert "volume_set level 3.0 is outside 0-1" in rejected.message
    expired = decide(command(PLAY), devices, T0 + timedelta(seconds=9))
    assert expired.error is CommandErrorCode.expired
