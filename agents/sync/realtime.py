"""Realtime messages planned as events (no I/O): one `sync.realtime` event per message, keyed by
user so one user's messages keep their order, with an id fixed by what caused it.

A message's id is derived from its cause (the operation's event id, the command id), so a
message staged twice for the same cause is delivered once (the delivery agent drops an id it
has sent); a command's message id is the command id itself.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from agents.framework.outgoing import Outgoing
from schemas.envelope import Envelope
from schemas.sync import (
    CommandMessage,
    CommandResult,
    CommandResultMessage,
    RealtimeEvent,
    RealtimeMessage,
    RemoteCommandIssued,
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


def addressed_to(message: RealtimeMessage) -> str:
    """The one device a message is for ("" for every device of the user): a command goes to
    its target, a command's result to the device that sent the command."""
    if isinstance(message, CommandMessage):
        return message.target_device_id
    if isinstance(message, CommandResultMessage):
        return message.source_device_id
    return ""


def deliverable(event: RealtimeEvent, now: datetime) -> bool:
    """False for a command past its expiry: the target would drop it, so it is not sent."""
    message = event.message
    return not (isinstance(message, CommandMessage) and message.expires_at < now)
