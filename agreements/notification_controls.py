"""Parental controls on watchlist notifications (docs/AUTH.md, "Profiles and parental
controls"; docs/NOTIFICATIONS.md): which alerts a profile with limits may see, in its inbox
and on its stream or socket, and what PubNub may carry to every device of an account. Pure:
the title rule is agreements/parental_controls.py.

A notification carries its title's maturity rating and genres. One without them (`genres`
null: raised before they were carried) is unknown, and unknown is never shown under limits.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

from agreements.parental_controls import refusal
from schemas.accounts import Profile, ProfileLimits
from schemas.notifications import Notification
from schemas.sync import (
    NotificationDigestMessage,
    NotificationMessage,
    NotificationPingMessage,
    NotificationRef,
    RealtimeMessage,
)

# Only these realtime messages name a title a profile may be refused.
_KINDS = (b'"notification"', b'"notification_digest"')


def _refused(rating: object, genres: object, limits: ProfileLimits) -> bool:
    if not isinstance(genres, list):
        return True  # facts unknown
    names = [g for g in genres if isinstance(g, str)]
    return refusal(rating, names, limits) is not None


def notification_allowed(note: Notification, limits: ProfileLimits | None) -> bool:
    """Whether a profile with `limits` (None: none) may see this notification."""
    if limits is None or not limits.restricts:
        return True
    rating = note.content_rating.value if note.content_rating is not None else None
    return not _refused(rating, note.genres, limits)


def _allowed_wire(item: Any, limits: ProfileLimits) -> bool:
    if not isinstance(item, dict):
        return False
    return not _refused(item.get("content_rating"), item.get("genres"), limits)


def visible_body(body: bytes, limits: ProfileLimits | None) -> bytes | None:
    """A realtime message's body as a profile with `limits` may get it: unchanged, a digest
    without its refused entries, or None (not sent). Cheap for every message but
    notifications: those are ruled out without parsing."""
    if limits is None or not limits.restricts:
        return body
    if not any(kind in body for kind in _KINDS):
        return body
    try:
        message = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(message, dict):
        return body
    kind = message.get("kind")
    if kind == "notification":
        return body if _allowed_wire(message.get("notification"), limits) else None
    if kind == "notification_digest":
        entries = message.get("notifications")
        if not isinstance(entries, list):
            return None
        kept = [n for n in entries if _allowed_wire(n, limits)]
        if not kept:
            return None
        if len(kept) == len(entries):
            return body
        return orjson.dumps({**message, "notifications": kept})
    return body


def names_titles(message: RealtimeMessage) -> bool:
    """Whether the message carries alerts with their titles' facts."""
    return isinstance(message, NotificationMessage | NotificationDigestMessage)


def pubnub_message(
    message: RealtimeMessage, profiles: Sequence[Profile] | None
) -> RealtimeMessage | NotificationPingMessage:
    """The message as PubNub may carry it on the account's channel, which every device of the
    account hears whatever profile it acts as (PubNub filters nothing per device): unchanged
    unless it holds an alert some profile of the account (`profiles`; None: unknown) may not
    see, then a ping naming the alerts without their titles (the device reads its inbox,
    filtered by its profile). Unknown profiles ping: a limit is never assumed away."""
    if not isinstance(message, NotificationMessage | NotificationDigestMessage):
        return message
    notes = (
        [message.notification]
        if isinstance(message, NotificationMessage)
        else message.notifications
    )
    if not notes:
        return message  # names no title
    if profiles is not None:
        limits = [p.limits for p in profiles if p.limits.restricts]
        if all(notification_allowed(n, lim) for n in notes for lim in limits):
            return message
    return NotificationPingMessage(
        notifications=[
            NotificationRef(notification_id=n.notification_id, kind=n.kind) for n in notes
        ]
    )
