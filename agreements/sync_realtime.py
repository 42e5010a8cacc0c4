"""The built-in realtime fan-out's layout in Redis, shared by its writer (the delivery sink,
agents/adapters/delivery/fanout.py) and its reader (the gateway's event streams,
gateway/realtime/events.py); and the delivery claims both delivery paths use. No I/O here:
names, the message forms, and the rules of event ids.

Per user, one Redis stream (`...:log`) holds the last minutes of messages of all the user's
channels in delivery order, and each message is also published on the user's pub/sub channel
(`...:live:<user>`) for the gateways holding the user's open streams. One Lua script call
delivers up to a thousand messages atomically, for each: claim the message id (a message id
already claimed is not sent again), append to the stream, trim it, publish. A message is
thus in the stream exactly when live subscribers were sent it, and a device that reconnects
with the id of the last message it saw gets what it missed from the stream.

Event ids are `<epoch>:<stream id>`. The epoch is a random tag of the stream's lifetime: when
Redis lost the stream (a restart, or the stream expired after a quiet spell), a reconnecting
device's id names an older epoch and it is told to resync rather than left with a gap.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass

from schemas.sync import channel_segment

# How far back a reconnecting device is caught up; older ids get a resync.
REPLAY_WINDOW_S = 300
# At most this many messages per user are kept for replay (a flood trims earlier).
REPLAY_MAX_MESSAGES = 1000
# A delivered message id is remembered this long: a redelivery within it is not sent again.
# Longer than any command lives (at most 300 s), so a command is never delivered twice.
CLAIM_TTL_S = 600


def key_base(prefix: str, user_id: str) -> str:
    """The stem of every key of one user's fan-out (the publish script derives them from it)."""
    # A hash tag: all of one user's keys live in one slot of a Redis cluster.
    return f"{prefix}:rt:{{{channel_segment(user_id)}}}"


def log_key(prefix: str, user_id: str) -> str:
    return f"{key_base(prefix, user_id)}:log"


def epoch_key(prefix: str, user_id: str) -> str:
    return f"{key_base(prefix, user_id)}:epoch"


def floor_key(prefix: str, user_id: str) -> str:
    """The newest id trimmed for lack of room: a device that saw less missed messages."""
    return f"{key_base(prefix, user_id)}:floor"


def claim_key(prefix: str, user_id: str, message_id: uuid.UUID) -> str:
    return f"{key_base(prefix, user_id)}:sent:{message_id}"


def live_channel(prefix: str, user_id: str) -> str:
    return f"{prefix}:rt:live:{channel_segment(user_id)}"


def live_pattern(prefix: str) -> str:
    """The pub/sub pattern of every user's live channel (glob characters escaped)."""
    escaped = "".join(f"\\{ch}" if ch in "*?[]\\" else ch for ch in prefix)
    return f"{escaped}:rt:live:*"


def segment_of(prefix: str, channel: str) -> str:
    """The user segment of a live channel name."""
    return channel.removeprefix(f"{prefix}:rt:live:")


@dataclass(frozen=True, slots=True)
class Outbound:
    """One message to deliver: its id, the user's channel, to whom it is addressed (a device
    id for commands and their results, "" for everyone) and the JSON body."""

    user_id: str
    message_id: uuid.UUID
    channel: str
    addressed_to: str
    body: bytes


@dataclass(frozen=True, slots=True)
class Delivered:
    event_id: str
    channel: str
    addressed_to: str
    body: bytes


def parse_live(data: bytes) -> Delivered:
    """A message as published on a live channel."""
    event_id, channel, addressed, body = data.split(b"\n", 3)
    return Delivered(event_id.decode(), channel.decode(), addressed.decode(), body)


# A Redis stream id is two unsigned 64-bit numbers; Redis refuses a larger one in a range.
MAX_ID_PART = 2**64 - 1


def _decimal_up_to(limit: int) -> str:
    """A regular expression of the numbers 0..limit in decimal, without leading zeros (the form
    Redis writes), so the OpenAPI document can state the bound that JSON Schema has no word
    for in a string."""
    digits = str(limit)
    forms = ["0"]
    if len(digits) > 1:
        forms.append(f"[1-9][0-9]{{0,{len(digits) - 2}}}")  # fewer digits than the limit
    for i, digit in enumerate(digits):
        # The limit's first i digits, then a smaller digit, then anything.
        lowest = 1 if i == 0 else 0
        if int(digit) > lowest:
            forms.append(f"{digits[:i]}[{lowest}-{int(digit) - 1}][0-9]{{{len(digits) - i - 1}}}")
    forms.append(digits)
    return "(?:" + "|".join(dict.fromkeys(forms)) + ")"


_ID_PART = _decimal_up_to(MAX_ID_PART)
# The form of an event id, for the OpenAPI document: `{stream epoch}:{ms}-{seq}`.
EVENT_ID_FORM = rf"[^:]+:{_ID_PART}-{_ID_PART}"
_EVENT_ID = re.compile(rf"([^:]+):({_ID_PART})-({_ID_PART})")

StreamId = tuple[int, int]


def stream_id(event_id: str) -> tuple[str, StreamId] | None:
    match = _EVENT_ID.fullmatch(event_id)
    if match is None:
        return None
    return match[1], (int(match[2]), int(match[3]))


def redis_id(text: bytes | str) -> StreamId:
    raw = text.decode() if isinstance(text, bytes) else text
    ms, _, seq = raw.partition("-")
    return int(ms), int(seq)


def following(sid: StreamId) -> StreamId | None:
    """The smallest stream id after `sid`; None after the largest."""
    ms, seq = sid
    if seq < MAX_ID_PART:
        return ms, seq + 1
    return (ms + 1, 0) if ms < MAX_ID_PART else None


def is_event_id(event_id: str) -> bool:
    return stream_id(event_id) is not None


def newer(a: str, b: str) -> bool:
    """Whether event id `a` comes after `b` (ids of one stream's lifetime)."""
    pa, pb = stream_id(a), stream_id(b)
    if pa is None or pb is None:
        return True
    return pa[1] > pb[1]


# Why a device must resync rather than be caught up.
GONE = "messages since your last event id are gone"
AHEAD = "your last event id is ahead of this stream: no message had that id yet"


@dataclass(frozen=True, slots=True)
class Replay:
    """What a device that last saw `after` missed, or why that cannot be told (`gap`): some of
    it is gone (older than the window, trimmed, or Redis lost it), or `after` is ahead of
    every message of the stream, so live messages would all look old to the device."""

    messages: list[Delivered]
    gap: str | None = None

    @property
    def complete(self) -> bool:
        return self.gap is None
