"""Watchlist alerts ("now on your service"): a user's notification preferences, the
notifications raised for them, and an inbox entry read. Pure data: the rules live in
agents/notifications (docs/NOTIFICATIONS.md)."""

from __future__ import annotations

import uuid
from datetime import time
from enum import StrEnum
from typing import Annotated, ClassVar

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator

from schemas.content import AvailabilityType, MaturityRating, asked_region
from schemas.envelope import Payload
from schemas.ingestion import normalize_platform
from schemas.time_zone import TimeZoneName

UserId = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9._:@|-]+$")]
# A platform id as the catalog writes it (netflix, disney_plus, prime_video).
PlatformId = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[a-z0-9_.-]+$")]
MAX_SERVICES = 50


class AlertKind(StrEnum):
    arrived = "arrived"  # a watchlisted title appeared on a platform in the user's region
    leaving_soon = "leaving_soon"  # it leaves one within 7, 3 or 1 day(s)
    price_drop = "price_drop"  # a rental or purchase of it costs less than before
    new_season = "new_season"  # an episode of a later season of a watchlisted series appeared


class _Data(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


_WALL_TIME = r"^(?:[01][0-9]|2[0-3]):[0-5][0-9]$"


class QuietHours(_Data):
    """A span of the user's local day without alerts, as wall times `HH:MM`; `start` after
    `end` spans midnight (22:00-07:00), equal times are no span. Alerts raised inside it are
    delivered when it ends."""

    start: str = Field(pattern=_WALL_TIME, examples=["22:00"])
    end: str = Field(pattern=_WALL_TIME, examples=["07:00"])

    @property
    def start_time(self) -> time:
        return time.fromisoformat(self.start)

    @property
    def end_time(self) -> time:
        return time.fromisoformat(self.end)


class NotificationPreferences(_Data):
    """What a user wants to hear about: titles of their watchlist on the services they
    subscribe to (platform ids), in their region, of these offer types and alert kinds."""

    services: list[PlatformId] = Field(default_factory=list, max_length=MAX_SERVICES)
    region: str = Field(
        pattern=r"^[A-Z]{2}$",
        description="ISO 3166-1 alpha-2; sent in any case, kept upper case ('uk' is GB)",
    )
    time_zone: TimeZoneName = "UTC"
    quiet_hours: QuietHours | None = None
    alerts: list[AlertKind] = Field(
        default_factory=lambda: [AlertKind.arrived, AlertKind.leaving_soon]
    )
    offer_types: list[AvailabilityType] = Field(
        default_factory=lambda: list(AvailabilityType),
        description="which offers count: a title arriving to rent only is no alert for a "
        "user who wants subscription titles",
    )

    @field_validator("region", mode="before")
    @classmethod
    def _region(cls, value: object) -> object:
        # As offers and searches spell it.
        return asked_region(value)

    @field_validator("services", mode="before")
    @classmethod
    def _services(cls, value: object) -> object:
        # As feeds, the ingest URL and search name platforms ('prime', 'Disney+'): a service
        # kept as spelled would never match an offer's platform id, and no one would be told.
        if not isinstance(value, list):
            return value
        return [normalize_platform(v) if isinstance(v, str) else v for v in value]

    @field_validator("services", "alerts", "offer_types")
    @classmethod
    def _set(cls, value: list[str]) -> list[str]:
        return sorted(set(value))


class PreferencesChanged(Payload):
    """A user replaced their notification preferences; keyed by user_id."""

    event_type: ClassVar[str] = "notifications.preferences.changed"

    user_id: UserId
    preferences: NotificationPreferences
    changed_at: AwareDatetime


class PreferencesDocument(_Data):
    """`GET .../preferences`: the preferences applied, and when they were changed."""

    user_id: UserId
    preferences: NotificationPreferences
    changed_at: AwareDatetime


class Notification(_Data):
    """One alert for one user: the inbox entry and the realtime message's body."""

    notification_id: uuid.UUID
    kind: AlertKind
    content_id: uuid.UUID
    title: str = Field(default="", max_length=500)
    # What parental controls judge the title by (agreements/parental_controls.py): its
    # maturity rating (null: unrated) and canonical genres. `genres` null means the facts are
    # unknown (a notification raised before they were carried): never shown to a limited
    # profile.
    content_rating: MaturityRating | None = None
    genres: list[Annotated[str, Field(min_length=1, max_length=64)]] | None = Field(
        default=None, max_length=50
    )
    platform: PlatformId
    region: str = Field(pattern=r"^[A-Z]{2}$")
    offer_types: list[AvailabilityType]
    # leaving_soon: when the offer ends.
    expires_at: AwareDatetime | None = None
    # new_season: which season (content_id is then the series).
    season_number: int | None = Field(default=None, ge=0)
    created_at: AwareDatetime


MAX_DIGEST = 500


class NotificationRaised(Payload):
    """Notifications of one user due for delivery now; keyed by user_id. One, as raised; or
    several released together (a burst, or what quiet hours held), which devices get as one
    digest message. Each id is fixed by its cause, so a redelivered record is delivered once."""

    event_type: ClassVar[str] = "notifications.raised"

    user_id: UserId
    notifications: list[Notification] = Field(min_length=1, max_length=MAX_DIGEST)


class NotificationRead(Payload):
    """A user read a notification of their inbox; keyed by user_id."""

    event_type: ClassVar[str] = "notifications.read"

    user_id: UserId
    notification_id: uuid.UUID
    read_at: AwareDatetime


class InboxLookupRequested(Payload):
    """The gateway found no inbox for this user in Redis: load it from PostgreSQL into the
    read model and answer on `reply_channel` (Redis pub/sub) with how many entries it holds
    (`InboxLoaded`); keyed by user_id."""

    event_type: ClassVar[str] = "notifications.lookup.requested"

    user_id: UserId
    reply_channel: str = Field(min_length=1, max_length=300)


class InboxLoaded(_Data):
    """The answer to an `InboxLookupRequested`: the entries now in the user's inbox read
    model (0: the user has none delivered)."""

    user_id: UserId
    entries: int = Field(ge=0)


class InboxEntry(Notification):
    read: bool


class InboxPage(_Data):
    """`GET .../notifications`: newest first; `next_cursor` pages on (null: no more)."""

    user_id: UserId
    unread: int
    items: list[InboxEntry]
    next_cursor: str | None = None
