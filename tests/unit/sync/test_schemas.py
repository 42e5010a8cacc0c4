"""Sync payloads and realtime messages: what they accept, what they refuse, how they travel."""

from __future__ import annotations

import math
import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from pydantic import ValidationError

from schemas.envelope import decode, encode, wrap
from schemas.sync import (
    REALTIME_MESSAGE,
    RESOLUTION_ORDER,
    CastTo,
    CommandErrorCode,
    CommandMessage,
    CommandResult,
    CommandResultMessage,
    CommandStatus,
    DeviceHeartbeat,
    DeviceInfo,
    DevicePresenceMessage,
    DeviceRegistered,
    DeviceRemoved,
    LoadContent,
    Presence,
    ProgressMessage,
    ProgressUpdate,
    RemoteCommandIssued,
    Resolution,
    Seek,
    VolumeSet,
    WatchlistMessage,
    channel_for,
    channel_segment,
    devices_channel,
    notifications_channel,
    sync_channel,
)
from tests.unit.sync.factories import MOVIE, T0, USER, add, command, device_info, hlc, progress, tag

# --- progress ----------------------------------------------------------------------------------


def test_progress_update_round_trips_through_the_envelope() -> None:
    update = progress(42.5, hlc(10, 3), state="paused")
    back = decode(encode(wrap(update, key=USER, source="test")), ProgressUpdate)
    assert back.payload == update
    assert back.event_type == "sync.progress.updated"


def test_position_past_the_end_is_refused_with_both_numbers() -> None:
    with pytest.raises(ValidationError, match=r"position_seconds \(101\.0\) is past the end"):
        progress(101.0, hlc(1))
    # The very end is a valid position.
    assert progress(100.0, hlc(1)).position_seconds == 100.0


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("position_seconds", -1.0),
        ("position_seconds", math.nan),
        ("position_seconds", math.inf),
        ("duration_seconds", 0.0),
        ("duration_seconds", -5.0),
        ("duration_seconds", math.inf),
        ("duration_seconds", math.nan),
    ],
)
def test_progress_numbers_must_be_finite_and_in_range(field: str, value: float) -> None:
    data = progress(1.0, hlc(1)).model_dump()
    data[field] = value
    with pytest.raises(ValidationError):
        ProgressUpdate.model_validate(data)


def test_progress_needs_a_known_state_and_a_device() -> None:
    data = progress(1.0, hlc(1)).model_dump()
    with pytest.raises(ValidationError):
        ProgressUpdate.model_validate({**data, "state": "buffering"})
    with pytest.raises(ValidationError):
        ProgressUpdate.model_validate({**data, "device_id": "has space"})
    del data["device_id"]
    with pytest.raises(ValidationError):
        ProgressUpdate.model_validate(data)


# --- devices -----------------------------------------------------------------------------------


def test_device_info_defaults_to_no_remote_control_and_no_cast() -> None:
    info = device_info("tv-1", remote_controllable=False)
    assert info.capabilities.remote_controllable is False
    assert info.capabilities.can_cast is False
    assert info.capabilities.max_resolution is Resolution.hd
    assert RESOLUTION_ORDER[Resolution.uhd_4k] > RESOLUTION_ORDER[Resolution.fhd]


@pytest.mark.parametrize(
    "overrides",
    [
        {"device_type": "fridge"},
        {"platform": "symbian"},
        {"capabilities": {"screen_size": math.inf}},
        {"capabilities": {"screen_size": 0}},
        {"capabilities": {"max_resolution": "16k"}},
        {"device_name": ""},
        {"serial": "x"},
    ],
)
def test_device_info_refuses_unknown_values(overrides: dict[str, Any]) -> None:
    data = device_info("tv-1").model_dump()
    with pytest.raises(ValidationError):
        DeviceInfo.model_validate({**data, **overrides})


def test_device_events_round_trip() -> None:
    info = device_info("tv-1", can_cast=True, hdr_support=["HDR10", "DolbyVision"])
    events = [
        DeviceRegistered(user_id=USER, device=info, timestamp=hlc(5)),
        DeviceHeartbeat(
            user_id=USER,
            device_id="tv-1",
            timestamp=hlc(6),
            now_playing={"content_id": MOVIE, "position_seconds": 12.0, "state": "playing"},
        ),
        DeviceHeartbeat(user_id=USER, device_id="tv-1", timestamp=hlc(7)),
        DeviceRemoved(user_id=USER, device_id="tv-1", timestamp=hlc(8)),
    ]
    for event in events:
        back = decode(encode(wrap(event, key=USER, source="test")), type(event))
        assert back.payload == event
    assert {type(e).event_type for e in events} == {
        "sync.device.registered",
        "sync.device.heartbeat",
        "sync.device.removed",
    }


def test_heartbeat_now_playing_position_must_be_finite() -> None:
    with pytest.raises(ValidationError):
        DeviceHeartbeat(
            user_id=USER,
            device_id="tv-1",
            timestamp=hlc(6),
            now_playing={"content_id": MOVIE, "position_seconds": math.nan, "state": "playing"},
        )


# --- remote commands ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "kind"),
    [
        ({"type": "play"}, "play"),
        ({"type": "pause"}, "pause"),
        ({"type": "stop"}, "stop"),
        ({"type": "seek", "position_seconds": 90}, "seek"),
        ({"type": "volume_set", "level": 0.4}, "volume_set"),
        ({"type": "volume_mute"}, "volume_mute"),
        ({"type": "volume_unmute"}, "volume_unmute"),
        ({"type": "load_content", "content_id": str(MOVIE)}, "load_content"),
        ({"type": "cast_to", "target_device_id": "tv-2", "content_id": str(MOVIE)}, "cast_to"),
    ],
)
def test_every_command_kind_parses_by_its_type_tag(body: dict[str, Any], kind: str) -> None:
    issued = command(body)
    assert issued.command.type == kind
    back = decode(encode(wrap(issued, key=USER, source="test")), RemoteCommandIssued)
    assert back.payload == issued
    assert back.payload.command.model_dump(mode="json")["type"] == kind


def test_command_parameters_land_in_their_typed_models() -> None:
    seek = command({"type": "seek", "position_seconds": 90}).command
    assert isinstance(seek, Seek) and seek.position_seconds == 90.0
    load = command({"type": "load_content", "content_id": str(MOVIE)}).command
    assert isinstance(load, LoadContent) and load.start_position == 0.0
    cast = command({"type": "cast_to", "target_device_id": "tv-2", "content_id": str(MOVIE)})
    assert isinstance(cast.command, CastTo) and cast.command.target_device_id == "tv-2"


def test_unknown_command_type_and_missing_parameters_are_refused() -> None:
    with pytest.raises(ValidationError):
        command({"type": "rewind"})
    with pytest.raises(ValidationError):
        command({"type": "seek"})
    with pytest.raises(ValidationError):
        command({"type": "play", "level": 1})


def test_out_of_range_parameters_are_left_to_the_router() -> None:
    volume = command({"type": "volume_set", "level": 1.5}).command
    assert isinstance(volume, VolumeSet) and volume.level == 1.5
    seek = command({"type": "seek", "position_seconds": -3}).command
    assert isinstance(seek, Seek) and seek.position_seconds == -3.0


@pytest.mark.parametrize(
    "body",
    [
        {"type": "volume_set", "level": math.nan},
        {"type": "volume_set", "level": math.inf},
        {"type": "seek", "position_seconds": -math.inf},
        {"type": "load_content", "content_id": str(MOVIE), "start_position": math.nan},
    ],
)
def test_non_finite_command_numbers_are_refused(body: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        command(body)


def test_issued_at_is_aware_and_normalized_to_utc() -> None:
    plus_two = timezone(timedelta(hours=2))
    issued = command({"type": "play"}, issued_at=datetime(2024, 6, 1, 22, 0, tzinfo=plus_two))
    assert issued.issued_at == T0 and issued.issued_at.tzinfo is UTC
    assert issued.ttl_seconds == 5
    assert issued.expires_at == T0 + timedelta(seconds=5)
    with pytest.raises(ValidationError):
        command({"type": "play"}, issued_at=datetime(2024, 6, 1, 20, 0))
    with pytest.raises(ValidationError):
        command({"type": "play"}, ttl_seconds=0)


def _result(**overrides: Any) -> CommandResult:
    data: dict[str, Any] = {
        "command_id": uuid.UUID(int=77),
        "user_id": USER,
        "source_device_id": "phone-1",
        "target_device_id": "tv-1",
        "status": "rejected",
        "error": "device_offline",
        "message": "device 'tv-1' is offline",
        "decided_at": T0,
        **overrides,
    }
    return CommandResult.model_validate(data)


def test_command_result_status_and_error_agree() -> None:
    assert _result().error is CommandErrorCode.device_offline
    assert _result(status="delivered", error=None).status is CommandStatus.delivered
    with pytest.raises(ValidationError, match="a delivered command carries no error"):
        _result(status="delivered")
    with pytest.raises(ValidationError, match="a rejected command needs an error"):
        _result(error=None)
    with pytest.raises(ValidationError):
        _result(error="teapot")


def test_command_result_round_trips() -> None:
    result = _result(error="expired")
    back = decode(encode(wrap(result, key=USER, source="test")), CommandResult)
    assert back.payload == result and back.event_type == "sync.command.result"


# --- realtime messages and channels ------------------------------------------------------------


def test_realtime_messages_parse_back_by_kind() -> None:
    issued = command({"type": "volume_set", "level": 0.3})
    messages = [
        WatchlistMessage.of(add(MOVIE, tag(1), hlc(3)), in_watchlist=True),
        ProgressMessage.of(progress(5.0, hlc(4))),
        DevicePresenceMessage(
            device_id="tv-1", presence=Presence.online, last_seen=T0, device=device_info("tv-1")
        ),
        CommandMessage.of(issued),
        CommandResultMessage.of(_result()),
    ]
    kinds = []
    for message in messages:
        raw = message.model_dump_json()
        back = REALTIME_MESSAGE.validate_json(raw)
        assert back == message and type(back) is type(message)
        kinds.append(back.kind)
    assert kinds == ["watchlist", "progress", "device_presence", "command", "command_result"]
    command_message = messages[3]
    assert isinstance(command_message, CommandMessage)
    assert command_message.expires_at == issued.expires_at
    assert command_message.command == issued.command


def test_watchlist_message_keeps_the_tags_a_replica_needs() -> None:
    message = WatchlistMessage.of(add(MOVIE, tag(1), hlc(3)), in_watchlist=True)
    assert message.unique_tag == tag(1) and message.in_watchlist
    with pytest.raises(ValidationError):
        REALTIME_MESSAGE.validate_python({"kind": "weather", "content_id": str(MOVIE)})


def test_channel_names_follow_the_domain_pattern() -> None:
    assert sync_channel("alice") == "user.alice.sync"
    assert devices_channel("alice") == "user.alice.devices"
    assert notifications_channel("alice") == "user.alice.notifications"
    assert channel_segment("auth0|5f7c-x@y_z") == "auth0|5f7c-x@y_z"


def test_channel_segments_stay_one_valid_pubnub_level() -> None:
    for user_id in ["google:123", "a.b", "x~2e", "ünïcode", "a" * 128, "b.c" * 40]:
        segment = channel_segment(user_id)
        assert not set(segment) & set(",:*/\\ ."), segment
        assert len(notifications_channel(user_id)) <= 92
    assert channel_segment("a.b") == "a~2eb"
    assert channel_segment("google:123") == "google~3a123"
    # "~" is escaped too, so a literal "~2e" can never pose as an escaped ".".
    assert channel_segment("a~2eb") != channel_segment("a.b")
    assert channel_segment("a" * 128) != channel_segment("a" * 127)
    # A plain id is its own segment up to the longest that fits; a longer one is a digest.
    assert channel_segment("a" * 73) == "a" * 73
    assert channel_segment("a" * 74).startswith("~h")
    assert channel_segment("alice\n") == "alice~0a"
    with pytest.raises(ValueError, match="non-empty"):
        channel_segment("")


def test_each_message_kind_goes_to_its_channel() -> None:
    issued = command({"type": "play"})
    assert channel_for("alice", ProgressMessage.of(progress(1.0, hlc(1)))) == "user.alice.sync"
    watch = WatchlistMessage.of(add(MOVIE, tag(1), hlc(3)), in_watchlist=True)
    assert channel_for("alice", watch) == "user.alice.sync"
    presence = DevicePresenceMessage(device_id="tv-1", presence=Presence.offline)
    assert channel_for("alice", presence) == "user.alice.devices"
    assert channel_for("alice", CommandMessage.of(issued)) == "user.alice.devices"
    result = CommandResultMessage.of(_result())
    assert channel_for("alice", result) == "user.alice.notifications"
