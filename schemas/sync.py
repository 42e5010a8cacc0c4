"""Cross-device sync events and the realtime messages devices receive.

Hybrid logical clock timestamps, watchlist (OR-Set) operations, playback progress, device
presence, remote commands and their results. Pure data: the rules live in agents/sync.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Annotated, ClassVar, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    model_validator,
)

from schemas.envelope import Payload
from schemas.notifications import AlertKind, Notification
from schemas.time_zone import TimeZoneName

# The 16-bit logical counter (docs/RULES.md): its own field, never packed into the physical.
MAX_LOGICAL = 0xFFFF


class HLC(BaseModel):
    """Hybrid logical clock: physical microseconds since the epoch plus a logical counter."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    physical_us: int = Field(ge=0)
    logical: int = Field(default=0, ge=0, le=MAX_LOGICAL)

    def order(self) -> tuple[int, int]:
        return (self.physical_us, self.logical)


def next_hlc(last: HLC | None, now_us: int) -> HLC:
    """The timestamp after `last` on a node whose wall clock reads `now_us`.

    The wall clock wins when it moved forward; otherwise the logical counter advances, and a
    full counter borrows one microsecond so timestamps stay strictly increasing.
    """
    if last is None or now_us > last.physical_us:
        return HLC(physical_us=now_us, logical=0)
    if last.logical < MAX_LOGICAL:
        return HLC(physical_us=last.physical_us, logical=last.logical + 1)
    return HLC(physical_us=last.physical_us + 1, logical=0)


class WatchlistOperation(StrEnum):
    add = "add"
    remove = "remove"


class WatchlistUpdate(Payload):
    """One OR-Set operation on a user's watchlist, keyed by user_id on `sync.watchlist`.

    add: `unique_tag` is the new element tag. remove: `removed_tags` are the tags the client had
    seen; an empty list tombstones every tag the store has observed for the title so far. A
    re-add after a remove carries a fresh tag, so it wins over that remove.
    """

    event_type: ClassVar[str] = "sync.watchlist.updated"

    user_id: str = Field(min_length=1, max_length=128)
    operation: WatchlistOperation
    content_id: uuid.UUID
    unique_tag: uuid.UUID | None = None
    removed_tags: list[uuid.UUID] = Field(default_factory=list, max_length=1000)
    timestamp: HLC
    device_id: str | None = Field(default=None, min_length=1, max_length=128)

    @model_validator(mode="after")
    def _tags_fit_operation(self) -> WatchlistUpdate:
        if self.operation is WatchlistOperation.add:
            if self.unique_tag is None:
                raise ValueError("add needs a unique_tag")
            if self.removed_tags:
                raise ValueError("add carries no removed_tags")
        elif self.unique_tag is not None:
            raise ValueError("remove carries removed_tags, not a unique_tag")
        return self


# --- shared field types -----------------------------------------------------------------------

UserId = Annotated[str, Field(min_length=1, max_length=128)]
# The gateway's X-Device-ID header pattern: device ids also end up in channel payloads and logs.
DeviceId = Annotated[str, Field(pattern=r"^[A-Za-z0-9._:-]{1,128}$")]
# NaN compares false with everything, so one NaN would slip past every range check downstream.
Seconds = Annotated[float, Field(ge=0, allow_inf_nan=False)]


def _as_utc(value: datetime) -> datetime:
    return value.astimezone(UTC)


# Aware only: comparing a naive with an aware datetime raises TypeError inside the rules.
UtcDatetime = Annotated[AwareDatetime, AfterValidator(_as_utc)]
_UTC_DATETIME: TypeAdapter[datetime] = TypeAdapter(UtcDatetime)


def wire_time(moment: datetime) -> str:
    """A time as sync writes every time it sends (202 answers, messages, documents, the words
    of a command result): RFC 3339 in UTC with `Z`, the form of the models' own JSON, so a
    device never meets two forms of one instant."""
    return str(_UTC_DATETIME.dump_python(moment.astimezone(UTC), mode="json"))


class _Data(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# --- playback progress -------------------------------------------------------------------------


class PlaybackState(StrEnum):
    playing = "playing"
    paused = "paused"
    stopped = "stopped"


class ProgressUpdate(Payload):
    """A device's playback position for one title, keyed by user_id on the progress topic.

    Last writer wins per (user, content): newer `timestamp`, on a tie the larger device_id.
    """

    event_type: ClassVar[str] = "sync.progress.updated"

    user_id: UserId
    content_id: uuid.UUID
    position_seconds: Seconds
    duration_seconds: float = Field(gt=0, allow_inf_nan=False)
    state: PlaybackState
    timestamp: HLC
    device_id: DeviceId
    # The device's zone, when it said: personalization keeps the user's viewing hours on their
    # own clock (docs/SONA.md, "Local time").
    time_zone: TimeZoneName | None = None

    @model_validator(mode="after")
    def _position_within_duration(self) -> ProgressUpdate:
        if self.position_seconds > self.duration_seconds:
            raise ValueError(
                f"position_seconds ({self.position_seconds}) is past the end of the title "
                f"(duration_seconds {self.duration_seconds})"
            )
        return self


# --- devices -----------------------------------------------------------------------------------

# A device is online this long after its last heartbeat (docs/RULES.md). Here rather than in the
# presence rules because the gateway, which may not import agents, says online/offline too.
ONLINE_TIMEOUT_S = 60


class DeviceType(StrEnum):
    tv = "tv"
    phone = "phone"
    tablet = "tablet"
    web = "web"
    desktop = "desktop"


class DevicePlatform(StrEnum):
    tizen = "tizen"
    webos = "webos"
    android = "android"
    ios = "ios"
    web = "web"
    windows = "windows"
    macos = "macos"
    linux = "linux"


class Resolution(StrEnum):
    """Ordered from low to high, so `RESOLUTION_ORDER` can rank a device's best picture."""

    sd = "sd"
    hd = "hd"
    fhd = "fhd"
    uhd_4k = "uhd_4k"
    uhd_8k = "uhd_8k"


RESOLUTION_ORDER: dict[Resolution, int] = {r: i for i, r in enumerate(Resolution)}

# Free-form but bounded: a device reporting a format this schema does not know yet (a new HDR
# flavour, a new codec) should still register rather than be rejected outright.
FormatName = Annotated[str, Field(min_length=1, max_length=32)]


class DeviceCapabilities(_Data):
    max_resolution: Resolution = Resolution.hd
    hdr_support: list[FormatName] = Field(default_factory=list, max_length=16)
    audio_codecs: list[FormatName] = Field(default_factory=list, max_length=32)
    # Off unless the device says so: a command to a device that cannot act on it is refused
    # up front instead of silently dropped on the device.
    remote_controllable: bool = False
    can_cast: bool = False
    # Diagonal in inches; unknown for browsers.
    screen_size: float | None = Field(default=None, gt=0, le=1000, allow_inf_nan=False)


class DeviceInfo(_Data):
    """What a device announces about itself; presence (last_seen, online) is derived state."""

    device_id: DeviceId
    device_type: DeviceType
    platform: DevicePlatform
    capabilities: DeviceCapabilities = Field(default_factory=DeviceCapabilities)
    app_version: str = Field(min_length=1, max_length=64)
    device_name: str = Field(min_length=1, max_length=200)


class DeviceRegistered(Payload):
    """A device joined (or re-announced itself to) a user's account."""

    event_type: ClassVar[str] = "sync.device.registered"

    user_id: UserId
    device: DeviceInfo
    timestamp: HLC


class NowPlaying(_Data):
    content_id: uuid.UUID
    position_seconds: Seconds
    state: PlaybackState


class DeviceHeartbeat(Payload):
    """A device is alive; it is offline after ONLINE_TIMEOUT_S without one."""

    event_type: ClassVar[str] = "sync.device.heartbeat"

    user_id: UserId
    device_id: DeviceId
    timestamp: HLC
    now_playing: NowPlaying | None = None


class DeviceRemoved(Payload):
    event_type: ClassVar[str] = "sync.device.removed"

    user_id: UserId
    device_id: DeviceId
    timestamp: HLC


# --- remote commands ---------------------------------------------------------------------------

COMMAND_TTL_S = 5

# Parameters are only checked for being real numbers here: a volume of 1.5 or a seek to -3 is a
# well-formed command that the router answers with invalid_parameters, not a broken record.
Number = Annotated[float, Field(allow_inf_nan=False)]


class Play(_Data):
    type: Literal["play"] = "play"


class Pause(_Data):
    type: Literal["pause"] = "pause"


class Stop(_Data):
    type: Literal["stop"] = "stop"


class Seek(_Data):
    type: Literal["seek"] = "seek"
    position_seconds: Number


class VolumeSet(_Data):
    type: Literal["volume_set"] = "volume_set"
    level: Number


class VolumeMute(_Data):
    type: Literal["volume_mute"] = "volume_mute"


class VolumeUnmute(_Data):
    type: Literal["volume_unmute"] = "volume_unmute"


class LoadContent(_Data):
    type: Literal["load_content"] = "load_content"
    content_id: uuid.UUID
    start_position: Number = 0.0


class CastTo(_Data):
    type: Literal["cast_to"] = "cast_to"
    target_device_id: DeviceId
    content_id: uuid.UUID


RemoteCommand = Annotated[
    Play | Pause | Stop | Seek | VolumeSet | VolumeMute | VolumeUnmute | LoadContent | CastTo,
    Field(discriminator="type"),
]


class RemoteCommandIssued(Payload):
    """One device asks another device of the same user to do something, within ttl_seconds."""

    event_type: ClassVar[str] = "sync.command.issued"

    command_id: uuid.UUID
    user_id: UserId
    source_device_id: DeviceId
    target_device_id: DeviceId
    command: RemoteCommand
    issued_at: UtcDatetime
    ttl_seconds: int = Field(default=COMMAND_TTL_S, ge=1, le=300)

    @property
    def expires_at(self) -> datetime:
        return self.issued_at + timedelta(seconds=self.ttl_seconds)


class CommandStatus(StrEnum):
    delivered = "delivered"
    rejected = "rejected"


class CommandErrorCode(StrEnum):
    expired = "expired"
    device_offline = "device_offline"
    not_supported = "not_supported"
    invalid_parameters = "invalid_parameters"


class CommandResult(Payload):
    """The router's answer to one RemoteCommandIssued, for the issuing device."""

    event_type: ClassVar[str] = "sync.command.result"

    command_id: uuid.UUID
    user_id: UserId
    source_device_id: DeviceId
    target_device_id: DeviceId
    status: CommandStatus
    error: CommandErrorCode | None = None
    message: str = Field(min_length=1, max_length=500)
    decided_at: UtcDatetime

    @model_validator(mode="after")
    def _error_fits_status(self) -> CommandResult:
        if self.status is CommandStatus.delivered and self.error is not None:
            raise ValueError("a delivered command carries no error")
        if self.status is CommandStatus.rejected and self.error is None:
            raise ValueError("a rejected command needs an error")
        return self


# --- realtime messages: what a device receives on its user's channels -------------------------


class WatchlistMessage(_Data):
    """A watchlist operation with its tags, so a device can keep its own OR-Set replica."""

    kind: Literal["watchlist"] = "watchlist"
    operation: WatchlistOperation
    content_id: uuid.UUID
    unique_tag: uuid.UUID | None = None
    removed_tags: list[uuid.UUID] = Field(default_factory=list)
    timestamp: HLC
    device_id: str | None = None
    # The title's visibility after the store applied the operation, for devices without a replica.
    in_watchlist: bool

    @classmethod
    def of(cls, update: WatchlistUpdate, *, in_watchlist: bool) -> WatchlistMessage:
        return cls(
            operation=update.operation,
            content_id=update.content_id,
            unique_tag=update.unique_tag,
            removed_tags=update.removed_tags,
            timestamp=update.timestamp,
            device_id=update.device_id,
            in_watchlist=in_watchlist,
        )


class UpNextEpisode(_Data):
    """The episode of a series to play after the one a report finished (docs/SYNC.md)."""

    series_id: uuid.UUID
    content_id: uuid.UUID
    # The catalog's numbers; an episode listed by its absolute number alone has no season.
    season_number: int | None
    episode_number: int | None
    absolute_number: int | None = None


class ProgressMessage(_Data):
    kind: Literal["progress"] = "progress"
    content_id: uuid.UUID
    position_seconds: float
    duration_seconds: float
    state: PlaybackState
    timestamp: HLC
    device_id: str
    # Set when this report finished an episode that has a next one: every device can put it in
    # continue watching at once (the read model has it too). Null otherwise, and at a
    # series' end.
    up_next: UpNextEpisode | None = None

    @classmethod
    def of(cls, update: ProgressUpdate, up_next: UpNextEpisode | None = None) -> ProgressMessage:
        return cls(
            content_id=update.content_id,
            position_seconds=update.position_seconds,
            duration_seconds=update.duration_seconds,
            state=update.state,
            timestamp=update.timestamp,
            device_id=update.device_id,
            up_next=up_next,
        )


class Presence(StrEnum):
    online = "online"
    offline = "offline"
    removed = "removed"


class DevicePresenceMessage(_Data):
    kind: Literal["device_presence"] = "device_presence"
    device_id: str
    presence: Presence
    last_seen: UtcDatetime | None = None
    # Present when the device (re-)registered, so other devices can show its name and abilities.
    device: DeviceInfo | None = None
    # What the device plays, when that changed (a new title, or playing/paused/stopped), so
    # device pickers can show it; positions themselves travel as progress messages.
    now_playing: NowPlaying | None = None


class CommandMessage(_Data):
    """A command for `target_device_id`; every other device on the channel ignores it."""

    kind: Literal["command"] = "command"
    command_id: uuid.UUID
    source_device_id: str
    target_device_id: str
    command: RemoteCommand
    # The device drops a command that reaches it after this instant.
    expires_at: UtcDatetime

    @classmethod
    def of(cls, issued: RemoteCommandIssued) -> CommandMessage:
        return cls(
            command_id=issued.command_id,
            source_device_id=issued.source_device_id,
            target_device_id=issued.target_device_id,
            command=issued.command,
            expires_at=issued.expires_at,
        )


class CommandResultMessage(_Data):
    kind: Literal["command_result"] = "command_result"
    command_id: uuid.UUID
    source_device_id: str
    target_device_id: str
    status: CommandStatus
    error: CommandErrorCode | None = None
    message: str

    @classmethod
    def of(cls, result: CommandResult) -> CommandResultMessage:
        return cls(
            command_id=result.command_id,
            source_device_id=result.source_device_id,
            target_device_id=result.target_device_id,
            status=result.status,
            error=result.error,
            message=result.message,
        )


class NotificationMessage(_Data):
    """A watchlist alert for the person (docs/NOTIFICATIONS.md): every device of the user."""

    kind: Literal["notification"] = "notification"
    notification: Notification


class NotificationDigestMessage(_Data):
    """Several watchlist alerts released together (a burst, or the end of quiet hours): one
    message rather than many (docs/NOTIFICATIONS.md)."""

    kind: Literal["notification_digest"] = "notification_digest"
    notifications: list[Notification]


class NotificationRef(_Data):
    """An alert named without its title: which one and of what kind, nothing a profile's
    limits could refuse."""

    notification_id: uuid.UUID
    kind: AlertKind


class NotificationPingMessage(_Data):
    """What PubNub carries instead of a `notification` or `notification_digest` that a profile
    of the account may not see (docs/NOTIFICATIONS.md, "Parental controls"): the alerts' ids
    and kinds, none of their titles' facts; the device reads them from its inbox, which the
    gateway filters by the profile it acts as. Rendered by the PubNub delivery adapter only
    (the built-in stream and socket filter each message per profile), so it is no
    `RealtimeMessage` and never on the `sync.realtime` topic."""

    kind: Literal["notification_ping"] = "notification_ping"
    notifications: list[NotificationRef] = Field(min_length=1)


RealtimeMessage = Annotated[
    WatchlistMessage
    | ProgressMessage
    | DevicePresenceMessage
    | CommandMessage
    | CommandResultMessage
    | NotificationMessage
    | NotificationDigestMessage,
    Field(discriminator="kind"),
]
REALTIME_MESSAGE: TypeAdapter[RealtimeMessage] = TypeAdapter(RealtimeMessage)


# --- channel names -----------------------------------------------------------------------------

# PubNub channel names: at most 92 characters, no `,:*/\` or spaces, and `.` separates wildcard
# levels. User ids may hold `.` and `:` (gateway USER_ID_PATTERN) and be 128 characters long, so
# the id is encoded into one safe segment: every other character, `~` included, becomes `~xx`
# per UTF-8 byte, which keeps the encoding injective (two users never share a channel).
_CHANNEL_SAFE = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-@|")
_LONGEST_SUFFIX = len(".notifications")
_MAX_SEGMENT = 92 - len("user.") - _LONGEST_SUFFIX
_PLAIN_SEGMENT = re.compile(r"[A-Za-z0-9_\-@|]+")


def channel_segment(user_id: str) -> str:
    """The user id as one valid channel-name segment; unchanged for plain ids like `alice`."""
    if not user_id:
        raise ValueError("a channel needs a non-empty user id")
    # Most ids are plain: one match in C rather than a look at each character (the fan-out
    # names each user's channel and keys for every message it sends).
    if len(user_id) <= _MAX_SEGMENT and _PLAIN_SEGMENT.fullmatch(user_id):
        return user_id
    segment = "".join(
        ch if ch in _CHANNEL_SAFE else "".join(f"~{b:02x}" for b in ch.encode()) for ch in user_id
    )
    if len(segment) > _MAX_SEGMENT:
        # Too long for PubNub: a digest keeps it unique, and "~h" never starts an escape.
        segment = "~h" + hashlib.sha256(user_id.encode()).hexdigest()[:40]
    return segment


def sync_channel(user_id: str) -> str:
    """Watchlist and progress changes."""
    return f"user.{channel_segment(user_id)}.sync"


def devices_channel(user_id: str) -> str:
    """Device presence and remote commands."""
    return f"user.{channel_segment(user_id)}.devices"


def notifications_channel(user_id: str) -> str:
    """Outcomes addressed to a person rather than a replica: remote command results, and
    watchlist alerts."""
    return f"user.{channel_segment(user_id)}.notifications"


_CHANNEL_OF_KIND = {
    "watchlist": sync_channel,
    "progress": sync_channel,
    "device_presence": devices_channel,
    "command": devices_channel,
    "command_result": notifications_channel,
    "notification": notifications_channel,
    "notification_digest": notifications_channel,
}


def channel_for(user_id: str, message: RealtimeMessage) -> str:
    """The channel a realtime message goes out on."""
    return _CHANNEL_OF_KIND[message.kind](user_id)


def addressed_to(message: RealtimeMessage) -> str:
    """The one device a message is for ("" for every device of the user): a command goes to
    its target, a command's result to the device that sent the command."""
    if isinstance(message, CommandMessage):
        return message.target_device_id
    if isinstance(message, CommandResultMessage):
        return message.source_device_id
    return ""


# --- events of the sync agents ----------------------------------------------------------------


class RealtimeEvent(Payload):
    """One message for one of a user's realtime channels, published once the change it reports
    is committed (and only then), in the user's order: the feed the realtime delivery agent
    sends to devices, and the typed change feed of sync for other consumers (personalization).

    `message_id` is fixed by what caused the message (the command id for a command), so a
    message published twice is delivered once.
    """

    event_type: ClassVar[str] = "sync.realtime.message"

    user_id: UserId
    message_id: uuid.UUID
    message: RealtimeMessage
    # Wall time of the change, for consumers that do not keep HLCs (ages, dashboards).
    occurred_at: UtcDatetime

    @property
    def channel(self) -> str:
        return channel_for(self.user_id, self.message)


class SyncView(StrEnum):
    """The read models of one user that the gateway serves from Redis."""

    watchlist = "watchlist"
    progress = "progress"
    devices = "devices"


class SyncLookupRequested(Payload):
    """A read-model miss at the gateway: load this user's view into Redis and answer on
    `reply_channel` (Redis pub/sub) with the document."""

    event_type: ClassVar[str] = "sync.lookup.requested"

    user_id: UserId
    view: SyncView
    reply_channel: str = Field(min_length=1, max_length=300)


# A client's own clock may run ahead of the gateway's by this much; further ahead, its stamp
# would win every last-writer-wins race until real time caught up, so it is refused.
MAX_CLOCK_AHEAD_S = 60
