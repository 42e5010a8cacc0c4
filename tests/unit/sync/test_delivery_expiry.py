"""A command that expires between the router and the delivery agent is not sent, and its
sender hears `expired` instead of the router's `delivered`."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from agents.sync.messages import command_events, expired_commands, message_id, to_deliver
from schemas.sync import (
    CommandErrorCode,
    CommandMessage,
    CommandResult,
    CommandResultMessage,
    CommandStatus,
    RealtimeEvent,
    RemoteCommandIssued,
)

T0 = datetime(2026, 12, 1, 20, 0, tzinfo=UTC)


def routed(delivered_at: datetime) -> list[RealtimeEvent]:
    issued = RemoteCommandIssued.model_validate(
        {
            "command_id": uuid.uuid4(),
            "user_id": "alice",
            "source_device_id": "phone-1",
            "target_device_id": "tv-1",
            "command": {"type": "play"},
            "issued_at": T0,
            "ttl_seconds": 5,
        }
    )
    result = CommandResult(
        command_id=issued.command_id,
        user_id="alice",
        source_device_id="phone-1",
        target_device_id="tv-1",
        status=CommandStatus.delivered,
        message="delivered to tv-1",
        decided_at=delivered_at,
    )
    return [o.payload for o in command_events(issued, result)]  # type: ignore[misc]


def test_in_time_both_go_out_unchanged() -> None:
    events = routed(T0 + timedelta(seconds=1))
    assert to_deliver(events, T0 + timedelta(seconds=4)) == events


def test_expired_on_the_way_the_command_is_dropped_and_the_sender_hears_expired() -> None:
    events = routed(T0 + timedelta(seconds=1))
    other = routed(T0 + timedelta(seconds=2))  # a second command of the batch, expired too
    out = to_deliver([*events, *other], T0 + timedelta(seconds=6))
    assert [type(e.message) for e in out] == [CommandResultMessage, CommandResultMessage]
    for event, original in zip(out, (events[1], other[1]), strict=True):
        result = event.message
        assert isinstance(result, CommandResultMessage)
        assert (result.status, result.error) == (CommandStatus.rejected, CommandErrorCode.expired)
        assert result.source_device_id == "phone-1"
        assert event.message_id == message_id(result.command_id, "expired")
        assert event.message_id != original.message_id
    assert not any(isinstance(e.message, CommandMessage) for e in out)


def test_a_command_the_router_sent_in_time_is_neither_dropped_nor_corrected() -> None:
    # The router delivered it directly; the staged copies reach the delivery agent late.
    events = routed(T0 + timedelta(seconds=1))
    late = T0 + timedelta(seconds=30)
    command = events[0].message
    assert isinstance(command, CommandMessage)
    assert expired_commands(events, late) == [("alice", command.command_id)]
    assert to_deliver(events, late, sent={command.command_id}) == events
    # Another command's claim says nothing about this one.
    assert len(to_deliver(events, late, sent={uuid.uuid4()})) == 1
    assert expired_commands(events, T0 + timedelta(seconds=4)) == []
