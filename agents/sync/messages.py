"""Realtime messages planned as events (no I/O): one `sync.realtime` event per message, keyed by
user so one user's messages keep their order, with an id fixed by what caused it.

A message's id is derived from its cause (the operation's event id, the command id), so a
message staged twice for the same cause is delivered once (the delivery agent drops an id it
has sent); a command's message id is the command id itself.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection
from datetime import datetime
from typing import Any

from agents.framework.outgoing import Outgoing
from schemas.envelope import Envelope
from schemas.sync import (
    CommandErrorCode,
    CommandMessage,
    CommandResult,
    CommandResultMessage,
    CommandStatus,
    RealtimeEvent,
    RealtimeMessage,
    RemoteCommandIssued,
    wire_time,
)
from topics.registry import SYNC_REALTIME

# Fixed namespace of the derived message ids (uuid5): changing it would re-deliver messages.
MESSAGE_IDS = uuid.UUID("0d7c1f4e-9a55-4b8e-8e1f-5f0f2d6a9c31")


def message_id(cause: uuid.UUID, part: str) -> uuid.UUID:
    """The id of the message about `part` (a title, a device) caused by `cause`."""
    return uuid.uuid5(MESSAGE_IDS, f"{cause}:{part}")


def realtime_event(
    user_id: str,
    message: RealtimeMessage,
    ident: uuid.UUID,
    at: datetime,
    cause: Envelope[Any] | None = None,
) -> Outgoing:
    event = RealtimeEvent(user_id=user_id, message_id=ident, message=message, occurred_at=at)
    return Outgoing(SYNC_REALTIME, event, user_id, cause.correlation_id if cause else None)


def command_events(
    issued: RemoteCommandIssued,
    result: CommandResult,
    cause: Envelope[Any] | None = None,
) -> list[Outgoing]:
    """The command to its target (only when delivered), then the result to its sender.

    The command goes first: a sender that hears "delivered" can count on the target having
    been sent the command already.
    """
    out = []
    if result.error is None:
        out.append(
            realtime_event(
                issued.user_id,
                CommandMessage.of(issued),
                issued.command_id,
                result.decided_at,
                cause,
            )
        )
    out.append(
        realtime_event(
            issued.user_id,
            CommandResultMessage.of(result),
            message_id(issued.command_id, "result"),
            result.decided_at,
            cause,
        )
    )
    return out


def expired_commands(events: list[RealtimeEvent], now: datetime) -> list[tuple[str, uuid.UUID]]:
    """(user, command id) of the batch's command messages past `expires_at`: the delivery agent
    asks which of them the router already sent directly (`to_deliver`'s `sent`)."""
    return [
        (event.user_id, event.message.command_id)
        for event in events
        if isinstance(event.message, CommandMessage) and event.message.expires_at < now
    ]


def to_deliver(
    events: list[RealtimeEvent], now: datetime, sent: Collection[uuid.UUID] = ()
) -> list[RealtimeEvent]:
    """The batch as it goes out: a command that expired before it could be sent is dropped,
    and its sender hears `expired` instead of the router's `delivered` (the result follows its
    command in the user's order, so it is in this batch or a later one; a later one is not
    corrected: the window is the delivery agent's batch boundary).

    `sent`: command ids already sent (the router delivers a command itself right after its
    commit; this batch is then the change feed's copy). Such a command reached its target in
    time, so neither it nor its result is touched: their claims skip them both."""
    out: list[RealtimeEvent] = []
    expired: dict[uuid.UUID, datetime] = {}
    for event in events:
        message = event.message
        if (
            isinstance(message, CommandMessage)
            and message.expires_at < now
            and message.command_id not in sent
        ):
            expired[message.command_id] = message.expires_at
            continue
        if isinstance(message, CommandResultMessage) and message.command_id in expired:
            corrected = message.model_copy(
                update={
                    "status": CommandStatus.rejected,
                    "error": CommandErrorCode.expired,
                    "message": f"command expired at {wire_time(expired[message.command_id])} "
                    "before it could be sent to the device",
                }
            )
            event = event.model_copy(
                update={
                    "message": corrected,
                    "message_id": message_id(message.command_id, "expired"),
                }
            )
        out.append(event)
    return out
