"""A page of notifications rendered once and stamped per user (rules.PageRenderer) is what one
pydantic model per user would have been: the same notification, the same device message (the
sync.realtime envelope, its message id the notification's), the same id as
`rules.notification` gives; and a title that happens to hold a mark is rendered per user."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import orjson
import pytest

from agents.notifications import rules
from schemas.content import AvailabilityType
from schemas.envelope import decode
from schemas.notifications import AlertKind, Notification
from schemas.sync import NotificationMessage, RealtimeEvent

TITLE = uuid.UUID(int=7)
NOW = datetime(2026, 12, 6, 20, 0, tzinfo=UTC)
ALERT = rules.Alert(
    AlertKind.arrived,
    TITLE,
    "netflix",
    "US",
    (AvailabilityType.rental, AvailabilityType.subscription),
)


def candidate(user_id: str, *types: AvailabilityType) -> rules.Candidate:
    return rules.Candidate(user_id, types, "UTC", None, 0)


@pytest.mark.parametrize(
    "title", ["Dune: Part Two", 'Quotes "and" \\ back\\slashes', "@notify-user-mark@"]
)
def test_a_stamped_notification_is_the_one_built_for_the_user(title: str) -> None:
    facts = rules.TitleFacts(title, None, ["drama"])
    render = rules.PageRenderer(ALERT, facts, NOW, NOW, "notifications-availability", "corr-1")
    window = rules.window_for(ALERT, NOW)
    users = [
        candidate("u1", AvailabilityType.subscription),
        candidate("u2", AvailabilityType.rental, AvailabilityType.subscription),
        candidate("u3:x@y|z", AvailabilityType.subscription),
    ]
    for c in users:
        planned = render.plan(c, window, None)
        wanted = rules.Alert(ALERT.kind, TITLE, "netflix", "US", c.offer_types)
        expected = rules.notification(c.user_id, wanted, facts, NOW, NOW)
        assert planned.notification_id == expected.notification_id
        assert Notification.model_validate_json(planned.body) == expected
        envelope = decode(planned.envelope, RealtimeEvent)
        assert envelope.event_id == planned.event_id
        assert envelope.key == c.user_id
        assert envelope.correlation_id == "corr-1"
        assert envelope.source == "notifications-availability"
        assert envelope.payload == RealtimeEvent(
            user_id=c.user_id,
            message_id=expected.notification_id,
            message=NotificationMessage(notification=expected),
            occurred_at=NOW,
        )
        # Nothing of another user, and no mark, is left in what is stored and sent.
        raw = orjson.loads(planned.envelope)
        assert raw["key"] == raw["payload"]["user_id"] == c.user_id
        assert "0000000a1e47" not in planned.envelope.decode()
