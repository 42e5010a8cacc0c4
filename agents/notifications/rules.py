"""Which alerts an availability event raises, whom they concern and under which id (no I/O).

An event becomes *alerts*: one per (title, platform, region, kind), carrying the offer types
that caused it. A watcher gets an alert only if it matches their preferences (region,
services, alert kinds, offer types, narrowed to the types they want). A notification's id is
fixed by (user, title, platform, kind, window), the same key PostgreSQL keeps unique: a
redelivered event, or another event about the same thing within the window, is the same
notification, stored once and delivered once.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from dataclasses import dataclass, field, replace
from datetime import datetime

from agreements.sync_realtime import CLAIM_TTL_S
from schemas.content import (
    AvailabilityChanged,
    AvailabilityRow,
    AvailabilityType,
    ContentExpiring,
    MaturityRating,
)
from schemas.notifications import (
    AlertKind,
    Notification,
    NotificationPreferences,
    QuietHours,
)
from schemas.sync import NotificationMessage, RealtimeEvent

# One notification per (user, title, platform, kind) per window of this many days.
NOTIFY_WINDOW_DAYS = 7
# Fixed namespace of notification ids (uuid5): changing it would deliver alerts again.
NOTIFICATION_IDS = uuid.UUID("6a1d2b8e-43f0-4c55-9b1e-2f7d9e0c5a17")
_ID_NAMESPACE = NOTIFICATION_IDS.bytes
_EPOCH_DAY_S = 86_400


@dataclass(frozen=True)
class Alert:
    kind: AlertKind
    content_id: uuid.UUID
    platform: str
    region: str
    offer_types: tuple[AvailabilityType, ...]
    expires_at: datetime | None = None
    # new_season: the season whose episode appeared (the alert is about its series).
    season_number: int | None = None


@dataclass(frozen=True)
class TitleFacts:
    """What a notification says of its title: the name, and what parental controls judge it
    by (docs/AUTH.md, "Profiles and parental controls")."""

    title: str
    content_rating: MaturityRating | None
    genres: list[str]


MAX_GENRES = 50


def title_facts(title: object, rating: object, genres: object) -> TitleFacts:
    """The facts as the catalog row holds them: a rating outside the scale is unrated (a
    limited profile never sees it), genres other than short strings are left out."""
    try:
        maturity = MaturityRating(rating) if rating is not None else None  # type: ignore[arg-type]
    except ValueError:
        maturity = None
    names = genres if isinstance(genres, list) else []
    kept = sorted({g for g in names if isinstance(g, str) and 0 < len(g.strip()) <= 64})
    return TitleFacts(str(title or "")[:500], maturity, kept[:MAX_GENRES])


def window_of(at: datetime) -> int:
    """The dedup window an instant falls in."""
    return int(at.timestamp()) // (_EPOCH_DAY_S * NOTIFY_WINDOW_DAYS)


def window_for(alert: Alert, caused_at: datetime) -> int:
    """The dedup window of an alert: for a new season the season itself (one alert per season
    and platform, however many weeks its episodes take to arrive), else the time window."""
    if alert.kind is AlertKind.new_season and alert.season_number is not None:
        return alert.season_number
    return window_of(caused_at)


def _dropped(before: AvailabilityRow, after: AvailabilityRow) -> bool:
    """A lower price in the same currency (a paid offer turned free counts too)."""
    if before.price_cents is None or before.availability_type != after.availability_type:
        return False
    if after.availability_type is AvailabilityType.free:
        return False
    if after.price_cents is None or after.currency != before.currency:
        return False
    return after.price_cents < before.price_cents


def alerts_of_change(event: AvailabilityChanged) -> list[Alert]:
    """`arrived` per region where rows appeared; `price_drop` per region where a changed row
    costs less than the row it replaced (`previous`; events without it raise none). Expired
    rows raise nothing: `content.expiring` warned before."""
    by_kind: dict[tuple[AlertKind, str], set[AvailabilityType]] = {}
    for row in event.appeared:
        by_kind.setdefault((AlertKind.arrived, row.region), set()).add(row.availability_type)
    if len(event.previous) == len(event.changed):
        for before, after in zip(event.previous, event.changed, strict=True):
            if before.region == after.region and _dropped(before, after):
                key = (AlertKind.price_drop, after.region)
                by_kind.setdefault(key, set()).add(after.availability_type)
    return [
        Alert(kind, event.canonical_id, event.platform, region, tuple(sorted(types)))
        for (kind, region), types in sorted(by_kind.items())
    ]


def alerts_of_new_season(
    event: AvailabilityChanged, series_id: uuid.UUID, season_number: int | None
) -> list[Alert]:
    """`new_season` for the series, per region where an episode of a season after the first
    appeared (the first season arriving is the series arriving: `arrived` on the series)."""
    if season_number is None or season_number < 2:
        return []
    by_region: dict[str, set[AvailabilityType]] = {}
    for row in event.appeared:
        by_region.setdefault(row.region, set()).add(row.availability_type)
    return [
        Alert(
            AlertKind.new_season,
            series_id,
            event.platform,
            region,
            tuple(sorted(types)),
            season_number=season_number,
        )
        for region, types in sorted(by_region.items())
    ]


def alerts_of_expiry(event: ContentExpiring) -> list[Alert]:
    """`leaving_soon` for the offer named (a notice without its offer type counts as any)."""
    types = (event.availability_type,) if event.availability_type else tuple(AvailabilityType)
    return [
        Alert(
            AlertKind.leaving_soon,
            event.canonical_id,
            event.platform,
            event.region,
            tuple(sorted(types)),
            event.expires_at,
        )
    ]


def for_user(alert: Alert, prefs: NotificationPreferences) -> Alert | None:
    """The alert as this user should get it (offer types narrowed to theirs), or None."""
    if alert.kind not in prefs.alerts or alert.region != prefs.region:
        return None
    if alert.platform not in prefs.services:
        return None
    wanted = tuple(t for t in alert.offer_types if t in prefs.offer_types)
    return replace(alert, offer_types=wanted) if wanted else None


def notification_id(user_id: str, alert: Alert, window: int) -> uuid.UUID:
    return uuid.uuid5(NOTIFICATION_IDS, user_id + _id_suffix(alert, window))


def _id_suffix(alert: Alert, window: int) -> str:
    """What a notification's id key adds to the user's id: the same for a whole page."""
    return f"\x1f{alert.content_id}\x1f{alert.platform}\x1f{alert.kind}\x1f{window}"


def notification(
    user_id: str, alert: Alert, title: TitleFacts | str, caused_at: datetime, now: datetime
) -> Notification:
    """The notification of `alert` for a user; its window is that of its cause, so a
    redelivery of the cause, however late, lands on the same id."""
    facts = title if isinstance(title, TitleFacts) else TitleFacts(title, None, [])
    return Notification(
        notification_id=notification_id(user_id, alert, window_for(alert, caused_at)),
        kind=alert.kind,
        content_id=alert.content_id,
        title=facts.title,
        content_rating=facts.content_rating,
        genres=facts.genres,
        platform=alert.platform,
        region=alert.region,
        offer_types=list(alert.offer_types),
        expires_at=alert.expires_at,
        season_number=alert.season_number,
        created_at=now,
    )


# --- a page of notifications rendered once, stamped per user ----------------------------------
#
# A popular title's page holds thousands of users who get the same alert: the same notification
# but for its id, the same device message but for the user and the notification id (the message
# id). Building and serialising one pydantic model per user was most of the cost of raising
# (docs/NOTIFICATIONS.md, "Scale"), so each page renders the notification once per offer
# types: its JSON is stamped with each user's notification id and its model copied with that
# id (the device message is assembled from validated parts, not validated again per user).
# The mark is a valid value of its field, so the template passes the same validation as any
# notification; a template in which the mark does not occur exactly once (a title that
# happens to contain one) is not used.

_NOTE_MARK = "00000000-0000-4000-8000-0000000a1e47"
# User ids as preferences accept them (schemas.notifications.UserId): valid as they are.
_PLAIN_USER = re.compile(r"[A-Za-z0-9._:@|-]{1,128}")


@dataclass(frozen=True)
class Candidate:
    """A watcher the SQL found wanting the alert: the offer types they want of it, and what
    decides when it may reach them."""

    user_id: str
    offer_types: tuple[AvailabilityType, ...]
    time_zone: str
    quiet_hours: QuietHours | None
    # Alerts raised for them within the burst window (at most bursts.BURST counted).
    recent: int
    # Whether they had a delivered notification when the page was read (False: the new one
    # is their whole inbox; True, or not known: look for an inbox to refill).
    delivered: bool = True


@dataclass(frozen=True)
class Planned:
    user_id: str
    notification_id: uuid.UUID
    body: str  # the Notification's JSON
    # Not before this (quiet hours, a burst); None: deliver now.
    deliver_at: datetime | None
    # The device message (its message id the notification id), sent if stored and due now.
    message: RealtimeEvent
    # The notification id as text, as the template stamped it: the inbox entry needs it
    # again, and formatting a UUID each time was a share of the page's CPU.
    note_key: str


@dataclass
class PageRenderer:
    """Plans a page's notifications of one alert, rendering the JSON once per offer types."""

    alert: Alert
    title: TitleFacts
    caused_at: datetime
    now: datetime
    _templates: dict[tuple[AvailabilityType, ...], tuple[Notification, str] | None] = field(
        default_factory=dict
    )
    _wanted: dict[tuple[AvailabilityType, ...], Alert] = field(default_factory=dict)
    _suffix: dict[int, str] = field(default_factory=dict)

    def _render(self, wanted: Alert, note_id: uuid.UUID) -> tuple[Notification, str]:
        note = notification("", wanted, self.title, self.caused_at, self.now)
        note = note.model_copy(update={"notification_id": note_id})
        return note, note.model_dump_json()

    def _template(self, wanted: Alert) -> tuple[Notification, str] | None:
        types = wanted.offer_types
        if types not in self._templates:
            note, body = self._render(wanted, uuid.UUID(_NOTE_MARK))
            self._templates[types] = (note, body) if body.count(_NOTE_MARK) == 1 else None
        return self._templates[types]

    def plan(self, c: Candidate, window: int, deliver_at: datetime | None) -> Planned:
        wanted = self._wanted.get(c.offer_types)
        if wanted is None:
            wanted = self._wanted[c.offer_types] = replace(self.alert, offer_types=c.offer_types)
        suffix = self._suffix.get(window)
        if suffix is None:
            suffix = self._suffix[window] = _id_suffix(self.alert, window)
        # uuid.uuid5 without re-reading the namespace's bytes each time: the same id.
        digest = hashlib.sha1(_ID_NAMESPACE + (c.user_id + suffix).encode()).digest()
        note_id = uuid.UUID(bytes=digest[:16], version=5)
        key = str(note_id)
        template = self._template(wanted) if _PLAIN_USER.fullmatch(c.user_id) else None
        if template is None:
            note, body = self._render(wanted, note_id)
            message = RealtimeEvent(
                user_id=c.user_id,
                message_id=note_id,
                message=NotificationMessage(notification=note),
                occurred_at=note.created_at,
            )
        else:
            # The parts are valid (the template was validated, the id is a UUID, the user id
            # matched _PLAIN_USER): assembled, not validated again per user.
            note = template[0].model_copy(update={"notification_id": note_id})
            body = template[1].replace(_NOTE_MARK, key)
            message = RealtimeEvent.model_construct(
                user_id=c.user_id,
                message_id=note_id,
                message=NotificationMessage.model_construct(notification=note),
                occurred_at=note.created_at,
            )
        return Planned(c.user_id, note_id, body, deliver_at, message, key)


# Slack for the worker's clock against Redis's count of a claim's time to live.
_CLAIM_MARGIN_S = 30


def devices_may_be_resent(stored_at: datetime, now: datetime) -> bool:
    """Whether a marked page's device messages may be sent again: only while every claim its
    first try could have taken still holds. Claims are taken as messages are sent, after the
    page was stored, and live CLAIM_TTL_S; past that a resend could reach a device twice, so
    the page goes to the inboxes alone (a device reads it there: at most once, never twice)."""
    return (now - stored_at).total_seconds() < CLAIM_TTL_S - _CLAIM_MARGIN_S
